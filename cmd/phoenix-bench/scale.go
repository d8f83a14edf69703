package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// The scale section's workloads (keys of the report).
const (
	wScaleEcho         = "baseline: bare Echo (scale section)"
	wScaleHot          = "scale: hot reads, 4 routes, big tenant"
	wScaleFreshOwn     = "scale freshness: writer's own documents"
	wScaleFreshSmall   = "scale freshness: another (small) tenant"
	wScaleFreshBoard   = "scale freshness: leaderboard me"
	wScaleBacklogSmall = "scale backlog: small tenant's writes"
)

// scaleCost is what the projection-cost workload measured for one change kind at one size.
type scaleCost struct {
	kind, size string
	result     *Result
	round      time.Duration // mean projector round per write, from /metrics (0: not exposed)
}

// scaleKinds are the changes whose projection cost is measured, in the report's order.
var scaleKinds = []string{"new referral", "event, 3 commission levels", "code change"}

// scale runs the scale section (SPEC §9, scale of the read model) on a stack of its own: it
// stops the main stack, seeds the scale database, starts an Admin Gateway and one Query Gateway
// on it (whose first rebuild it times) and runs the workloads; at the end it drops the database.
func (b *Bench) scale(ctx context.Context) error {
	sizes, err := parseSizes(b.cfg.ScaleSizes)
	if err != nil {
		return err
	}
	for _, p := range []*Proc{b.qa, b.qb, b.admin} {
		if p != nil {
			p.Stop()
		}
	}
	if b.qb == nil {
		b.qb = &Proc{Name: "query-gateway-b"} // not started: the memory rows read 0
	}
	b.sc = &scaleSet{dbName: b.cfg.DBName + "_scale"}
	logs, _ := filepath.Abs(b.cfg.LogDir)
	b.admin = &Proc{Name: "admin-gateway (scale)", Bin: b.cfg.AdminBin, Env: b.gatewayEnvOn(b.cfg.AdminPort, b.scaleDSN()),
		Addr: fmt.Sprintf("127.0.0.1:%d", b.cfg.AdminPort), Log: filepath.Join(logs, "admin-gateway-scale.log")}
	b.qa = &Proc{Name: "query-gateway (scale)", Bin: b.cfg.QueryBin, Env: b.gatewayEnvOn(b.cfg.QueryPort, b.scaleDSN()),
		Addr: fmt.Sprintf("127.0.0.1:%d", b.cfg.QueryPort), Log: filepath.Join(logs, "query-gateway-scale.log")}
	defer b.scaleDrop()
	if err := b.scaleSeed(ctx, sizes); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{b.scaleRebuild, b.scaleCosts, b.scaleHotReads, b.scaleFreshness, b.scaleBacklog} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// scaleRebuild starts the gateways on the seeded scale database and a wiped Redis and times the
// Query Gateway's full rebuild.
func (b *Bench) scaleRebuild(ctx context.Context) error {
	for _, p := range []*Proc{b.admin, b.qa} {
		b.logf("scale: starting %s on %s", p.Name, p.Addr)
		if err := p.Start(ctx); err != nil {
			return err
		}
	}
	took, hwm, err := b.waitRebuild(ctx, b.qa)
	if err != nil {
		return err
	}
	total := b.sc.small.Referrals
	for _, d := range b.sc.sizes {
		total += d.Referrals
	}
	b.logf("scale: full rebuild in %.1fs (peak RSS %s)", took.Seconds(), mib(hwm))
	b.targets = append(b.targets, Target{Name: "Scale: full rebuild",
		Goal:     "query gateway RSS < 100 MiB, time reported",
		Measured: fmt.Sprintf("%.1f s, peak RSS %s (the scale database: %d referrals in %d tenants, %s of them in the big tenant)", took.Seconds(), mib(hwm), total, len(b.sc.sizes)+1, sizeLabel(b.sc.big().Referrals)),
		Met:      hwm < 100<<20})
	b.memRows = append(b.memRows, MemRow{Workload: "scale: full rebuild", QueryHWM: hwm})
	for _, p := range []*Proc{b.admin, b.qa} {
		p.ResetPeak()
	}
	return nil
}

// getJSON reads url with tok into out.
func (b *Bench) getJSON(ctx context.Context, url, tok string, out any) error {
	_, err := b.http.Do(ctx, http.MethodGet, url, tok, nil, out)
	return err
}

// scaleChange makes the k-th write of kind in tenant d through the Admin Gateway and returns
// how long after its acknowledgement the Query Gateway showed it, waiting at most limit.
func (b *Bench) scaleChange(ctx context.Context, kind string, d *pgtest.BigTenantData, k int, limit time.Duration) (time.Duration, error) {
	au, qg := b.admin.URL(), b.qa.URL()
	player := func(u string) string { return b.token(auth.RolePlayer, d.Tenant, u) }
	switch kind {
	case "new referral":
		// A new player applies a referrer's code; the referrer's all-time stats count it.
		r := (k*7919 + 1) % d.Referrers
		tok := player(d.Referrer(r))
		var before struct {
			Total int64 `json:"total_referrals"`
		}
		if err := b.getJSON(ctx, qg+"/v1/referral/stats?period=all", tok, &before); err != nil {
			return 0, err
		}
		newcomer := player(fmt.Sprintf("sc%s_%d", b.runID, k))
		if _, err := b.http.Do(ctx, http.MethodPost, au+"/v1/referral/apply-code", newcomer, map[string]any{"code": d.Code(r)}, nil); err != nil {
			return 0, err
		}
		return b.poll(ctx, qg+"/v1/referral/stats?period=all", tok, time.Now(), limit, func(raw []byte) bool {
			var now struct {
				Total int64 `json:"total_referrals"`
			}
			return json.Unmarshal(raw, &now) == nil && now.Total > before.Total
		})
	case "event, 3 commission levels":
		// A deposit of a player three levels below an affiliate: that ancestor's commission
		// list shows the level-3 row.
		deep := d.DeepPlayers(k + 1)
		if len(deep) <= k {
			return 0, fmt.Errorf("%s: only %d players with a 3-level upline", d.Tenant, len(deep))
		}
		i := deep[k]
		top := d.Parent(d.Parent(d.Parent(d.ReferrerOf(i))))
		tok := player(d.Referrer(top))
		var before struct {
			Total int `json:"total"`
		}
		if err := b.getJSON(ctx, qg+"/v1/affiliate/commissions?limit=1", tok, &before); err != nil {
			return 0, err
		}
		ev := map[string]any{"event_id": fmt.Sprintf("sc%s_%d", b.runID, k), "type": "deposit.completed", "user_id": d.Player(i),
			"payload": map[string]any{"amount": 5000, "currency": "EUR"}}
		if _, err := b.http.Do(ctx, http.MethodPost, au+"/v1/events", b.token(auth.RoleService, d.Tenant, "bench_platform"), ev, nil); err != nil {
			return 0, err
		}
		return b.poll(ctx, qg+"/v1/affiliate/commissions?limit=1", tok, time.Now(), limit, func(raw []byte) bool {
			var now struct {
				Total int `json:"total"`
			}
			return json.Unmarshal(raw, &now) == nil && now.Total > before.Total
		})
	case "code change":
		r := (k*7919 + 3) % d.Referrers
		return b.patchAndSee(ctx, d, r, 300_000+k, limit)
	}
	return 0, fmt.Errorf("unknown change %q", kind)
}

// waitPosition waits at most within until the projector's position has applied every change up
// to seq and no catch-up is running (the position has no target).
func (b *Bench) waitPosition(ctx context.Context, seq int64, within time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr, DB: b.cfg.RedisDB})
	defer rdb.Close()
	c := cache.New(rdb)
	deadline := time.Now().Add(within)
	for {
		if pos, ok, err := c.Position(ctx); err == nil && ok && pos.Seq >= seq && pos.Target == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the position did not pass change %d within %s", seq, within.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// patchAndSee sets the usage_limit of referrer r's code and polls the owner's code list until
// it shows the new value or a higher one. Each workload writes limits above those of the
// workloads before it (300,000s, 400,000, 500,000s, …), so a value seen is this write's or a
// later one's.
func (b *Bench) patchAndSee(ctx context.Context, d *pgtest.BigTenantData, r, limit int, within time.Duration) (time.Duration, error) {
	if _, err := b.http.Do(ctx, http.MethodPatch, b.admin.URL()+"/v1/referral/codes/"+d.CodeID(r).String(),
		b.token(auth.RoleTenantAdmin, d.Tenant, "bench_admin"), map[string]any{"usage_limit": limit}, nil); err != nil {
		return 0, err
	}
	id := d.CodeID(r)
	return b.waitVisible(ctx, b.qa.URL(), b.token(auth.RolePlayer, d.Tenant, d.Referrer(r)), time.Now(), within, func(items []codeJSON) bool {
		for _, it := range items {
			if it.ID == id && it.UsageLimit != nil && *it.UsageLimit >= limit {
				return true
			}
		}
		return false
	})
}

// scaleCosts: for each change kind and tenant size, cfg.ScaleWrites isolated writes, one at a
// time on an otherwise idle stack; each figure is acknowledgement → visible on the Query
// Gateway, and the projector's own round time is read from its /metrics around each write.
func (b *Bench) scaleCosts(ctx context.Context) error {
	const sum, count = "phoenix_projector_round_duration_seconds_sum", "phoenix_projector_round_duration_seconds_count"
	for _, kind := range scaleKinds {
		for _, d := range b.sc.sizes {
			b.logf("scale: projection cost of one %s at %s referrals (%d writes)", kind, sizeLabel(d.Referrals), b.cfg.ScaleWrites)
			r := &Result{Name: fmt.Sprintf("scale: one %s, %s referrals", kind, sizeLabel(d.Referrals)), Workers: 1, Unit: "write", PerOp: 1}
			var rounds float64
			var n int
			t0 := time.Now()
			for k := range b.cfg.ScaleWrites {
				s0, c0 := b.qa.Metric(ctx, sum), b.qa.Metric(ctx, count)
				dur, err := b.scaleChange(ctx, kind, d, k, time.Minute)
				if err != nil {
					r.Errors++
					if r.FirstErr == "" {
						r.FirstErr = err.Error()
					}
				}
				r.Durations = append(r.Durations, dur)
				if s1, c1 := b.qa.Metric(ctx, sum), b.qa.Metric(ctx, count); c0 >= 0 && c1 > c0 {
					rounds += (s1 - s0) / (c1 - c0)
					n++
				}
			}
			r.Elapsed, r.Ops = time.Since(t0), len(r.Durations)
			sortDurations(r.Durations)
			c := scaleCost{kind: kind, size: sizeLabel(d.Referrals), result: r}
			if n > 0 {
				c.round = time.Duration(rounds / float64(n) * float64(time.Second))
				r.Note = fmt.Sprintf("ack → visible; the projector's rounds took %s on average per write", fmtDur(c.round))
			}
			b.sc.costs = append(b.sc.costs, c)
			b.add(r)
		}
	}
	small, big := b.sc.sizes[0], b.sc.big()
	for _, kind := range scaleKinds {
		lo, hi := b.scaleCostOf(kind, sizeLabel(small.Referrals)), b.scaleCostOf(kind, sizeLabel(big.Referrals))
		what, a, z, ratio := costRatio(lo, hi)
		b.targets = append(b.targets, Target{Name: "Scale: projection cost, " + kind,
			Goal:     fmt.Sprintf("within 2× between %s and %s referrals", lo.size, hi.size),
			Measured: fmt.Sprintf("%s %s at %s, %s at %s: %.1f ×", what, fmtDur(a), lo.size, fmtDur(z), hi.size, ratio),
			Met:      ratio <= 2 && lo.result.Errors == 0 && hi.result.Errors == 0})
	}
	return nil
}

// costRatio compares the cost of one change kind at two sizes: the projector's own mean round
// time when the gateway reports it for both (a small tenant's change can be visible before its
// acknowledgement reaches the bench), else the p50 of acknowledgement → visible.
func costRatio(lo, hi scaleCost) (what string, a, z time.Duration, ratio float64) {
	what, a, z = "p50 ack → visible", lo.result.Pct(0.5), hi.result.Pct(0.5)
	if lo.round > 0 && hi.round > 0 {
		what, a, z = "mean projector round per write", lo.round, hi.round
	}
	return what, a, z, float64(z) / float64(max(a, time.Microsecond))
}

func (b *Bench) scaleCostOf(kind, size string) scaleCost {
	for _, c := range b.sc.costs {
		if c.kind == kind && c.size == size {
			return c
		}
	}
	return scaleCost{kind: kind, size: size, result: &Result{}}
}

// scaleUsers returns up to n referrers of d (all of them affiliates, so every hot route answers).
func scaleUsers(d *pgtest.BigTenantData, n int) []string {
	users := make([]string, min(n, d.Referrers))
	for i := range users {
		users[i] = d.Referrer(i)
	}
	return users
}

// scaleHotReads: the bare Echo baseline, then the four-route hot-read mix on the big tenant.
func (b *Bench) scaleHotReads(ctx context.Context) error {
	d := b.sc.big()
	users := scaleUsers(d, 2000)
	for _, u := range users {
		b.token(auth.RolePlayer, d.Tenant, u)
	}
	tok := func(i int) string { return b.token(auth.RolePlayer, d.Tenant, users[(i*7919)%len(users)]) }
	if err := b.bareEcho(ctx, wScaleEcho, tok); err != nil {
		return err
	}
	qg := b.qa.URL()
	b.logf("scale: hot reads on the %s tenant (%d connections)", sizeLabel(d.Referrals), b.cfg.Workers)
	r := b.add(Run(ctx, wScaleHot, b.cfg.Workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		_, err := b.http.Do(ctx, http.MethodGet, qg+hotRoutes[i%len(hotRoutes)], tok(i), nil, nil)
		return err
	}))
	echo := b.result(wScaleEcho)
	x := r.Throughput() / max(echo.Throughput(), 1)
	b.targets = append(b.targets,
		Target{Name: "Scale: hot GET vs bare Echo", Goal: fmt.Sprintf("≥ 0.7 × bare Echo throughput at %d connections, %s-referral tenant", r.Workers, sizeLabel(d.Referrals)),
			Measured: fmt.Sprintf("%.2f × (%.0f vs %.0f req/s)", x, r.Throughput(), echo.Throughput()), Met: x >= 0.7 && r.Errors == 0},
		Target{Name: "Scale: hot GET p99", Goal: fmt.Sprintf("p99 ≤ 10 ms at %d connections", r.Workers),
			Measured: fmtDur(r.Pct(0.99)), Met: r.Pct(0.99) <= 10*time.Millisecond && r.Errors == 0})
	return nil
}

