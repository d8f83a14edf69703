package queryapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// qryVisitorServer is the Query Gateway's surface over the package's test database and Redis,
// with the visitor limit lim; the per-tenant limit in PostgreSQL allows 3 failures.
func qryVisitorServer(t *testing.T, lim int) (*API, *echo.Echo, *sqlx.DB) {
	t.Helper()
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(qrySecret)})
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.DB(t)
	a := New(cache.New(qryRedis(t)), db, v, Config{
		Attempts: referral.AttemptLimit{Max: 3, Window: time.Minute},
		Visitors: referral.AttemptLimit{Max: lim, Window: time.Minute},
		LocalTTL: time.Second,
	}, qryLog, nil)
	s := web.NewServer(qryLog, web.Options{Name: "query-gateway"})
	a.Register(s.Echo)
	return a, s.Echo, db
}

// qryVisit sends a visitor's validation from a client address.
func qryVisit(e *echo.Echo, addr, tenant, code string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/v1/referral/validate/"+code+"?tenant_id="+tenant, nil)
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func qryFailuresOf(t *testing.T, db *sqlx.DB, subject string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM code_attempt_failures WHERE subject = $1`, subject); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQryVisitorLimitAcrossTenants: made-up tenant ids do not multiply a visitor's failures —
// past the limit every tenant answers 429 with Retry-After from memory, without touching the
// database — other addresses are not affected, and the made-up tenants leave nothing behind.
func TestQryVisitorLimitAcrossTenants(t *testing.T) {
	a, e, db := qryVisitorServer(t, 5)
	const addr = "198.51.100.7"
	tenants := make([]string, 12)
	for i := range tenants {
		tenants[i] = pgtest.Tenant(t)
	}
	for i, tenant := range tenants[:5] {
		rec := qryVisit(e, addr+":4000", tenant, "NOPE"+strconv.Itoa(i))
		var got apishape.Validation
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Valid || got.Reason == nil {
			t.Fatalf("attempt %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if n := qryFailuresOf(t, db, "ip:"+addr); n != 5 {
		t.Fatalf("%d failures recorded, want 5", n)
	}

	// Past the limit no request reaches the database: one that did would fail on this one.
	closed, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	a.db, a.store = closed, postgres.NewStore(closed)
	for i, tenant := range tenants[5:] {
		rec := qryVisit(e, addr+":4001", tenant, "NOPE"+strconv.Itoa(i))
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("past the limit: %d %s (Retry-After %q)", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
		var env struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &env) != nil || env.Error.Code != "RATE_LIMITED" {
			t.Fatalf("past the limit: %s", rec.Body)
		}
	}
	a.db, a.store = db, postgres.NewStore(db)
	if rec := qryVisit(e, "198.51.100.8:4000", tenants[0], "NOPE"); rec.Code != http.StatusOK {
		t.Fatalf("another address: %d %s", rec.Code, rec.Body)
	}

	// Made-up tenants left no state: no Redis documents, nothing in the in-process cache.
	ctx := context.Background()
	for _, tenant := range tenants {
		if n := a.cache.Client().Exists(ctx, cache.EpochKey(tenant), cache.CodeKey(tenant, "NOPE0")).Val(); n != 0 {
			t.Fatalf("tenant %s has %d Redis keys", tenant, n)
		}
	}
	if len(a.local.tenants) != 0 || len(a.local.versions) != 0 {
		t.Fatalf("in-process cache holds %d tenants, %d versions", len(a.local.tenants), len(a.local.versions))
	}
}

// TestQryVisitorLimitExactUnderConcurrency: 60 parallel bad guesses from one address across
// tenants count exactly the limit; the rest are 429, none is a 5xx.
func TestQryVisitorLimitExactUnderConcurrency(t *testing.T) {
	_, e, db := qryVisitorServer(t, 7)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range 60 {
		wg.Go(func() {
			// Addresses of one /64 are one visitor.
			rec := qryVisit(e, fmt.Sprintf("[2001:db8:7:7::%x]:5000", i+1), pgtest.Tenant(t), "NOPE")
			mu.Lock()
			codes[rec.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusOK] != 7 || codes[http.StatusTooManyRequests] != 53 {
		t.Fatalf("answers %v, want 7×200 and 53×429", codes)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM code_attempt_failures WHERE subject LIKE 'ip:2001:db8:7:7::%'`); err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Fatalf("%d failures recorded, want 7", n)
	}
}
