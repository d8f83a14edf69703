package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

func TestScaleSizes(t *testing.T) {
	got, err := parseSizes("1000000, 10000,100000,10000")
	if err != nil || fmt.Sprint(got) != "[10000 100000 1000000]" {
		t.Fatalf("parseSizes = %v, %v; want sorted, deduplicated", got, err)
	}
	for _, bad := range []string{"", "10k", "50", "10000,"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
	for n, want := range map[int]string{1_000_000: "1M", 10_000: "10k", 2500: "2500", 20_000: "20k"} {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestScaleReportSideBySide: the projection-cost table has one row per change kind with the
// sizes side by side and the largest ÷ smallest ratio of the p50s.
func TestScaleReportSideBySide(t *testing.T) {
	b := &Bench{cfg: Config{ScaleWrites: 3}, sc: &scaleSet{}}
	for _, n := range []int{10_000, 1_000_000} {
		b.sc.sizes = append(b.sc.sizes, &pgtest.BigTenantData{BigTenant: pgtest.BigTenant{Referrals: n}})
	}
	for k, kind := range scaleKinds {
		for i, size := range []string{"10k", "1M"} {
			base := time.Duration(k+1) * time.Millisecond * time.Duration(1+i*3) // 1M costs 4× 10k
			r := &Result{Durations: []time.Duration{base, base, 10 * base}}
			b.sc.costs = append(b.sc.costs, scaleCost{kind: kind, size: size, result: r, round: base / 2})
		}
	}
	var sb strings.Builder
	b.scaleReport(func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) })
	out := sb.String()
	for _, want := range []string{
		"| change | 10k | 1M | 1M ÷ 10k |",
		"| new referral | 1.00 ms (0.50 ms) | 4.00 ms (2.00 ms) | 4.0 × |",
		"| code change | 3.00 ms (1.50 ms) | 12.0 ms (6.00 ms) | 4.0 × |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestScaleCostRatio: the projector's round time is compared when both sizes report it (a
// small tenant's change can show before its acknowledgement arrives), else the visible p50.
func TestScaleCostRatio(t *testing.T) {
	vis := func(d time.Duration) *Result { return &Result{Durations: []time.Duration{d}} }
	lo := scaleCost{result: vis(time.Millisecond / 2), round: 10 * time.Millisecond}
	hi := scaleCost{result: vis(30 * time.Millisecond), round: 15 * time.Millisecond}
	if what, _, _, ratio := costRatio(lo, hi); ratio != 1.5 || !strings.Contains(what, "round") {
		t.Errorf("with round times: %s %.2f, want the rounds' 1.5", what, ratio)
	}
	hi.round = 0
	if what, _, _, ratio := costRatio(lo, hi); ratio != 60 || !strings.Contains(what, "visible") {
		t.Errorf("without one round time: %s %.2f, want the visible p50s' 60", what, ratio)
	}
}

// TestServing: a rebuild counts as done only once its epoch is installed — not while the
// position is missing (a wiped Redis), marks an unfinished rebuild (no epoch) or a rebuild
// whose documents are written but not yet switched to (Building).
func TestServing(t *testing.T) {
	ctx := context.Background()
	_, rdb := cachetest.Server(t)
	c := cache.New(rdb)
	if serving(ctx, c) {
		t.Fatal("serving without a position")
	}
	for _, tc := range []struct {
		pos  cache.Position
		want bool
	}{
		{cache.Position{DatabaseID: "db"}, false},
		{cache.Position{DatabaseID: "db", Epoch: "e1", Building: true}, false},
		{cache.Position{DatabaseID: "db", Epoch: "e1"}, true},
	} {
		if _, err := c.SavePosition(ctx, tc.pos, ""); err != nil {
			t.Fatal(err)
		}
		if got := serving(ctx, c); got != tc.want {
			t.Errorf("serving with %+v = %v, want %v", tc.pos, got, tc.want)
		}
	}
}