// collector gathers the durations and errors of concurrent polls into a Result.
type collector struct {
	mu sync.Mutex
	r  *Result
}

func (c *collector) add(d time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.r.Ops++
	if err != nil {
		c.r.Errors++
		if c.r.FirstErr == "" {
			c.r.FirstErr = err.Error()
		}
		return
	}
	c.r.Durations = append(c.r.Durations, d)
}

func (c *collector) done(elapsed time.Duration) *Result {
	c.r.Elapsed = elapsed
	sortDurations(c.r.Durations)
	return c.r
}

// scalePoll is how long the freshness and backlog workloads poll one write before they count it
// as not visible: far beyond the 1 s bound, so that a slow read side shows how slow it is.
const scalePoll = 10 * time.Second

// smallWriter makes a write into the small tenant every 100 ms until stop closes, each a code
// PATCH (limits from base up) polled on the owner's code list for up to scalePoll, into c; it
// returns when every poll has ended.
func (b *Bench) smallWriter(ctx context.Context, small *pgtest.BigTenantData, base int, c *collector, stop <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.add(b.patchAndSee(ctx, small, k%small.Referrers, base+k, scalePoll))
		}()
	}
}

// scaleFreshness: cfg.FreshRate writes/s into the big tenant — code PATCHes, every 10th write
// an apply-code of a new player — while a small tenant takes 10 writes/s. Every 4th PATCH is
// polled on its owner's code list, every apply on the referrer's leaderboard (`me` counts the
// new referral), every small-tenant write on its owner's code list.
func (b *Bench) scaleFreshness(ctx context.Context) error {
	d, small := b.sc.big(), b.sc.small
	if _, err := b.patchAndSee(ctx, d, d.Referrers-1, 400_000, b.cfg.ScaleWait); err != nil {
		return fmt.Errorf("settle before the freshness workload: %w", err)
	}
	interval := time.Second / time.Duration(max(b.cfg.FreshRate, 1))
	total := int(b.cfg.Duration / interval)
	applies := (total + 9) / 10
	slots := min(200, d.Referrers)
	// The leaderboard `me` of each referrer that gets a new referral, read before.
	type board struct {
		Me *struct {
			Total int64 `json:"total_referrals"`
		} `json:"me"`
	}
	const lbURL = "/v1/referral/leaderboard?period=30d&limit=10"
	referrer := func(j int) int { return (j*7919 + 17) % d.Referrers }
	before := make([]int64, applies)
	for j := range applies {
		var lb board
		if err := b.getJSON(ctx, b.qa.URL()+lbURL, b.token(auth.RolePlayer, d.Tenant, d.Referrer(referrer(j))), &lb); err != nil {
			return err
		}
		if lb.Me != nil {
			before[j] = lb.Me.Total
		}
	}
	own := &collector{r: &Result{Name: wScaleFreshOwn, Workers: slots, Unit: "write", PerOp: 1}}
	lbc := &collector{r: &Result{Name: wScaleFreshBoard, Workers: slots, Unit: "write", PerOp: 1}}
	smc := &collector{r: &Result{Name: wScaleFreshSmall, Workers: 1, Unit: "write", PerOp: 1}}
	b.logf("scale: freshness at %d writes/s on the %s tenant, 10 writes/s on %s", b.cfg.FreshRate, sizeLabel(d.Referrals), small.Tenant)
	var wg sync.WaitGroup
	stopSmall := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.smallWriter(ctx, small, 600_000, smc, stopSmall)
	}()
	writes, failed := 0, 0
	var fmu sync.Mutex
	tick := time.NewTicker(interval)
	t0 := time.Now()
	for i := range total {
		<-tick.C
		writes++
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%10 == 0 {
				j := i / 10
				r := referrer(j)
				tok := b.token(auth.RolePlayer, d.Tenant, d.Referrer(r))
				newcomer := b.token(auth.RolePlayer, d.Tenant, fmt.Sprintf("sf%s_%d", b.runID, j))
				if _, err := b.http.Do(ctx, http.MethodPost, b.admin.URL()+"/v1/referral/apply-code", newcomer, map[string]any{"code": d.Code(r)}, nil); err != nil {
					lbc.add(0, err)
					return
				}
				lbc.add(b.poll(ctx, b.qa.URL()+lbURL, tok, time.Now(), scalePoll, func(raw []byte) bool {
					var lb board
					return json.Unmarshal(raw, &lb) == nil && lb.Me != nil && lb.Me.Total > before[j]
				}))
				return
			}
			r := d.Referrers/2 + i%slots
			if i%freshSample == 1 {
				own.add(b.patchAndSee(ctx, d, r%d.Referrers, 500_000+i, scalePoll))
				return
			}
			_, err := b.http.Do(ctx, http.MethodPatch, b.admin.URL()+"/v1/referral/codes/"+d.CodeID(r%d.Referrers).String(),
				b.token(auth.RoleTenantAdmin, d.Tenant, "bench_admin"), map[string]any{"usage_limit": 500_000 + i}, nil)
			if err != nil {
				fmu.Lock()
				failed++
				fmu.Unlock()
			}
		}()
	}
	tick.Stop()
	elapsed := time.Since(t0) // the writing, not the wait for the last polls
	close(stopSmall)
	wg.Wait()
	rate := float64(writes) / elapsed.Seconds()
	for _, c := range []*collector{own, smc, lbc} {
		r := c.done(elapsed)
		r.written = writes
		if c == smc {
			r.written = r.Ops
		}
		r.Note = "the same run as the row before"
		if c == own {
			r.Note = fmt.Sprintf("%d writes in %.1f s (%.0f/s) into the %s tenant, %d of them not acknowledged; every 4th code PATCH polled on the owner's code list, every 10th write an apply-code polled on the referrer's leaderboard `me`; meanwhile 10 writes/s into %s, each polled on the owner's code list; each poll gives up after %s",
				writes, elapsed.Seconds(), rate, sizeLabel(d.Referrals), failed, small.Tenant, scalePoll)
		}
		b.add(r)
	}
	for _, c := range []struct {
		name string
		r    *Result
	}{{"writer's own documents", own.r}, {"another tenant", smc.r}} {
		b.targets = append(b.targets, Target{Name: "Scale: freshness, " + c.name,
			Goal:     fmt.Sprintf("p99 ≤ 50 ms at %d writes/s into the %s-referral tenant", b.cfg.FreshRate, sizeLabel(d.Referrals)),
			Measured: fmt.Sprintf("p50 %s, p99 %s, max %s at %.0f writes/s; %d of %d not visible within %s", fmtDur(c.r.Pct(0.5)), fmtDur(c.r.Pct(0.99)), fmtDur(c.r.Pct(1)), rate, c.r.Errors, c.r.Ops, scalePoll),
			Met:      c.r.Pct(0.99) <= 50*time.Millisecond && c.r.Errors == 0 && len(c.r.Durations) > 0})
	}
	lb := lbc.r
	b.targets = append(b.targets, Target{Name: "Scale: freshness, leaderboard me",
		Goal:     "a new referral in `me` within 1 s at worst, p99 ≤ 50 ms",
		Measured: fmt.Sprintf("p50 %s, p99 %s, max %s; %d of %d not within %s", fmtDur(lb.Pct(0.5)), fmtDur(lb.Pct(0.99)), fmtDur(lb.Pct(1)), lb.Errors, lb.Ops, scalePoll),
		Met:      lb.Errors == 0 && len(lb.Durations) > 0 && lb.Pct(1) <= time.Second && lb.Pct(0.99) <= 50*time.Millisecond})
	return nil
}

