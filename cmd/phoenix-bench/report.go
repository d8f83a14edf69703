package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// baselineOf names the baseline each workload is compared with.
var baselineOf = map[string]string{
	wPGReads:     wEcho,
	wQGSame:      wPGReads,
	wQGMixed:     wEcho,
	wAdminWrites: wPlainInsert,
	wApply:       wPlainInsert,
	wEvents:      wPlainBatch,
	wImpressions: wPlainInsert,
}

func mibShort(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// evaluate fills the SPEC §9 targets from the results.
func (b *Bench) evaluate() {
	ratio := func(a, base string) float64 {
		ra, rb := b.result(a), b.result(base)
		if ra == nil || rb == nil || rb.Throughput() == 0 {
			return 0
		}
		return ra.Throughput() / rb.Throughput()
	}
	add := func(name, goal, measured string, met bool) {
		b.targets = append(b.targets, Target{Name: name, Goal: goal, Measured: measured, Met: met})
	}
	if r := b.result(wQGMixed); r != nil {
		x := ratio(wQGMixed, wEcho)
		var alone []string
		for _, o := range b.results {
			if strings.HasSuffix(o.Name, " alone") {
				alone = append(alone, fmt.Sprintf("%s %.2f ×", strings.TrimSuffix(strings.TrimPrefix(o.Name, "query gateway: "), " alone"), ratio(o.Name, wEcho)))
			}
		}
		add("Query Gateway hot GET vs bare Echo", "≥ 0.5 × bare Echo throughput", fmt.Sprintf("4-route mix %.2f × (%.0f vs %.0f req/s); each route alone: %s", x, r.Throughput(), b.result(wEcho).Throughput(), strings.Join(alone, ", ")), x >= 0.5 && r.Errors == 0)
		add("Query Gateway hot GET p99", fmt.Sprintf("p99 ≤ 10 ms at %d connections", r.Workers), fmtDur(r.Pct(0.99)), r.Pct(0.99) <= 10*time.Millisecond && r.Errors == 0)
	}
	if r := b.result(wQGSame); r != nil {
		x := ratio(wQGSame, wPGReads)
		add("Query Gateway vs straight from PostgreSQL", "≥ 3 × the same routes served from PostgreSQL", fmt.Sprintf("%.2f × (%.0f vs %.0f req/s)", x, r.Throughput(), b.result(wPGReads).Throughput()), x >= 3 && r.Errors == 0)
	}
	if r := b.result(wFresh); r != nil {
		rate := float64(r.written) / r.Elapsed.Seconds()
		add("Freshness", fmt.Sprintf("p99 ≤ 50 ms at %d writes/s", b.cfg.FreshRate), fmt.Sprintf("p99 %s, max %s at %.0f writes/s, %d failed or not visible within 2 s", fmtDur(r.Pct(0.99)), fmtDur(r.Pct(1)), rate, r.Errors),
			r.Pct(0.99) <= 50*time.Millisecond && r.Errors == 0)
	}
	if r := b.result(wApply); r != nil {
		add("Apply-code throughput", "≥ 1,000 applies/s across distinct codes", fmt.Sprintf("%.0f applies/s (%d errors)", r.Throughput(), r.Errors), r.Throughput() >= 1000 && r.Errors == 0)
	}
	if r := b.result(wImpressions); r != nil {
		add("Impressions", "≥ 3,000 impressions/s, acknowledged durable", fmt.Sprintf("%.0f impressions/s, %.2f × the plain INSERT baseline (%d errors)", r.Throughput(), ratio(wImpressions, wPlainInsert), r.Errors), r.Throughput() >= 3000 && r.Errors == 0)
	}
	if r := b.result(wEvents); r != nil {
		add("Event ingestion", "≥ 2,000 events/s through /v1/events/batch, 3-level hierarchy", fmt.Sprintf("%.0f events/s (%s)", r.Throughput(), r.Note), r.Throughput() >= 2000 && r.Errors == 0)
	}
	for _, n := range []string{wDownAdmin, wDownQG} {
		if r := b.result(n); r != nil {
			add("Downline page, "+strings.Trim(strings.TrimPrefix(n, "downline page "), "()"), fmt.Sprintf("p99 ≤ 20 ms (%d affiliates, depth ≤ %d)", b.data.Tree.Nodes, b.data.Tree.MaxDep), fmtDur(r.Pct(0.99)), r.Pct(0.99) <= 20*time.Millisecond && r.Errors == 0)
		}
	}
	if r := b.result(wMove); r != nil {
		add("Subtree move", fmt.Sprintf("moving a %d-node subtree ≤ 1 s", b.cfg.MoveNodes), fmt.Sprintf("slowest of %d: %s (%d errors)", r.Ops, fmtDur(r.Pct(1)), r.Errors), r.Pct(1) <= time.Second && r.Errors == 0 && r.Ops > 0)
	}
	if r := b.result(wCycle); r != nil {
		add("Cycle check", "O(depth): independent of the subtree size", fmt.Sprintf("p50 %s, p99 %s at depth %d with %d nodes below", fmtDur(r.Pct(0.5)), fmtDur(r.Pct(0.99)), b.data.Tree.MaxDep, b.data.Tree.Nodes-1), r.Errors == 0 && r.Pct(0.99) <= 20*time.Millisecond)
	}
	if b.cfg.Only == "" {
		var aMax, qMax int64
		for _, m := range b.memRows {
			if !strings.HasPrefix(m.Workload, "scale") && !strings.HasSuffix(m.Workload, "(scale section)") {
				aMax = max(aMax, m.AdminHWM)
				qMax = max(qMax, m.QueryHWM, m.Query2HWM)
			}
		}
		add("Memory: admin gateway", "≤ 100 MiB RSS under load", "peak "+mib(aMax), aMax <= 100<<20)
		add("Memory: query gateway", "≤ 100 MiB RSS under load", "peak "+mib(qMax), qMax <= 100<<20)
		add("Memory: query gateway, initial rebuild", "≤ 100 MiB RSS", fmt.Sprintf("peak %s while projecting the seeded database (%.0f s)", mib(b.rebuildPeak), b.rebuildTime.Seconds()), b.rebuildPeak <= 100<<20)
	}
	for _, f := range b.faults {
		add("Fault: "+f.Fault, "no lost change, no wrong answer after recovery, errors only while down",
			fmt.Sprintf("lost %d of %d, stale %d of %d, %d errors after recovery", f.Lost, f.Acked, f.Stale, f.Checked, f.ErrorsOutside),
			!f.Failed && f.Lost == 0 && f.Stale == 0 && f.ErrorsOutside == 0)
	}
}

// report writes the Markdown report and the charts.
func (b *Bench) report() error {
	b.evaluate()
	if err := os.MkdirAll(b.cfg.ChartDir, 0o755); err != nil {
		return err
	}
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	p("# Benchmarks\n\n")
	p("Generated by `scripts/bench.sh%s` (cmd/phoenix-bench) — do not edit by hand. ", map[bool]string{true: " --quick", false: ""}[b.cfg.Quick])
	p("[benchmarking.md](benchmarking.md) explains every workload, the baselines and how to read this page.\n")
	p("Every figure below comes from one run on one machine; the load generator runs on the same machine.\n\n")
	p("## Machine\n\n| | |\n|---|---|\n")
	for _, kv := range b.machine {
		p("| %s | %s |\n", kv[0], kv[1])
	}
	p("| load average at end | %s |\n", loadAvg())
	p("| run took | %.0f s |\n\n", time.Since(b.started).Seconds())
	if len(b.seedInfo) > 0 {
		p("## Data set\n\n")
		for _, s := range b.seedInfo {
			p("- %s\n", s)
		}
		p("\n")
	}
	p("## SPEC §9 targets\n\n| target | goal | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range b.targets {
		v := "**missed**"
		if t.Met {
			v = "met"
		}
		p("| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, v)
	}
	p("\n%d of %d targets met.\n\n", b.metCount(), len(b.targets))
	p("## Workloads\n\n")
	p("Throughput counts successful operations per second of wall time; latencies cover every operation (errors included). ")
	p("The ratio is throughput divided by the named baseline's, measured minutes apart in the same run.\n\n")
	p("| workload | conns | ops | errors | throughput | p50 | p99 | p999 | max | ratio to baseline | peak RSS admin / query |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range b.results {
		ratio := "—"
		if base, ok := baselineOf[r.Name]; ok {
			if rb := b.result(base); rb != nil && rb.Throughput() > 0 {
				ratio = fmt.Sprintf("%.2f × %s", r.Throughput()/rb.Throughput(), strings.TrimPrefix(base, "baseline: "))
			}
		}
		p("| %s | %d | %d | %d | %.0f %s/s | %s | %s | %s | %s | %s | %s / %s |\n", r.Name, r.Workers, r.Ops*max(r.PerOp, 1), r.Errors,
			r.Throughput(), r.Unit, fmtDur(r.Pct(0.5)), fmtDur(r.Pct(0.99)), fmtDur(r.Pct(0.999)), fmtDur(r.Pct(1)), ratio,
			mibShort(r.AdminHWM), mibShort(r.QueryHWM))
	}
	p("\nNotes:\n\n")
	for _, r := range b.results {
		if r.Note != "" {
			p("- *%s*: %s\n", r.Name, r.Note)
		}
		if r.FirstErr != "" {
			p("- *%s*, first error: `%s`\n", r.Name, strings.ReplaceAll(r.FirstErr, "`", "'"))
		}
	}
	p("\n")
	if b.cfg.Only == "" {
		p("![throughput](bench/throughput.svg)\n\n![latency](bench/latency.svg)\n\n")
	}
	p("## Gateway memory\n\nPeak RSS (VmHWM from /proc/<pid>/status, reset before each workload and fault) and RSS at its end; the workload table's last column repeats the peaks (query: the larger of the two replicas).\n\n")
	p("| workload or fault | admin peak | admin RSS | query A peak | query A RSS | query B peak | query B RSS |\n|---|---|---|---|---|---|---|\n")
	for _, m := range b.memRows {
		p("| %s | %s | %s | %s | %s | %s | %s |\n", m.Workload, mib(m.AdminHWM), mib(m.AdminRSS), mib(m.QueryHWM), mib(m.QueryRSS), mib(m.Query2HWM), mib(m.Query2RSS))
	}
	p("\n## Faults under load\n\n")
	p("During each fault 4 readers poll the Query Gateway and one writer creates codes on the Admin Gateway every 20 ms. ")
	p("*down* is how long the dependency was gone (or, for the projector, until the standby took over); *recovery* runs from then until a write made afterwards is readable on the Query Gateway. ")
	p("*lost* counts acknowledged writes missing afterwards; *stale* counts players (of those checked) whose codes or stats on the Query Gateway differ from PostgreSQL.\n\n")
	p("| fault | down | read errors | errors after recovery | write errors | acknowledged writes | lost | recovery | stale / checked | what happened |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range b.faults {
		p("| %s | %.2f s | %d of %d | %d | %d | %d | %d | %.2f s | %d / %d | %s |\n", f.Fault, f.Down.Seconds(), f.ReadErrors, f.ReadErrors+f.ReadOK,
			f.ErrorsOutside, f.WriteErrors, f.Acked, f.Lost, f.Recover.Seconds(), f.Stale, f.Checked, f.Note)
	}
	if len(b.faults) == 0 {
		p("No fault was injected in this run.\n")
	}
	if b.cfg.RedisTimeout != "" {
		p("\nGateway settings differing from the defaults: `PHOENIX_REDIS_TIMEOUT=%s` on the query gateways (see benchmarking.md).\n", b.cfg.RedisTimeout)
	}
	if !b.cfg.PGRestart && b.cfg.Only == "" {
		p("\nPostgreSQL restart was not part of this run (`--pg-restart`).\n")
	}
	b.scaleReport(p)
	if err := os.WriteFile(b.cfg.Out, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	if b.cfg.Only != "" {
		return nil // the charts belong to the full report
	}
	if err := os.WriteFile(filepath.Join(b.cfg.ChartDir, "throughput.svg"), []byte(b.throughputSVG()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.cfg.ChartDir, "latency.svg"), []byte(b.latencySVG()), 0o644)
}

const svgHead = `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">` +
	`<rect width="100%%" height="100%%" fill="white"/>`

// logX maps v onto [0, w] on a log10 axis from lo to hi.
func logX(v, lo, hi, w float64) float64 {
	v = math.Max(v, lo)
	return (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo)) * w
}

func axis(sb *strings.Builder, x0, y0, w, h, lo, hi float64, unit string) {
	for v := lo; v <= hi*1.0001; v *= 10 {
		x := x0 + logX(v, lo, hi, w)
		fmt.Fprintf(sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x, y0, x, y0+h)
		fmt.Fprintf(sb, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s%s</text>`, x, y0+h+14, trimNum(v), unit)
	}
}

func trimNum(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%g", v)
	}
}

// throughputSVG draws one horizontal bar per workload on a log axis.
func (b *Bench) throughputSVG() string {
	const left, barH, gap, w = 340.0, 16.0, 6.0, 520.0
	h := 50 + float64(len(b.results))*(barH+gap) + 30
	var sb strings.Builder
	fmt.Fprintf(&sb, svgHead, int(left+w+120), int(h))
	fmt.Fprintf(&sb, `<text x="10" y="20" font-size="14" font-weight="bold">Throughput per workload (operations/s, log scale)</text>`)
	lo, hi := 0.1, 1.0
	for _, r := range b.results {
		for hi < r.Throughput() {
			hi *= 10
		}
	}
	y0 := 40.0
	axis(&sb, left, y0, w, float64(len(b.results))*(barH+gap), lo, hi, "")
	for i, r := range b.results {
		y := y0 + float64(i)*(barH+gap)
		color := "#4a7bd0"
		if strings.HasPrefix(r.Name, "baseline") {
			color = "#9aa5b1"
		}
		bw := logX(r.Throughput(), lo, hi, w)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, y+barH-4, html.EscapeString(r.Name))
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, left, y, math.Max(bw, 1), barH, color)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f">%.0f %s/s</text>`, left+bw+4, y+barH-4, r.Throughput(), r.Unit)
	}
	sb.WriteString(`</svg>`)
	return sb.String()
}

// latencySVG draws p50, p99 and p999 per workload on a log axis in milliseconds.
func (b *Bench) latencySVG() string {
	const left, barH, gap, w = 340.0, 7.0, 8.0, 520.0
	group := 3*barH + gap
	h := 70 + float64(len(b.results))*group + 30
	var sb strings.Builder
	fmt.Fprintf(&sb, svgHead, int(left+w+120), int(h))
	fmt.Fprintf(&sb, `<text x="10" y="20" font-size="14" font-weight="bold">Latency per workload (ms, log scale)</text>`)
	colors := []string{"#6baed6", "#2171b5", "#08306b"}
	for i, l := range []string{"p50", "p99", "p999"} {
		fmt.Fprintf(&sb, `<rect x="%d" y="30" width="12" height="10" fill="%s"/><text x="%d" y="39">%s</text>`, 10+i*70, colors[i], 26+i*70, l)
	}
	lo, hi := 0.1, 1.0
	for _, r := range b.results {
		for hi < ms(r.Pct(0.999)) {
			hi *= 10
		}
	}
	y0 := 55.0
	axis(&sb, left, y0, w, float64(len(b.results))*group, lo, hi, " ms")
	for i, r := range b.results {
		y := y0 + float64(i)*group
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, y+2*barH, html.EscapeString(r.Name))
		for k, q := range []float64{0.5, 0.99, 0.999} {
			v := ms(r.Pct(q))
			bw := logX(v, lo, hi, w)
			fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, left, y+float64(k)*barH, math.Max(bw, 1), barH-1, colors[k])
			if k == 2 {
				fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="10">%s</text>`, left+bw+4, y+3*barH-1, fmtDur(r.Pct(q)))
			}
		}
	}
	sb.WriteString(`</svg>`)
	return sb.String()
}
