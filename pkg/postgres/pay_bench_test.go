package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// Shape of the payout benchmark (SPEC §9): 10,000 affiliates with 100 available rows each.
const (
	payBenchAffiliates = 10_000
	payBenchRows       = 100
)

// payBenchSeed fills a fresh database with the benchmark's affiliates and commission rows in
// bulk, straight in SQL (INSERT … SELECT FROM generate_series, with triggers and key checks
// off for the seed only: it is not what is measured), and returns the store. Commission ids
// are time-ordered as the ledger's are (UUIDv7): the rows of many affiliates interleave, as
// events arrive.
func payBenchSeed(b *testing.B) (*postgres.Store, *sqlx.DB, string) {
	b.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(b), "pay-bench", 8)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	tenant := "bench-payouts"
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`SET LOCAL session_replication_role = replica`, nil},
		{`INSERT INTO affiliates (id, tenant_id, user_id, affiliate_code, code_id, status, created_at, updated_at)
		  SELECT gen_random_uuid(), $1, 'aff' || g, 'AFF' || g, gen_random_uuid(), 'active', now(), now()
		  FROM generate_series(1, $2::int) AS g`, []any{tenant, payBenchAffiliates}},
		{`INSERT INTO commissions (id, tenant_id, affiliate_id, user_id, level, source_user_id, event_id, rule_id,
		      rate, base_amount, amount, currency_id, created_at, available_at)
		  SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(row_number() OVER (ORDER BY g, a.id)), 12, '0'))::uuid,
		         $1, a.id, a.user_id, 0, 'p' || g, a.user_id || ':' || g, '00000000-0000-4000-8000-000000000001',
		         0.1, 1000, 100, 'EUR', now() - interval '40 days', now() - interval '10 days'
		  FROM affiliates a CROSS JOIN generate_series(1, $2::int) AS g WHERE a.tenant_id = $1`, []any{tenant, payBenchRows}},
	} {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE affiliates; ANALYZE commissions`); err != nil {
		b.Fatal(err)
	}
	return postgres.NewStore(db), db, tenant
}

// BenchmarkPayoutRun measures a payout run over 10,000 affiliates × 100 available rows (SPEC §9:
// ≤ 10 s) against the same run's baseline: a plain INSERT … SELECT of the same rows into a table
// without constraints or indexes. It reports both times and their ratio; the payouts are removed (not part
// of the ledger) between iterations.
func BenchmarkPayoutRun(b *testing.B) {
	store, db, tenant := payBenchSeed(b)
	ctx := context.Background()
	b.ResetTimer()
	var runTotal, baseTotal time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := db.ExecContext(ctx, `TRUNCATE payout_rows, payouts`); err != nil {
			b.Fatal(err)
		}
		base, err := payBenchBaseline(ctx, db, tenant)
		if err != nil {
			b.Fatal(err)
		}
		baseTotal += base
		b.StartTimer()
		start := time.Now()
		run, err := store.CreatePayouts(ctx, tenant, "EUR", nil)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if len(run.Payouts) != payBenchAffiliates || run.Payouts[0].Rows != payBenchRows || run.Payouts[0].Amount != payBenchRows*100 {
			b.Fatalf("run paid %d affiliates (first: %+v)", len(run.Payouts), run.Payouts[0])
		}
		runTotal += took
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(runTotal.Seconds()/n, "run_s")
	b.ReportMetric(baseTotal.Seconds()/n, "baseline_s")
	b.ReportMetric(runTotal.Seconds()/baseTotal.Seconds(), "x_baseline")
}

// payBenchBaseline times the plain INSERT … SELECT of the rows a run covers into a fresh,
// ordinary (logged) table without keys or indexes, in a transaction it rolls back.
func payBenchBaseline(ctx context.Context, db *sqlx.DB, tenant string) (time.Duration, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE plain_rows (payout_id uuid, commission_id uuid)`); err != nil {
		return 0, err
	}
	start := time.Now()
	const q = `INSERT INTO plain_rows (payout_id, commission_id)
		SELECT $3::uuid, c.id FROM commissions c
		WHERE c.tenant_id = $1 AND c.currency_id = 'EUR' AND c.available_at <= $2`
	if _, err := tx.ExecContext(ctx, q, tenant, time.Now(), uuid.New()); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
