package projector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// BenchmarkRoundNewReferral measures one catch-up round that applies one new referral, in
// tenants of 10k and 100k referrals (one referrer per 10 referrals, spread over 100 days): the
// cost of a change must not grow with the tenant.
func BenchmarkRoundNewReferral(b *testing.B) {
	for _, size := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("referrals=%d", size), func(b *testing.B) {
			ctx := context.Background()
			db, err := postgres.Open(ctx, pgtest.NewDatabase(b), "qry-projector-bench", 4)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			_, rdb := cachetest.Server(b)
			p := New(db, cache.New(rdb), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Config{})
			const codes = `INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
				SELECT gen_random_uuid(), 'big', 'LB' || i, 'r' || i, true, 'player', now(), now() FROM generate_series(1, $1) i`
			const refs = `INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, created_at, updated_at)
				SELECT gen_random_uuid(), 'big', c.id, c.code, c.owner_user_id, $3 || i,
				       (ARRAY['pending', 'converted', 'verified', 'rejected'])[1 + i % 4],
				       now() - make_interval(secs => (i * 7919) % (100 * 86400)), now()
				FROM generate_series(1, $1) i JOIN referral_codes c ON c.tenant_id = 'big' AND c.code = 'LB' || (1 + (i * 31) % $2)`
			referrers := size / 10
			if _, err := db.Exec(codes, referrers); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(refs, size, referrers, "seed"); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`ANALYZE`); err != nil {
				b.Fatal(err)
			}
			round := func() {
				for again := true; again; {
					if again, err = p.Round(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			round() // the rebuild
			p.lastVerify = p.Now().Add(verifyEvery * 1000)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if _, err := db.Exec(refs, 1, referrers, fmt.Sprintf("new%d_", i)); err != nil {
					b.Fatal(err)
				}
				p.lastSweep = p.Now() // the sweep is measured apart
				b.StartTimer()
				round()
			}
		})
	}
}
