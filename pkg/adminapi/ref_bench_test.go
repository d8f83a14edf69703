package adminapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// refBenchParallelism is the number of client goroutines per GOMAXPROCS in the benchmarks.
const refBenchParallelism = 8

// refBenchClient keeps enough idle connections for every parallel client, so the benchmark
// measures requests rather than TCP handshakes.
func refBenchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
}

// BenchmarkApplyCode measures apply-code throughput across distinct codes through the whole
// HTTP stack (JWT check, tenant resolution, attempt limit, one transaction with the
// referral.applied event) with parallel clients. Each iteration is one successful apply of its
// own code by its own player.
func BenchmarkApplyCode(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	const q = `
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'BENCH' || i, 'owner_' || i, true, 'player', now(), now()
		FROM generate_series(0, $2 - 1) AS i`
	if _, err := e.store.DB().ExecContext(ctx, q, e.tenant, b.N); err != nil {
		b.Fatal(err)
	}
	// Statistics as autovacuum would have them on a live system: a bulk load followed at once by
	// point lookups would otherwise be planned from an empty table's statistics.
	if _, err := e.store.DB().ExecContext(ctx, `ANALYZE referral_codes`); err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, b.N)
	bodies := make([][]byte, b.N)
	for i := range b.N {
		tokens[i] = e.token(auth.RolePlayer, fmt.Sprintf("referee_%d", i))
		bodies[i] = []byte(fmt.Sprintf(`{"code": "BENCH%d", "metadata": {"source": "bench"}}`, i))
	}
	client := refBenchClient()
	url := e.srv.URL + "/v1/referral/apply-code"
	var next, failed atomic.Int64
	b.SetParallelism(refBenchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				if failed.Add(1) == 1 {
					b.Errorf("apply %d: %d %s", i, res.StatusCode, body)
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	var n int
	if err := e.store.DB().GetContext(ctx, &n, `SELECT count(*) FROM referrals WHERE tenant_id = $1`, e.tenant); err != nil {
		b.Fatal(err)
	}
	if n != b.N || failed.Load() != 0 {
		b.Fatalf("%d referrals for %d applies (%d failed)", n, b.N, failed.Load())
	}
}

// BenchmarkApplyCodeBaselineInsert is the floor BenchmarkApplyCode is compared with: one plain
// INSERT of a comparable referral row per iteration, autocommitted, through the same pool and
// with the same number of parallel clients, without HTTP.
func BenchmarkApplyCodeBaselineInsert(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	code := refAdminCode(b, e, map[string]any{"code": "BASELINE"})
	codeID := uuid.MustParse(code.ID)
	const q = `
		INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, metadata, created_at, updated_at)
		VALUES ($1, $2, $3, 'BASELINE', 'owner', $4, 'pending', '{"source": "bench"}', now(), now())`
	var next atomic.Int64
	db := e.store.DB()
	b.SetParallelism(refBenchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := db.ExecContext(ctx, q, uuid.New(), e.tenant, codeID, fmt.Sprintf("referee_%d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

// BenchmarkApplyCodeBaselineInsertNoNotify is BenchmarkApplyCodeBaselineInsert into a table
// without the change-log trigger (code_attempt_failures): the difference between the two is the
// cost of the trigger's NOTIFY, which makes PostgreSQL commit notifying transactions one at a
// time.
func BenchmarkApplyCodeBaselineInsertNoNotify(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	const q = `INSERT INTO code_attempt_failures (tenant_id, subject) VALUES ($1, $2)`
	var next atomic.Int64
	db := e.store.DB()
	b.SetParallelism(refBenchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := db.ExecContext(ctx, q, e.tenant, fmt.Sprintf("bench_%d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

// BenchmarkApplyCodeContended is the contended case of SPEC §9: each iteration sends 2,000
// concurrent applies by distinct players against one fresh code with usage_limit 500, and fails
// unless exactly 500 succeed and the rest answer CODE_EXHAUSTED.
func BenchmarkApplyCodeContended(b *testing.B) {
	const players, limit = 2000, 500
	e := newEnv(b)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
	url := e.srv.URL + "/v1/referral/apply-code"
	tokens := make([]string, players)
	for i := range tokens {
		tokens[i] = e.token(auth.RolePlayer, fmt.Sprintf("crowd_%d", i))
	}
	b.ResetTimer()
	for round := range b.N {
		b.StopTimer()
		// Each round has its own code; a player's earlier referral would otherwise answer
		// ALREADY_REFERRED, so each round also clears the previous round's referrals.
		code := fmt.Sprintf("HOT%d", round)
		refExec(b, e, `DELETE FROM referrals WHERE tenant_id = $1`, e.tenant)
		refAdminCode(b, e, map[string]any{"code": code, "usage_limit": limit})
		body := []byte(`{"code": "` + code + `"}`)
		b.StartTimer()
		var ok, exhausted, other atomic.Int64
		done := make(chan struct{})
		for i := range players {
			go func() {
				defer func() { done <- struct{}{} }()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				res, err := client.Do(req)
				if err != nil {
					other.Add(1)
					return
				}
				rb, _ := io.ReadAll(res.Body)
				res.Body.Close()
				switch {
				case res.StatusCode == http.StatusOK:
					ok.Add(1)
				case res.StatusCode == http.StatusConflict && bytes.Contains(rb, []byte(`"CODE_EXHAUSTED"`)):
					exhausted.Add(1)
				default:
					other.Add(1)
				}
			}()
		}
		for range players {
			<-done
		}
		if ok.Load() != limit || exhausted.Load() != players-limit || other.Load() != 0 {
			b.Fatalf("round %d: %d ok, %d exhausted, %d other", round, ok.Load(), exhausted.Load(), other.Load())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*players)/b.Elapsed().Seconds(), "requests/s")
}
