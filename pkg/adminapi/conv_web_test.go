package adminapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
	"github.com/phoenix-referral/phoenix/pkg/web/contract"
)

// TestWebParentAliasLink: the deprecated /parent alias points at the affiliate's own
// /hierarchy, on success, on errors and on replays.
func TestWebParentAliasLink(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	parent, child := affNew(t, e, "link_parent"), affNew(t, e, "link_child")
	alias := "/v1/affiliates/" + child.ID + "/parent"
	successor := "/v1/affiliates/" + child.ID + "/hierarchy"
	body := map[string]any{"parent_affiliate_id": parent.ID}

	r := e.do(http.MethodPut, alias, tok, body, "Idempotency-Key", "link-1").must(t, 200, nil)
	affCheckDeprecated(t, r, successor)
	r = e.do(http.MethodPut, alias, tok, body, "Idempotency-Key", "link-1").must(t, 200, nil)
	if r.Header.Get("Idempotent-Replay") != "true" {
		t.Fatalf("second PUT was not a replay")
	}
	affCheckDeprecated(t, r, successor)
	r = e.do(http.MethodPut, alias, tok, `{"parent_affiliate_id": 7}`)
	r.fail(t, 400, "VALIDATION_FAILED")
	affCheckDeprecated(t, r, successor)
	missing := uuid.NewString()
	r = e.do(http.MethodPut, "/v1/affiliates/"+missing+"/parent", tok, body)
	r.fail(t, 404, "NOT_FOUND")
	affCheckDeprecated(t, r, "/v1/affiliates/"+missing+"/hierarchy")
	r = e.do(http.MethodPut, alias, "", body)
	r.fail(t, 401, "UNAUTHORIZED")
	affCheckDeprecated(t, r, successor)
}

// TestWebAdminQueryParameters: a query parameter a route does not define, a repeated one, or a
// value holding NUL or invalid UTF-8 is 400 naming it — after the token check, and before
// anything is written.
func TestWebAdminQueryParameters(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	for _, tt := range []struct {
		method, path string
		body         any
		status       int
		code, field  string
	}{
		{"GET", "/v1/referral/referrals?stauts=pending", nil, 400, "VALIDATION_FAILED", "stauts"},
		{"GET", "/v1/referral/stats?perod=7d", nil, 400, "VALIDATION_FAILED", "perod"},
		{"GET", "/v1/referral/campaigns?j=" + strings.Repeat("j", 60<<10), nil, 400, "VALIDATION_FAILED", "j"},
		{"GET", "/v1/referral/referrals?limit=1&limit=2", nil, 400, "VALIDATION_FAILED", "limit"},
		{"GET", "/v1/referral/referrals?referrer_id=a%00b", nil, 400, "VALIDATION_FAILED", "referrer_id"},
		{"GET", "/v1/referral/referrals?code=%ff", nil, 400, "VALIDATION_FAILED", "code"},
		{"GET", "/v1/referral/codes?owner_user_id=%00", nil, 400, "VALIDATION_FAILED", "owner_user_id"},
		{"GET", "/v1/affiliates?user_id=%ED%A0%80", nil, 400, "VALIDATION_FAILED", "user_id"},
		{"GET", "/v1/referral/rewards?user_id=x%00", nil, 400, "VALIDATION_FAILED", "user_id"},
		{"GET", "/v1/affiliate/commission-rules?event_type=%00", nil, 400, "VALIDATION_FAILED", "event_type"},
		{"GET", "/v1/referral/campaigns/%00", nil, 404, "NOT_FOUND", ""},
		{"GET", "/v1/referral/campaigns?tenant_id=" + e.tenant, nil, 200, "", ""},
		{"POST", "/v1/referral/campaigns?dry_run=true", map[string]any{"name": "never", "qualifying_event": "x"}, 400, "VALIDATION_FAILED", "dry_run"},
		{"POST", "/v1/events?async=1", map[string]any{"event_id": "q1", "type": "x", "user_id": "u"}, 400, "VALIDATION_FAILED", "async"},
	} {
		t.Run(tt.method+" "+tt.path[:min(len(tt.path), 60)], func(t *testing.T) {
			r := e.do(tt.method, tt.path, tok, tt.body)
			if tt.code == "" {
				r.must(t, tt.status, nil)
				return
			}
			eb := r.fail(t, tt.status, tt.code)
			if _, ok := eb.Error.Fields[tt.field]; tt.field != "" && !ok {
				t.Fatalf("fields %v lack %q", eb.Error.Fields, tt.field)
			}
		})
	}
	// Nothing of the refused POST was stored.
	var list struct {
		Total int `json:"total"`
	}
	e.do("GET", "/v1/referral/campaigns", tok, nil).must(t, 200, &list)
	if list.Total != 0 {
		t.Fatalf("a refused POST stored %d campaigns", list.Total)
	}
	// Without a token the answer is 401 whatever the parameters.
	e.do("GET", "/v1/referral/referrals?stauts=pending", "", nil).fail(t, 401, "UNAUTHORIZED")
}