// scaleBacklog: with the Query Gateway stopped, cfg.ScaleBacklog changes are written into the
// big tenant (UPDATEs of its referrals, 1,000 per transaction, so the change log records every
// row); the gateway is started again and, while it catches up, its RSS is sampled and a small
// tenant's writes are timed (one every 100 ms). Caught up = a write into the big tenant made
// right after the restart is visible.
func (b *Bench) scaleBacklog(ctx context.Context) error {
	d, small := b.sc.big(), b.sc.small
	n := min(b.cfg.ScaleBacklog, d.Referrals)
	b.qa.Stop()
	var seq0 int64
	if err := b.sc.db.GetContext(ctx, &seq0, `SELECT coalesce(max(seq), 0) FROM changes`); err != nil {
		return err
	}
	b.logf("scale: writing a backlog of %d changes into %s with the query gateway stopped", n, d.Tenant)
	t0 := time.Now()
	const batch = 1000
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * batch; start < n; start += 2 * batch {
				ids := make(pq.StringArray, 0, batch)
				for i := start; i < min(start+batch, n); i++ {
					ids = append(ids, d.ReferralID(i).String())
				}
				if _, err := b.sc.db.ExecContext(ctx, `UPDATE referrals SET updated_at = updated_at + interval '1 microsecond'
					WHERE id = ANY($1::uuid[])`, ids); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("write the backlog: %w", err)
	}
	var backlog int
	var seqEnd int64
	if err := b.sc.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(seq), 0) FROM changes WHERE seq > $1`, seq0).Scan(&backlog, &seqEnd); err != nil {
		return err
	}
	written := time.Since(t0)
	b.logf("scale: backlog written in %.1fs (%d changes in the log); restarting the query gateway", written.Seconds(), backlog)
	if err := b.qa.Start(ctx); err != nil {
		return err
	}
	start := time.Now()
	stop := make(chan struct{})
	smc := &collector{r: &Result{Name: wScaleBacklogSmall, Workers: 1, Unit: "write", PerOp: 1}}
	var maxRSS int64
	capped := false
	probe, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		b.smallWriter(ctx, small, 700_000, smc, stop)
	}()
	go func() { // RSS samples
		defer bg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			rss, hwm := b.qa.Memory()
			maxRSS = max(maxRSS, rss, hwm)
			if maxRSS > int64(b.cfg.ScaleRSSCap)<<20 && !capped {
				capped = true // the machine is shared: stop waiting rather than let it grow
				cancelProbe()
			}
		}
	}()
	// The probe alone does not show the backlog applied: catch-up rounds apply the changes
	// committed after the catch-up began too, so a fresh write shows long before the backlog
	// does. Caught up is the position past the backlog's last change with no catch-up running.
	_, err := b.patchAndSee(probe, d, 0, 800_000, b.cfg.ScaleWait)
	if err == nil {
		err = b.waitPosition(probe, seqEnd, b.cfg.ScaleWait-time.Since(start))
	}
	caughtUp := time.Since(start) // from the restart, not from the probe's acknowledgement
	close(stop)
	bg.Wait()
	_, hwm := b.qa.Memory()
	maxRSS = max(maxRSS, hwm)
	verdict := fmt.Sprintf("caught up %.1f s after the restart", caughtUp.Seconds())
	switch {
	case capped:
		err = fmt.Errorf("RSS past %d MiB", b.cfg.ScaleRSSCap)
		verdict = fmt.Sprintf("not caught up: the wait stopped %.1f s after the restart, when the query gateway's RSS passed --scale-rss-cap (%d MiB)", caughtUp.Seconds(), b.cfg.ScaleRSSCap)
	case err != nil:
		verdict = fmt.Sprintf("not caught up %s after the restart (%v)", b.cfg.ScaleWait, err)
	}
	r := smc.done(time.Since(start))
	r.written = r.Ops
	r.Note = fmt.Sprintf("a backlog of %d changes in %s (written in %.1f s, 1,000 per transaction, query gateway stopped) %s; query gateway peak RSS %s; one write into %s every 100 ms meanwhile, polled up to %s",
		backlog, d.Tenant, written.Seconds(), verdict, mib(maxRSS), small.Tenant, scalePoll)
	b.add(r)
	b.targets = append(b.targets,
		Target{Name: "Scale: backlog catch-up", Goal: fmt.Sprintf("a %d-change backlog catches up with query gateway RSS < 100 MiB", backlog),
			Measured: fmt.Sprintf("%s, peak RSS %s", verdict, mib(maxRSS)), Met: err == nil && maxRSS < 100<<20},
		Target{Name: "Scale: small tenant during the backlog", Goal: "every write visible within 1 s",
			Measured: fmt.Sprintf("p50 %s, p99 %s, max %s; %d of %d not visible within %s", fmtDur(r.Pct(0.5)), fmtDur(r.Pct(0.99)), fmtDur(r.Pct(1)), r.Errors, r.Ops, scalePoll),
			Met:      r.Errors == 0 && len(r.Durations) > 0 && r.Pct(1) <= time.Second})
	return nil
}

// scaleReport writes the scale section of the report: the data set and the projection costs
// side by side (the workloads and the targets are in the tables above).
func (b *Bench) scaleReport(p func(format string, args ...any)) {
	if b.sc == nil || len(b.sc.costs) == 0 {
		return
	}
	p("\n## Scale: the million-referral tenant\n\n")
	for _, s := range b.sc.info {
		p("- %s\n", s)
	}
	sizes := make([]string, len(b.sc.sizes))
	for i, d := range b.sc.sizes {
		sizes[i] = sizeLabel(d.Referrals)
	}
	p("\nProjection cost of one change (p50 of %d isolated writes: acknowledged by the Admin Gateway → visible on the Query Gateway; in brackets the projector's mean round time per write from its /metrics, which the ratio compares when both sizes have it):\n\n", b.cfg.ScaleWrites)
	p("| change | %s | %s ÷ %s |\n|---|%s---|\n", strings.Join(sizes, " | "), sizes[len(sizes)-1], sizes[0], strings.Repeat("---|", len(sizes)))
	for _, kind := range scaleKinds {
		cells := make([]string, len(sizes))
		for i, s := range sizes {
			c := b.scaleCostOf(kind, s)
			cells[i] = fmtDur(c.result.Pct(0.5))
			if c.round > 0 {
				cells[i] += " (" + fmtDur(c.round) + ")"
			}
			if c.result.Errors > 0 {
				cells[i] += fmt.Sprintf(", %d errors", c.result.Errors)
			}
		}
		_, _, _, ratio := costRatio(b.scaleCostOf(kind, sizes[0]), b.scaleCostOf(kind, sizes[len(sizes)-1]))
		p("| %s | %s | %.1f × |\n", kind, strings.Join(cells, " | "), ratio)
	}
}
