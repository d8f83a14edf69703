package adminapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

func TestJWTRejections(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "u1", "role": "tenant_admin", "tenant_id": e.tenant,
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		if mut != nil {
			mut(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodHS256, []byte(testSecret), claims(nil))
	noneTok := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))
	cases := map[string]string{
		"missing":          "",
		"garbage":          "not.a.token",
		"alg none":         noneTok,
		"wrong key":        sign(jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long!!"), claims(nil)),
		"HS512 not pinned": sign(jwt.SigningMethodHS512, []byte(testSecret), claims(nil)),
		"expired":          sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"no exp":           sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"nbf future":       sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })),
		"iat future":       sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })),
		"no sub":           sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		"long sub":         sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("x", 129) })),
		"unknown role":     sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["role"] = "root" })),
		"oversized":        sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 9000) })),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			e.do(http.MethodGet, "/v1/referral/campaigns", tok, nil).fail(t, http.StatusUnauthorized, "UNAUTHORIZED")
		})
	}
	t.Run("within leeway", func(t *testing.T) {
		tok := sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() }))
		if r := e.do(http.MethodGet, "/v1/referral/campaigns", tok, nil); r.Status == http.StatusUnauthorized {
			t.Fatalf("token within the 30 s leeway rejected: %s", r.Body)
		}
	})
	t.Run("valid", func(t *testing.T) {
		if r := e.do(http.MethodGet, "/v1/referral/campaigns", good, nil); r.Status == http.StatusUnauthorized {
			t.Fatalf("valid token rejected: %s", r.Body)
		}
	})
}

func TestTenantResolution(t *testing.T) {
	e := newEnv(t)
	other := "other-" + e.tenant
	path := "/v1/referral/campaigns"
	tests := []struct {
		name   string
		p      auth.Principal
		query  string
		status int
		code   string
	}{
		{"tenant claim, other query", auth.Principal{UserID: "a", Role: auth.RoleTenantAdmin, TenantID: e.tenant}, "?tenant_id=" + other, 403, "FORBIDDEN"},
		{"super admin without query", auth.Principal{UserID: "a", Role: auth.RoleSuperAdmin}, "", 400, "TENANT_REQUIRED"},
		{"tenant_ids without query", auth.Principal{UserID: "a", Role: auth.RoleClientAdmin, TenantIDs: []string{e.tenant}}, "", 400, "TENANT_REQUIRED"},
		{"tenant_ids not listed", auth.Principal{UserID: "a", Role: auth.RoleClientAdmin, TenantIDs: []string{e.tenant}}, "?tenant_id=" + other, 403, "FORBIDDEN"},
		{"no tenant at all", auth.Principal{UserID: "a", Role: auth.RoleClientAdmin}, "?tenant_id=" + e.tenant, 403, "FORBIDDEN"},
		{"bad tenant id", auth.Principal{UserID: "a", Role: auth.RoleSuperAdmin}, "?tenant_id=bad%20id", 400, "VALIDATION_FAILED"},
		{"player on admin route", auth.Principal{UserID: "a", Role: auth.RolePlayer, TenantID: e.tenant}, "", 403, "FORBIDDEN"},
		{"service on admin route", auth.Principal{UserID: "a", Role: auth.RoleService, TenantID: e.tenant}, "", 403, "FORBIDDEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(http.MethodGet, path+tt.query, e.tokenFor(tt.p), nil).fail(t, tt.status, tt.code)
		})
	}
	for _, p := range []auth.Principal{
		{UserID: "a", Role: auth.RoleSuperAdmin},
		{UserID: "a", Role: auth.RoleClientAdmin, TenantIDs: []string{other, e.tenant}},
		{UserID: "a", Role: auth.RoleTenantAdmin, TenantID: e.tenant},
	} {
		q := "?tenant_id=" + e.tenant
		if r := e.do(http.MethodGet, path+q, e.tokenFor(p), nil); r.Status >= 400 && r.Status != 404 {
			t.Errorf("%v: status %d: %s", p, r.Status, r.Body)
		}
	}
}

func TestConventions(t *testing.T) {
	e := newEnv(t)
	t.Run("unknown path is 404 with envelope", func(t *testing.T) {
		e.do(http.MethodGet, "/v1/nope", e.admin(), nil).fail(t, 404, "NOT_FOUND")
	})
	t.Run("wrong method is 405", func(t *testing.T) {
		e.do(http.MethodPatch, "/v1/referral/campaigns", e.admin(), nil).fail(t, 405, "METHOD_NOT_ALLOWED")
	})
	t.Run("body over 1 MiB is 413", func(t *testing.T) {
		big := `{"name": "` + strings.Repeat("x", 1<<20) + `"}`
		e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), big).fail(t, 413, "BODY_TOO_LARGE")
	})
	t.Run("request id echoed", func(t *testing.T) {
		r := e.do(http.MethodGet, "/healthz", "", nil, "X-Request-Id", "abc-123")
		if r.Header.Get("X-Request-Id") != "abc-123" {
			t.Fatalf("X-Request-Id = %q", r.Header.Get("X-Request-Id"))
		}
		r = e.do(http.MethodGet, "/healthz", "", nil, "X-Request-Id", strings.Repeat("x", 200))
		if id := r.Header.Get("X-Request-Id"); id == "" || len(id) > 128 {
			t.Fatalf("oversized X-Request-Id not replaced: %q", id)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		body := `{"name": "m", "qualifying_event": "deposit.completed"}`
		e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), body, "Idempotency-Key", "metrics-1").must(t, 200, nil)
		e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), body, "Idempotency-Key", "metrics-1").must(t, 200, nil)
		e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), `{"name": "other"}`, "Idempotency-Key", "metrics-1").fail(t, 409, "IDEMPOTENCY_KEY_REUSED")
		r := e.do(http.MethodGet, "/metrics", "", nil).must(t, 200, nil)
		for _, want := range []string{
			"phoenix_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/referral/campaigns\",status=\"200\"",
			"phoenix_idempotent_replays_total{route=\"/v1/referral/campaigns\"} 1",
			"phoenix_http_errors_total{code=\"IDEMPOTENCY_KEY_REUSED\",route=\"/v1/referral/campaigns\"} 1",
		} {
			if !strings.Contains(string(r.Body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}