// TestWebAdminAuthAndOptions: 401 says why and carries the challenge; OPTIONS is 405.
func TestWebAdminAuthAndOptions(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/referral/campaigns", "", nil)
	if eb := r.fail(t, 401, "UNAUTHORIZED"); eb.Error.Message != "missing bearer token" || r.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("no token: %q, WWW-Authenticate %q", eb.Error.Message, r.Header.Get("WWW-Authenticate"))
	}
	expired, err := auth.Sign([]byte(testSecret), auth.Principal{UserID: "a", Role: auth.RoleTenantAdmin, TenantID: e.tenant}, -time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/v1/referral/campaigns", expired, nil)
	if eb := r.fail(t, 401, "UNAUTHORIZED"); eb.Error.Message != "token is expired" ||
		r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token", error_description="token is expired"` {
		t.Fatalf("expired: %q, WWW-Authenticate %q", eb.Error.Message, r.Header.Get("WWW-Authenticate"))
	}
	r = e.do("OPTIONS", "/v1/referral/campaigns", e.admin(), nil, "Origin", "https://elsewhere.example", "Access-Control-Request-Method", "POST")
	r.fail(t, 405, "METHOD_NOT_ALLOWED")
	if r.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow %q", r.Header.Get("Allow"))
	}
	e.do("OPTIONS", "/v1/nowhere", e.admin(), nil).fail(t, 404, "NOT_FOUND")
}

// TestWebQueryGatewayParameters: the Query Gateway refuses query junk with 400 before its
// in-process cache sees it, answers OPTIONS 404, and 401 with the challenge.
func TestWebQueryGatewayParameters(t *testing.T) {
	e := newEnv(t)
	qv := contract.New(t, queryapi.OpenAPI)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	verifier, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	qs := web.NewServer(log, web.Options{Name: "query-gateway"})
	queryapi.New(cache.New(rdb), pgtest.DB(t), verifier, queryapi.Config{
		Attempts: referral.AttemptLimit{Max: 20, Window: time.Minute}, LocalTTL: time.Minute,
	}, log, nil).Register(qs.Echo)
	qsrv := httptest.NewServer(qs.Echo)
	t.Cleanup(qsrv.Close)
	read := func(method, path, token string) *resp {
		t.Helper()
		req, err := http.NewRequest(method, qsrv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		qv.Check(t, req, nil, res.StatusCode, res.Header, b)
		return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
	}
	alice := e.token(auth.RolePlayer, "alice")
	for _, tt := range []struct {
		path, token string
		status      int
		code, field string
	}{
		{"/v1/referral/me?j=" + strings.Repeat("j", 60<<10), alice, 400, "VALIDATION_FAILED", "j"},
		{"/v1/referral/referrals?stauts=converted", alice, 400, "VALIDATION_FAILED", "stauts"},
		{"/v1/referral/stats?perod=7d", alice, 400, "VALIDATION_FAILED", "perod"},
		{"/v1/referral/referrals?status=%00", alice, 400, "VALIDATION_FAILED", "status"},
		{"/v1/referral/rewards?limit=1&limit=1", alice, 400, "VALIDATION_FAILED", "limit"},
		{"/v1/referral/validate/ALICE?tenant_id=" + e.tenant + "&utm=x", "", 400, "VALIDATION_FAILED", "utm"},
		{"/v1/referral/validate/AL%00ICE", alice, 400, "VALIDATION_FAILED", "code"},
		{"/v1/referral/validate/AL%FFICE?tenant_id=" + e.tenant, "", 400, "VALIDATION_FAILED", "code"},
		{"/v1/referral/me?j=1", "", 401, "UNAUTHORIZED", ""},
		{"/v1/referral/me", alice, 200, "", ""},
	} {
		t.Run(tt.path[:min(len(tt.path), 60)], func(t *testing.T) {
			r := read("GET", tt.path, tt.token)
			if tt.code == "" {
				r.must(t, tt.status, nil)
				return
			}
			eb := r.fail(t, tt.status, tt.code)
			if _, ok := eb.Error.Fields[tt.field]; tt.field != "" && !ok {
				t.Fatalf("fields %v lack %q", eb.Error.Fields, tt.field)
			}
			if len(r.Body) > 4<<10 {
				t.Fatalf("a %d-byte answer echoes the input", len(r.Body))
			}
		})
	}
	r := read("GET", "/v1/referral/me", "")
	if r.fail(t, 401, "UNAUTHORIZED"); r.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	r = read("OPTIONS", "/v1/referral/me", alice)
	r.fail(t, 404, "NOT_FOUND")
	if r.Header.Get("Allow") != "" {
		t.Fatalf("a 404 advertises Allow: %q", r.Header.Get("Allow"))
	}
}
