package adminapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// riskBenchUsers is how many users the risk benchmark seeds with one device and one address
// signal each: 1,000,000 stored signals.
const riskBenchUsers = 500_000

// BenchmarkApplyCodeRisk measures apply-code throughput through the whole HTTP stack with
// 1,000,000 stored risk signals, under an inactive risk policy (risk=off) and under the default
// policy (risk=default, which looks the referee's devices up in the referrer's) in the same run.
// Every referee and referrer has its own device and address signals, none shared, so every
// apply is allowed and both cases do the same writes; each request also records its caller's
// signals, as a player's request does. The signals are loaded with COPY and analysed, as
// autovacuum would have them on a live system.
func BenchmarkApplyCodeRisk(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	db := e.store.DB()
	key := []byte(testAddressKey)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(pq.CopyIn("risk_signals", "tenant_id", "user_id", "kind", "value", "seen_at"))
	if err != nil {
		b.Fatal(err)
	}
	now := e.store.Now().UTC()
	for i := range riskBenchUsers {
		user := fmt.Sprintf("bench_u%d", i)
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := stmt.Exec(e.tenant, user, 1, []byte(fmt.Sprintf("device-%d", i)), now); err != nil {
			b.Fatal(err)
		}
		if _, err := stmt.Exec(e.tenant, user, 2, referral.AddressHash(key, addr), now); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := stmt.Exec(); err != nil {
		b.Fatal(err)
	}
	if err := stmt.Close(); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE risk_signals`); err != nil {
		b.Fatal(err)
	}
	admin := e.admin()
	var next atomic.Int64 // referee i applies the code of user i + riskBenchUsers/2
	for _, bc := range []struct {
		name   string
		policy map[string]any
	}{
		// Two rounds, interleaved, so a warming cache or a noisy neighbour does not favour one.
		{"risk=off", map[string]any{"active": false}},
		{"risk=default", map[string]any{}},
		{"risk=off", map[string]any{"active": false}},
		{"risk=default", map[string]any{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e.do(http.MethodPut, "/v1/referral/risk-policy", admin, bc.policy).must(b, 200, nil)
			first := next.Load()
			if first+int64(b.N) > riskBenchUsers/2 {
				b.Skip("out of seeded users")
			}
			const q = `
				INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
				SELECT gen_random_uuid(), $1, 'RISK' || i, 'bench_u' || (i + $3), true, 'player', now(), now()
				FROM generate_series($2::bigint, $2 + $4 - 1) AS i`
			if _, err := db.ExecContext(ctx, q, e.tenant, first, riskBenchUsers/2, b.N); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `ANALYZE referral_codes`); err != nil {
				b.Fatal(err)
			}
			tokens := make([]string, b.N)
			bodies := make([][]byte, b.N)
			for k := range b.N {
				i := first + int64(k)
				tokens[k] = e.token(auth.RolePlayer, fmt.Sprintf("bench_u%d", i))
				bodies[k] = []byte(fmt.Sprintf(`{"code": "RISK%d"}`, i))
			}
			client := refBenchClient()
			url := e.srv.URL + "/v1/referral/apply-code"
			var failed, k atomic.Int64
			b.SetParallelism(refBenchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := k.Add(1) - 1
					req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[n]))
					if err != nil {
						b.Error(err)
						return
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+tokens[n])
					req.Header.Set("X-Device-Id", fmt.Sprintf("device-%d", first+n))
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"review"`)) {
						if failed.Add(1) == 1 {
							b.Errorf("apply %d: %d %s", first+n, res.StatusCode, body)
						}
					}
				}
			})
			b.StopTimer()
			next.Add(int64(b.N))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
			var held int
			if err := db.GetContext(ctx, &held, `SELECT count(*) FROM referrals WHERE tenant_id = $1 AND review_state IS NOT NULL`, e.tenant); err != nil {
				b.Fatal(err)
			}
			if held != 0 || failed.Load() != 0 {
				b.Fatalf("%d held, %d failed: the seeded signals share nothing", held, failed.Load())
			}
		})
	}
}
