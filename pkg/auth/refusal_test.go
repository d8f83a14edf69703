package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// TestRefusalReasons: every 401 says which check failed, in the message and in the RFC 6750
// challenge, and never repeats the key or the expected issuer and audience.
func TestRefusalReasons(t *testing.T) {
	secret := []byte("the-secret-key-of-the-test-gateway-32")
	const issuer, audience = "https://issuer.example/expected", "expected-audience"
	v, err := NewVerifier(KeyConfig{
		Secret: secret, Issuer: issuer, Audience: audience,
		JWKSAlgorithm: []string{"RS256"},
		JWKS:          func(*jwt.Token) (any, error) { return nil, errors.New("kid not in the key set") },
	})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), true, nil)
	e.GET("/v1/x", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, Authenticate(v))

	now := time.Now()
	good := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "u1", "role": "player", "tenant_id": "t1", "iss": issuer, "aud": audience,
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		if mut != nil {
			mut(c)
		}
		return c
	}
	hs := func(mut func(jwt.MapClaims)) string { return sign(t, jwt.SigningMethodHS256, secret, good(mut), "") }
	rsaKey := mustRSA(t)
	for _, tt := range []struct {
		name, header, message string
	}{
		{"no header", "", "missing bearer token"},
		{"other scheme", "Basic dXNlcjpwYXNz", "missing bearer token"},
		{"empty bearer", "Bearer ", "missing bearer token"},
		{"garbage", "Bearer not.a.token", "malformed token"},
		{"two parts", "Bearer abc.def", "malformed token"},
		{"claims of the wrong type", "Bearer " + hs(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), "malformed token"},
		{"oversized", "Bearer " + hs(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", MaxTokenBytes) }), "malformed token: larger than 8 KiB"},
		{"alg none", "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good(nil), ""), "token signing algorithm is not accepted"},
		{"HS512", "Bearer " + sign(t, jwt.SigningMethodHS512, secret, good(nil), ""), "token signing algorithm is not accepted"},
		{"wrong key", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("w", 32)), good(nil), ""), "bad token signature"},
		{"tampered", "Bearer " + hs(nil)[:len(hs(nil))-4] + "AAAA", "bad token signature"},
		{"unknown key", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, good(nil), "k9"), "token signing key is unknown"},
		{"expired", "Bearer " + hs(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), "token is expired"},
		{"nbf ahead", "Bearer " + hs(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), "token is not valid yet"},
		{"iat ahead", "Bearer " + hs(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), "token is not valid yet"},
		{"wrong issuer", "Bearer " + hs(func(c jwt.MapClaims) { c["iss"] = "https://elsewhere" }), "wrong token issuer"},
		{"no issuer", "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "iss") }), "wrong token issuer"},
		{"wrong audience", "Bearer " + hs(func(c jwt.MapClaims) { c["aud"] = "other" }), "wrong token audience"},
		{"no audience", "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "aud") }), "wrong token audience"},
		{"no exp", "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "exp") }), "token has no exp claim"},
		{"no sub", "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "sub") }), "token sub claim must be 1-128 characters"},
		{"long sub", "Bearer " + hs(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("s", 129) }), "token sub claim must be 1-128 characters"},
		{"unknown role", "Bearer " + hs(func(c jwt.MapClaims) { c["role"] = "root" }), "token role is not one of player, tenant_admin, client_admin, super_admin, service"},
		{"malformed tenant", "Bearer " + hs(func(c jwt.MapClaims) { c["tenant_id"] = "a b" }), "token tenant_id or tenant_ids is malformed"},
		{"malformed tenant list", "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "tenant_id"); c["tenant_ids"] = []string{"ok", ""} }), "token tenant_id or tenant_ids is malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			var eb apishape.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || rec.Code != 401 || eb.Error.Code != referral.EUnauthorized {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if eb.Error.Message != tt.message {
				t.Fatalf("message %q, want %q", eb.Error.Message, tt.message)
			}
			want := `Bearer error="invalid_token", error_description="` + tt.message + `"`
			if tt.message == "missing bearer token" {
				want = "Bearer" // RFC 6750 §3.1: no error code when no credentials were sent
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != want {
				t.Fatalf("WWW-Authenticate %q, want %q", got, want)
			}
			if !regexp.MustCompile(`^[\x20\x21\x23-\x5B\x5D-\x7E]*$`).MatchString(tt.message) {
				t.Fatalf("message %q is not a valid error_description", tt.message)
			}
			for _, secretish := range []string{string(secret), issuer, audience, "k9"} {
				if strings.Contains(rec.Body.String()+rec.Header().Get("WWW-Authenticate"), secretish) {
					t.Fatalf("answer reveals %q", secretish)
				}
			}
		})
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
		req.Header.Set("Authorization", "BEARER "+hs(nil))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
