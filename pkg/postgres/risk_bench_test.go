package postgres_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// BenchmarkStoreApplyCodeRisk is BenchmarkApplyCodeRisk (pkg/adminapi) without HTTP: one
// Store.ApplyCode per iteration, one client, over 1,000,000 stored signals (COPY, then
// ANALYZE), under an inactive policy and under the default one, interleaved in one run. Every
// referee and referrer has a device and an address signal of its own, so every apply is
// allowed and both cases write the same.
func BenchmarkStoreApplyCodeRisk(b *testing.B) {
	const users = 500_000
	s := postgres.NewStore(pgtest.MustOpenDB(b))
	tenant := pgtest.Tenant(b)
	ctx := context.Background()
	db := s.DB()
	key := []byte("bench-address-key-of-at-least-32-bytes")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(pq.CopyIn("risk_signals", "tenant_id", "user_id", "kind", "value", "seen_at"))
	if err != nil {
		b.Fatal(err)
	}
	now := s.Now().UTC()
	for i := range users {
		user := fmt.Sprintf("u%d", i)
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := stmt.Exec(tenant, user, 1, []byte(fmt.Sprintf("device-%d", i)), now); err != nil {
			b.Fatal(err)
		}
		if _, err := stmt.Exec(tenant, user, 2, referral.AddressHash(key, addr), now); err != nil {
			b.Fatal(err)
		}
	}
	for _, err := range []error{func() error { _, err := stmt.Exec(); return err }(), stmt.Close(), tx.Commit()} {
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `ANALYZE risk_signals`); err != nil {
		b.Fatal(err)
	}
	next := 0 // referee u<next> applies the code of u<next + users/2>
	for _, bc := range []struct {
		name   string
		active bool
	}{{"risk=off", false}, {"risk=default", true}, {"risk=off", false}, {"risk=default", true}} {
		b.Run(bc.name, func(b *testing.B) {
			p := referral.DefaultRiskPolicy(tenant)
			p.Active = bc.active
			if _, err := s.PutRiskPolicy(ctx, p); err != nil {
				b.Fatal(err)
			}
			if next+b.N > users/2 {
				b.Skip("out of seeded users")
			}
			const q = `
				INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
				SELECT gen_random_uuid(), $1, 'RISK' || i, 'u' || (i + $3), true, 'player', now(), now()
				FROM generate_series($2::bigint, $2 + $4 - 1) AS i`
			if _, err := db.ExecContext(ctx, q, tenant, next, users/2, b.N); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `ANALYZE referral_codes`); err != nil {
				b.Fatal(err)
			}
			first := next
			next += b.N
			b.ResetTimer()
			for i := first; i < first+b.N; i++ {
				ref, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("u%d", i), fmt.Sprintf("RISK%d", i), nil, nil)
				if err != nil || ref.Review != nil {
					b.Fatalf("apply %d: %v (review %+v)", i, err, ref.Review)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
		})
	}
}
