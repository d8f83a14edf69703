package postgres_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// impBenchClients is the number of concurrent clients recording impressions (a landing page
// behind a load balancer sees many at once).
const impBenchClients = 64

// BenchmarkImpressions measures impressions recorded per second by RecordImpression (batched:
// validity, insert and counters in one transaction per batch) against the same-run baseline of
// one plain single-row INSERT into the same table per impression (no validity check, no
// counters), both from impBenchClients concurrent clients on the same database. Compare the
// impressions/s metrics of the two sub-benchmarks.
func BenchmarkImpressions(b *testing.B) {
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), "imp-bench", impBenchClients)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := postgres.NewStore(db)
	tenant := "bench-impressions"
	var codes []referral.Code
	for i := range 20 {
		c, err := s.CreateAdminCode(context.Background(), referral.Code{TenantID: tenant, Code: fmt.Sprintf("POSTER%02d", i), Active: true})
		if err != nil {
			b.Fatal(err)
		}
		codes = append(codes, c)
	}
	key := []byte("bench-address-hash-key-of-32-bytes-or-more")
	source := "poster_qr_code"
	hash := func(i int) []byte {
		return referral.AddressHash(key, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	run := func(b *testing.B, record func(i int) error) {
		b.SetParallelism((impBenchClients + 1) / 2)
		b.ResetTimer()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := record(int(n.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "impressions/s")
	}
	b.Run("batched", func(b *testing.B) {
		run(b, func(i int) error {
			c := codes[i%len(codes)]
			out, err := s.RecordImpression(context.Background(), referral.NewImpression{TenantID: tenant, Code: c.Code,
				Source: &source, AddressHash: hash(i), Metadata: []byte(`{"poster":"lobby"}`)})
			if err == nil && !out.Valid {
				err = fmt.Errorf("%s answered invalid", c.Code)
			}
			return err
		})
	})
	b.Run("single_row_insert", func(b *testing.B) {
		const q = `INSERT INTO impressions (id, tenant_id, code_id, source, address_hash, metadata, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, now())`
		run(b, func(i int) error {
			_, err := db.Exec(q, uuid.New(), tenant, codes[i%len(codes)].ID, source, hash(i), `{"poster":"lobby"}`)
			return err
		})
	})
}

// BenchmarkFunnelReadCost reads a 30-day funnel of a tenant holding 10,000 and then 1,000,000
// impressions of the same 20 codes and 3 sources spread over 60 days (seeded with COPY, with the
// counters the writers keep, spread over 4 shards, then ANALYZE), and 1,000 referrals in both. The funnel reads the
// counters, so its cost follows the number of (code, source, day) buckets, not of impressions:
// compare ns/op of the two sizes.
func BenchmarkFunnelReadCost(b *testing.B) {
	for _, size := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("impressions=%d", size), func(b *testing.B) {
			s, tenant := funnelBenchSeed(b, size)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				f, err := s.Funnel(ctx, tenant, referral.FunnelFilter{Period: referral.Period30d})
				if err != nil || f.Impressions == 0 {
					b.Fatalf("funnel %+v: %v", f, err)
				}
			}
		})
	}
}

// funnelBenchSeed fills a fresh database as BenchmarkFunnelReadCost says.
func funnelBenchSeed(b *testing.B, impressions int) (*postgres.Store, string) {
	b.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(b), "funnel-bench", 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := postgres.NewStore(db)
	tenant := "bench-funnel"
	var codes []referral.Code
	for i := range 20 {
		c, err := s.CreateAdminCode(ctx, referral.Code{TenantID: tenant, Code: fmt.Sprintf("POSTER%02d", i), OwnerUserID: ptr(fmt.Sprintf("owner%d", i)), Active: true})
		if err != nil {
			b.Fatal(err)
		}
		codes = append(codes, c)
	}
	sources := []string{"poster_qr_code", "newsletter", "banner"}
	now := time.Now().UTC()
	span := 60 * 24 * time.Hour
	err = copyImpressions(ctx, db, func(emit func(args ...any) error) error {
		for i := range impressions {
			at := now.Add(-time.Duration(int64(span) / int64(impressions) * int64(i)))
			if err := emit(uuid.New(), tenant, codes[i%len(codes)].ID, sources[i%len(sources)], at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// The counters the batched writer keeps, built in one statement from what was copied.
	if _, err := db.ExecContext(ctx, `
		INSERT INTO impression_counts (tenant_id, code_id, source, day, shard, impressions)
		SELECT tenant_id, code_id, coalesce(source, ''), date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
		       get_byte(uuid_send(id), 0) % 4, count(*)
		FROM impressions GROUP BY 1, 2, 3, 4, 5`); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("player%d", i), codes[i%len(codes)].Code, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return s, tenant
}

// copyImpressions loads the rows rows emits into impressions with COPY in one transaction.
func copyImpressions(ctx context.Context, db *sqlx.DB, rows func(emit func(args ...any) error) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("impressions", "id", "tenant_id", "code_id", "source", "created_at"))
	if err != nil {
		return err
	}
	if err := rows(func(args ...any) error {
		_, err := stmt.ExecContext(ctx, args...)
		return err
	}); err != nil {
		return err
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}
