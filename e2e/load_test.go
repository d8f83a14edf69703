package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// qryLoadResult is one load run.
type qryLoadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

func (r qryLoadResult) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", r.rps,
		float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.errors)
}

// qryLoad sends GETs to url from conns concurrent keep-alive connections for d.
func qryLoad(url, token string, conns int, d time.Duration) qryLoadResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	var errs atomic.Int64
	lats := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("GET", url, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	client.CloseIdleConnections()
	return qryLoadResult{rps: float64(len(all)) / elapsed.Seconds(), p50: qryPercentile(all, 50),
		p99: qryPercentile(all, 99), errors: errs.Load()}
}

// qryServe serves e on a loopback port until the test ends.
func qryServe(t *testing.T, e *echo.Echo) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// qryVmHWM returns a process's peak resident set size in KiB.
func qryVmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "?"
}

// TestQryLoad is the Query Gateway's benchmark (SPEC §9), run only with PHOENIX_E2E_LOAD=1:
// throughput and p99 of authenticated hot GETs at 64 connections against a bare Echo handler
// and against the same route computed straight from PostgreSQL, all in the same run; freshness
// while the Admin Gateway takes ~200 writes/s; and the gateway's peak RSS.
func TestQryLoad(t *testing.T) {
	if os.Getenv("PHOENIX_E2E_LOAD") == "" {
		t.Skip("load test: set PHOENIX_E2E_LOAD=1 (and optionally PHOENIX_E2E_LOAD_SECONDS)")
	}
	dur := 3 * time.Second
	if s := os.Getenv("PHOENIX_E2E_LOAD_SECONDS"); s != "" {
		if d, err := time.ParseDuration(s + "s"); err == nil {
			dur = d
		}
	}
	const conns = 64
	s := qryNewStack(t)
	// PHOENIX_E2E_QG_ENV adds settings to the gateway (comma-separated, e.g.
	// PHOENIX_LOCAL_CACHE_TTL=0 to measure without the in-process cache).
	qg := s.startQuery(append([]string{"PHOENIX_LOG_LEVEL=error"}, strings.FieldsFunc(os.Getenv("PHOENIX_E2E_QG_ENV"), func(r rune) bool { return r == ',' })...)...)
	e := s.tenant(qg)
	user := "bench"
	tok := e.player(user)

	// Fixture: the bench player owns two codes, made 20 referrals and earned rewards.
	var code struct {
		ID   string `json:"id"`
		Code string `json:"code"`
	}
	e.write("POST", "/v1/referral/campaigns", e.admin, map[string]any{
		"name": "Bench", "qualifying_event": "deposit.completed",
		"referrer_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 10}}},
		"referee_rewards":  map[string]any{"wallet": []any{}}, "active": true}, nil)
	e.write("POST", "/v1/referral/codes", tok, map[string]any{"code": "BENCH2-" + e.tenant[4:]}, nil)
	e.write("POST", "/v1/referral/codes", tok, map[string]any{"code": "BENCH-" + e.tenant[4:]}, &code)
	for i := 0; i < 20; i++ {
		referee := fmt.Sprintf("ref%d", i)
		e.write("POST", "/v1/referral/apply-code", e.player(referee), map[string]any{"code": code.Code}, nil)
		if i%2 == 0 {
			e.write("POST", "/v1/events", e.svc, map[string]any{"event_id": "dep-" + referee, "type": "deposit.completed",
				"user_id": referee, "payload": map[string]any{"amount": 100}}, nil)
		}
	}
	s.waitProjected(t, 5*time.Second)
	var st map[string]any
	e.read("/v1/referral/stats", tok).must(t, 200, &st)
	t.Logf("fixture stats: %v", st)

	// Baseline 1: a bare Echo handler returning constant JSON, in-process on loopback.
	bare := echo.New()
	constant := []byte(`{"period":"30d","total_referrals":20,"successful_referrals":10,"pending_referrals":10,"rejected_referrals":0,"conversion_rate":50,"rewards":[{"currency_id":"points","amount":100}]}`)
	bare.GET("/bare", func(c echo.Context) error { return c.JSONBlob(200, constant) })
	bareAddr := qryServe(t, bare)

	// Baseline 2: the same route computed straight from PostgreSQL (authenticated, in-process).
	db, err := postgres.Open(context.Background(), s.dbURL, "qry-bench", 20)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	verifier, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(qrySecret)})
	if err != nil {
		t.Fatal(err)
	}
	direct := echo.New()
	direct.GET("/v1/referral/stats", func(c echo.Context) error {
		ctx := c.Request().Context()
		tenant, u := auth.TenantOf(c), auth.PrincipalOf(c).UserID
		refs, err := postgres.NewSource(db).ReferrerReferrals(ctx, tenant, []string{u})
		if err != nil {
			return err
		}
		rewards, err := postgres.NewSource(db).UserRewards(ctx, tenant, []string{u})
		if err != nil {
			return err
		}
		since := time.Now().Add(-30 * 24 * time.Hour)
		var total, ok int
		sum := map[string]int64{}
		for _, r := range refs[u] {
			if r.CreatedAt.After(since) {
				total++
				if r.Status == "converted" || r.Status == "verified" {
					ok++
				}
			}
		}
		for _, r := range rewards[u] {
			if r.CreatedAt.After(since) {
				sum[r.CurrencyID] += r.Amount
			}
		}
		b, _ := json.Marshal(map[string]any{"period": "30d", "total_referrals": total, "successful_referrals": ok, "rewards": sum})
		return c.JSONBlob(200, b)
	}, auth.Authenticate(verifier), auth.Guard(auth.RolePlayer))
	directAddr := qryServe(t, direct)

	// Warm-up, then the measured runs back to back.
	qryLoad("http://"+qg.addr+"/v1/referral/stats", tok, conns, time.Second)
	rBare := qryLoad("http://"+bareAddr+"/bare", "", conns, dur)
	rStats := qryLoad("http://"+qg.addr+"/v1/referral/stats", tok, conns, dur)
	rCodes := qryLoad("http://"+qg.addr+"/v1/referral/codes", tok, conns, dur)
	rPG := qryLoad("http://"+directAddr+"/v1/referral/stats", tok, conns, dur)
	t.Logf("bare Echo constant JSON      %v", rBare)
	t.Logf("query-gateway /referral/stats %v  (%.2f× bare, %.2f× PostgreSQL)", rStats, rStats.rps/rBare.rps, rStats.rps/rPG.rps)
	t.Logf("query-gateway /referral/codes %v  (%.2f× bare)", rCodes, rCodes.rps/rBare.rps)
	t.Logf("PostgreSQL-direct /stats      %v", rPG)

	// Freshness while the Admin Gateway takes ~200 writes/s (usage-limit changes on other codes).
	var ids []string
	for i := 0; i < 8; i++ {
		var c qryObj
		e.write("POST", "/v1/referral/codes", e.admin, map[string]any{"code": fmt.Sprintf("LOAD%d-%s", i, e.tenant[4:]), "usage_limit": 1}, &c)
		ids = append(ids, c.ID)
	}
	s.waitProjected(t, 5*time.Second)
	stop := make(chan struct{})
	var writes atomic.Int64
	jobs := make(chan int, 64)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := range jobs {
				body := strings.NewReader(fmt.Sprintf(`{"usage_limit": %d}`, n+2))
				req, _ := http.NewRequest("PATCH", "http://"+s.admin.addr+"/v1/referral/codes/"+ids[w], body)
				req.Header.Set("Authorization", "Bearer "+e.admin)
				req.Header.Set("Content-Type", "application/json")
				if resp, err := qryClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						writes.Add(1)
					}
				}
			}
		}(w)
	}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		defer close(jobs)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				select {
				case jobs <- n:
				default: // the writers are saturated: drop rather than queue
				}
			}
		}
	}()
	began := time.Now()
	var lat []time.Duration
	for i := 1000; i < 1100; i++ {
		lat = append(lat, qryProbe(t, e, code.ID, user, i))
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	rate := float64(writes.Load()) / time.Since(began).Seconds()
	t.Logf("freshness under %.0f writes/s: p50 %v, p99 %v, max %v (%d probes)", rate,
		qryPercentile(lat, 50).Round(100*time.Microsecond), qryPercentile(lat, 99).Round(100*time.Microsecond),
		qryPercentile(lat, 100).Round(100*time.Microsecond), len(lat))
	t.Logf("query-gateway peak RSS (VmHWM): %s (race detector: %v)", qryVmHWM(qg.cmd.Process.Pid), qryRace)
}
