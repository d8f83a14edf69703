package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// scaleSize is one tenant size of BenchmarkProjectionCost.
type scaleSize struct {
	name      string
	referrals int
}

// scaleSizes are the tenant sizes measured: 10k and 100k referrals always, 1M as well when
// PHOENIX_BENCH_SCALE=1M (seeding and the first rebuild then take minutes, so `make bench-go`
// stays quick without it).
func scaleSizes() []scaleSize {
	sizes := []scaleSize{{"10k", 10_000}, {"100k", 100_000}}
	if strings.EqualFold(os.Getenv("PHOENIX_BENCH_SCALE"), "1M") {
		sizes = append(sizes, scaleSize{"1M", 1_000_000})
	}
	return sizes
}

// scaleEnv is one seeded tenant with a projector that has rebuilt its read models.
type scaleEnv struct {
	store *postgres.Store
	p     *Projector
	data  *pgtest.BigTenantData
	deep  []int          // players whose deposit pays commissions on 3 levels, each used once
	made  map[string]int // how many changes of each kind the benchmarks made so far
}

// scaleTenant seeds a database of its own with a tenant of size.referrals referrals (and a
// Redis of its own), then runs the projector until the first rebuild is done. tb owns the
// cleanups; the database is dropped when the package's benchmarks end (pgtest.Main).
func scaleTenant(tb testing.TB, size scaleSize) *scaleEnv {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(tb), "projection-cost-bench", 8)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	d, err := pgtest.SeedBigTenant(ctx, db, pgtest.BigTenant{Tenant: "scale-" + size.name, Referrals: size.referrals})
	if err != nil {
		tb.Fatal(err)
	}
	_, rdb := cachetest.Server(tb)
	p := New(db, cache.New(rdb), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Config{})
	t0 := time.Now()
	if err := drain(ctx, p); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%s: seeded %d referrals, %d affiliates (depth %d) in %s; first rebuild %s",
		size.name, d.Referrals, d.Referrers, d.MaxDepth, d.Took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	return &scaleEnv{store: postgres.NewStore(db), p: p, data: d, deep: d.DeepPlayers(10_000), made: map[string]int{}}
}

// drain runs rounds until the projector has nothing more to do.
func drain(ctx context.Context, p *Projector) error {
	for again := true; again; {
		var err error
		if again, err = p.Round(ctx); err != nil {
			return err
		}
	}
	return nil
}

// scaleChanges are the writes whose projection is measured: each makes one change the way the
// Admin Gateway does (through the storage layer, so the change log holds what a real request
// leaves there).
var scaleChanges = []struct {
	name  string
	write func(ctx context.Context, e *scaleEnv, k int) error
}{
	{"referral", func(ctx context.Context, e *scaleEnv, k int) error {
		// A new player applies the code of one referrer (rotating over all of them).
		_, _, err := e.store.ApplyCode(ctx, e.data.Tenant, fmt.Sprintf("newcomer%d", k), e.data.Code(k%e.data.Referrers), nil, nil)
		return err
	}},
	{"event", func(ctx context.Context, e *scaleEnv, k int) error {
		// A deposit converts a pending referral: 2 rewards and commissions on 4 affiliates
		// (the direct one and 3 levels above).
		if k >= len(e.deep) {
			return fmt.Errorf("only %d players with a 3-level upline were seeded", len(e.deep))
		}
		out, err := e.store.ProcessEvent(ctx, referral.Event{TenantID: e.data.Tenant, EventID: fmt.Sprintf("bench_dep_%d", k),
			Type: "deposit.completed", UserID: e.data.Player(e.deep[k]), OccurredAt: time.Now(), Payload: json.RawMessage(`{"amount": 5000}`)})
		if err == nil && len(out.Commissions) != 4 {
			err = fmt.Errorf("event paid %d commissions, want 4", len(out.Commissions))
		}
		return err
	}},
	{"code", func(ctx context.Context, e *scaleEnv, k int) error {
		limit := 10_000_000 + k
		_, err := e.store.PatchCode(ctx, e.data.Tenant, e.data.CodeID(k%e.data.Referrers),
			referral.CodePatch{SetUsageLimit: true, UsageLimit: &limit})
		return err
	}},
}

// BenchmarkProjectionCost measures what the projector spends on one change — a new referral,
// one event paying 3 commission levels, one code change — in tenants of 10k, 100k (and 1M)
// referrals: each operation is one write (not timed) followed by the rounds that apply it
// (timed). SPEC §7 asks for a cost proportional to the change, so the sizes should agree within
// 2×; BENCHMARKS.md reports them side by side.
func BenchmarkProjectionCost(b *testing.B) {
	var mu sync.Mutex
	envs := map[string]*scaleEnv{}
	env := func(size scaleSize) *scaleEnv {
		mu.Lock()
		defer mu.Unlock()
		if envs[size.name] == nil {
			envs[size.name] = scaleTenant(b, size)
		}
		return envs[size.name]
	}
	ctx := context.Background()
	for _, change := range scaleChanges {
		for _, size := range scaleSizes() {
			b.Run(change.name+"/"+size.name, func(b *testing.B) {
				e := env(size) // seeding and the first rebuild are not timed
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					k := e.made[change.name]
					e.made[change.name]++
					if err := change.write(ctx, e, k); err != nil {
						b.Fatal(err)
					}
					applied := qryCount(e.p.metrics.Applied)
					b.StartTimer()
					if err := drain(ctx, e.p); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if qryCount(e.p.metrics.Applied) == applied {
						b.Fatal("the rounds applied no change")
					}
					b.StartTimer()
				}
			})
		}
	}
}
