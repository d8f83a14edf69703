package queryapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// qryReads records the query parameters a request's middleware and handler read.
type qryReads struct {
	echo.Context
	mu   *sync.Mutex
	read map[string]bool
}

func (r qryReads) note(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read[name] = true
}

func (r qryReads) QueryParam(name string) string { r.note(name); return r.Context.QueryParam(name) }
func (r qryReads) QueryParams() url.Values       { r.note("*"); return r.Context.QueryParams() }
func (r qryReads) QueryString() string           { r.note("*"); return r.Context.QueryString() }

// TestQryAnswerParamsCoverHandlers: every parameter a cached route's handler reads is part of
// its answers' key (answerParams) — else two requests differing in it would share an answer —
// and answerParams names only routes that exist.
func TestQryAnswerParamsCoverHandlers(t *testing.T) {
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(qrySecret)})
	if err != nil {
		t.Fatal(err)
	}
	a := New(cache.New(qryRedis(t)), pgtest.DB(t), v, Config{LocalTTL: time.Second}, qryLog, nil)
	s := web.NewServer(qryLog, web.Options{Name: "query-gateway"})
	var mu sync.Mutex
	read := map[string]bool{}
	s.Echo.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { return next(qryReads{Context: c, mu: &mu, read: read}) }
	})
	a.Register(s.Echo)
	tok := qryPlayer(t, pgtest.Tenant(t), "u1")

	routes := map[string]bool{}
	for _, r := range s.Echo.Routes() {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		routes[r.Path] = true
		if r.Path == "/v1/referral/validate/:code" {
			continue // never cached
		}
		mu.Lock()
		clear(read)
		mu.Unlock()
		req := httptest.NewRequest(http.MethodGet, r.Path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.Echo.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %s", r.Path, rec.Code, rec.Body)
		}
		known := []string{"tenant_id"}
		for _, p := range answerParams[r.Path] {
			known = append(known, p.name)
		}
		mu.Lock()
		for name := range read {
			if !slices.Contains(known, name) {
				t.Errorf("%s reads ?%s, which its cache key leaves out", r.Path, name)
			}
		}
		mu.Unlock()
	}
	if len(routes) < 10 {
		t.Fatalf("only %d routes seen", len(routes))
	}
	for path := range answerParams {
		if !routes[path] {
			t.Errorf("answerParams names %s, which is not a route", path)
		}
	}
}
