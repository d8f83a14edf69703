package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func claims(extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "u1", "role": "player", "tenant_id": "t1", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemOf(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := NewVerifier(KeyConfig{Secret: []byte("short")}); err == nil {
		t.Fatal("a secret under 32 bytes was accepted")
	}
	if _, err := NewVerifier(KeyConfig{}); err == nil {
		t.Fatal("no key accepted")
	}
}

func TestPublicKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name   string
		pub    crypto.PublicKey
		method jwt.SigningMethod
		priv   any
	}{
		{"RSA", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey},
		{"EC", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey},
		{"Ed25519", edPub, jwt.SigningMethodEdDSA, edPriv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pemBytes := pemOf(t, tt.pub)
			v, err := NewVerifier(KeyConfig{PublicKeyPEM: pemBytes})
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(sign(t, tt.method, tt.priv, claims(nil), ""))
			if err != nil || p.UserID != "u1" || p.Role != RolePlayer || p.TenantID != "t1" {
				t.Fatalf("Verify = %+v, %v", p, err)
			}
			// Algorithm confusion: an HS256 token whose "secret" is the public key.
			forged := sign(t, jwt.SigningMethodHS256, pemBytes, claims(nil), "")
			if _, err := v.Verify(forged); referral.ErrorCode(err) != referral.EUnauthorized {
				t.Fatalf("HS256 forged with the public key accepted: %v", err)
			}
			// Another key of the same kind.
			if tt.name == "RSA" {
				other, _ := rsa.GenerateKey(rand.Reader, 2048)
				if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, other, claims(nil), "")); err == nil {
					t.Fatal("token of another RSA key accepted")
				}
				if _, err := v.Verify(sign(t, jwt.SigningMethodRS512, rsaKey, claims(nil), "")); err == nil {
					t.Fatal("RS512 accepted although RS256 is pinned")
				}
			}
		})
	}
}

func TestIssuerAudience(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	v, err := NewVerifier(KeyConfig{Secret: secret, Issuer: "https://id.example", Audience: "phoenix"})
	if err != nil {
		t.Fatal(err)
	}
	ok := sign(t, jwt.SigningMethodHS256, secret, claims(map[string]any{"iss": "https://id.example", "aud": []string{"phoenix", "x"}}), "")
	if _, err := v.Verify(ok); err != nil {
		t.Fatalf("valid iss/aud rejected: %v", err)
	}
	for name, c := range map[string]jwt.MapClaims{
		"no iss":    claims(map[string]any{"aud": "phoenix"}),
		"wrong iss": claims(map[string]any{"iss": "https://evil", "aud": "phoenix"}),
		"no aud":    claims(map[string]any{"iss": "https://id.example"}),
		"wrong aud": claims(map[string]any{"iss": "https://id.example", "aud": "other"}),
	} {
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, c, "")); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestJWKS(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	set := map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(key.PublicKey.N.Bytes()), "e": b64(big.NewInt(int64(key.PublicKey.E)).Bytes()),
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifierFromConfig(ctx, Settings{JWKSURL: srv.URL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, key, claims(nil), "k1")); err != nil {
		t.Fatalf("JWKS-signed token rejected: %v", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, other, claims(nil), "k1")); err == nil {
		t.Fatal("token signed by a key outside the JWKS accepted")
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), claims(nil), "k1")); err == nil {
		t.Fatal("HS256 accepted with only a JWKS configured")
	}
}

func TestResolveTenant(t *testing.T) {
	tests := []struct {
		name  string
		p     Principal
		query string
		want  string
		code  string
	}{
		{"claim", Principal{Role: RolePlayer, TenantID: "a"}, "", "a", ""},
		{"claim with same query", Principal{Role: RoleTenantAdmin, TenantID: "a"}, "a", "a", ""},
		{"claim with other query", Principal{Role: RoleTenantAdmin, TenantID: "a"}, "b", "", referral.EForbidden},
		{"super admin", Principal{Role: RoleSuperAdmin}, "z", "z", ""},
		{"super admin without query", Principal{Role: RoleSuperAdmin}, "", "", referral.ETenantRequired},
		{"super admin with claim is pinned", Principal{Role: RoleSuperAdmin, TenantID: "a"}, "b", "", referral.EForbidden},
		{"tenant_ids listed", Principal{Role: RoleClientAdmin, TenantIDs: []string{"a", "b"}}, "b", "b", ""},
		{"tenant_ids missing query", Principal{Role: RoleClientAdmin, TenantIDs: []string{"a"}}, "", "", referral.ETenantRequired},
		{"tenant_ids not listed", Principal{Role: RoleClientAdmin, TenantIDs: []string{"a"}}, "c", "", referral.EForbidden},
		{"nothing", Principal{Role: RoleClientAdmin}, "a", "", referral.EForbidden},
		{"malformed query", Principal{Role: RoleSuperAdmin}, "a b", "", referral.EValidation},
	}
	for _, tt := range tests {
		got, err := ResolveTenant(tt.p, tt.query)
		code := ""
		if err != nil {
			code = referral.ErrorCode(err)
		}
		if got != tt.want || code != tt.code {
			t.Errorf("%s: got %q, %q; want %q, %q", tt.name, got, code, tt.want, tt.code)
		}
	}
}

func TestVerifiedTokenCache(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	v, err := NewVerifier(KeyConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	// A token that expires within the leeway is admitted, cached, and stops being admitted once
	// exp + leeway has passed — the cache never outlives the token.
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(map[string]any{"exp": time.Now().Add(-Leeway + time.Second).Unix()}), "")
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("token within leeway rejected: %v", err)
	}
	if _, ok := v.cache.get(tok, time.Now()); !ok {
		t.Fatal("verified token not cached")
	}
	if _, ok := v.cache.get(tok, time.Now().Add(2*time.Second)); ok {
		t.Fatal("cache entry outlived the token's expiry")
	}
	// A tampered token never hits the entry of the original.
	if _, err := v.Verify(tok[:len(tok)-2] + "xx"); err == nil {
		t.Fatal("tampered token accepted")
	}
	// The cache stays bounded.
	for i := range tokenCacheSize + 10 {
		v.cache.put(strings.Repeat("t", 8)+string(rune(i)), Principal{}, time.Now().Add(time.Hour), time.Now())
	}
	if n := len(v.cache.entries); n > tokenCacheSize {
		t.Fatalf("cache holds %d entries", n)
	}
}

// TestVerifiedTokenCacheBytes: tokens of the largest accepted size fill the byte budget, not
// 10,000 × 8 KiB; expired entries are dropped; the accounting matches the entries.
func TestVerifiedTokenCacheBytes(t *testing.T) {
	var c tokenCache
	now := time.Now()
	big := strings.Repeat("b", MaxTokenBytes)
	for i := range 5000 {
		c.put(big+strconv.Itoa(i), Principal{UserID: "u", Role: RolePlayer, TenantID: "t"}, now.Add(time.Hour), now)
		if c.bytes > tokenCacheBytes {
			t.Fatalf("after %d tokens the cache holds %d bytes", i+1, c.bytes)
		}
	}
	stored := 0
	for raw, e := range c.entries {
		stored += len(raw)
		if e.cost < len(raw) {
			t.Fatalf("entry cost %d below its token's %d bytes", e.cost, len(raw))
		}
	}
	if stored > tokenCacheBytes || len(c.entries) < 100 {
		t.Fatalf("%d entries, %d token bytes", len(c.entries), stored)
	}
	sum := 0
	for _, e := range c.entries {
		sum += e.cost
	}
	if sum != c.bytes {
		t.Fatalf("accounted %d bytes, entries hold %d", c.bytes, sum)
	}
	// A minute later every entry has expired; the next put sweeps them all.
	later := now.Add(tokenCacheTTL)
	c.put("fresh", Principal{UserID: "u"}, later.Add(time.Hour), later)
	if len(c.entries) != 1 || c.bytes != c.entries["fresh"].cost {
		t.Fatalf("after expiry: %d entries, %d bytes", len(c.entries), c.bytes)
	}
	// Replacing an entry does not count it twice.
	c.put("fresh", Principal{UserID: "u"}, later.Add(time.Hour), later)
	if len(c.entries) != 1 || c.bytes != c.entries["fresh"].cost {
		t.Fatalf("after replace: %d entries, %d bytes", len(c.entries), c.bytes)
	}
}
