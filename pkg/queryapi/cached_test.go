package queryapi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

const qrySecret = "queryapi-test-secret-at-least-32-bytes"

// qryCachedServer serves route through the player middleware with a handler that counts its
// runs and answers body; the in-process cache is live (as if subscribed).
func qryCachedServer(t *testing.T, route string, body []byte) (*API, *echo.Echo, *int) {
	t.Helper()
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(qrySecret)})
	if err != nil {
		t.Fatal(err)
	}
	a := New(nil, nil, v, Config{LocalTTL: time.Hour}, qryLog, nil)
	a.local.setValid(true)
	e := echo.New()
	runs := new(int)
	e.GET(route, func(c echo.Context) error {
		*runs++
		return sendRaw(c, body)
	}, auth.Authenticate(v), auth.Guard(auth.RolePlayer), a.cached)
	return a, e, runs
}

func qryPlayer(t *testing.T, tenant, user string) string {
	t.Helper()
	tok, err := auth.Sign([]byte(qrySecret), auth.Principal{UserID: user, Role: auth.RolePlayer, TenantID: tenant}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func qryGet(t *testing.T, e *echo.Echo, target, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestQryCachedIgnoresUnknownParameters: junk query parameters neither enlarge the in-process
// cache's keys nor multiply its entries — 1,000 requests with distinct 4 KB junk share one entry.
func TestQryCachedIgnoresUnknownParameters(t *testing.T) {
	a, e, runs := qryCachedServer(t, "/v1/referral/me", []byte(`{"user_id":"u1","referral":null}`))
	tok := qryPlayer(t, "t1", "u1")
	junk := strings.Repeat("j", 4096)
	for i := range 1000 {
		if rec := qryGet(t, e, "/v1/referral/me?j="+junk+"&n="+strconv.Itoa(i), tok); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if *runs != 1 {
		t.Errorf("handler ran %d times, want 1 (one entry for every junk variant)", *runs)
	}
	a.local.mu.Lock()
	defer a.local.mu.Unlock()
	if n := a.local.order.Len(); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}
	if a.local.bytes > 1024 {
		t.Errorf("one small answer accounts for %d bytes", a.local.bytes)
	}
}

// TestQryCachedNormalisesParameters: the known parameters enter the key in normal form —
// absent, empty and explicit defaults share an entry, as do "5", "05" and "+5" — while a value
// the handler rejects is never kept, and each caller has entries of its own.
func TestQryCachedNormalisesParameters(t *testing.T) {
	a, e, runs := qryCachedServer(t, "/v1/referral/referrals", []byte(`{"items":[]}`))
	alice, bob := qryPlayer(t, "t1", "alice"), qryPlayer(t, "t1", "bob")
	for _, c := range []struct {
		target, token string
		runs          int
	}{
		{"/v1/referral/referrals", alice, 1},
		{"/v1/referral/referrals?limit=50", alice, 1},
		{"/v1/referral/referrals?limit=050&offset=0", alice, 1},
		{"/v1/referral/referrals?limit=&offset=&status=", alice, 1},
		{"/v1/referral/referrals?offset=00&junk=" + strings.Repeat("z", 1000), alice, 1},
		{"/v1/referral/referrals?limit=5", alice, 2},
		{"/v1/referral/referrals?limit=05", alice, 2},
		{"/v1/referral/referrals?limit=%2B5", alice, 2},
		{"/v1/referral/referrals?limit=5&status=pending", alice, 3},
		{"/v1/referral/referrals?status=pending&limit=5", alice, 3},
		{"/v1/referral/referrals?status=bogus", alice, 4},
		{"/v1/referral/referrals?status=bogus", alice, 5},
		{"/v1/referral/referrals?limit=x", alice, 6},
		{"/v1/referral/referrals?limit=x", alice, 7},
		{"/v1/referral/referrals", bob, 8},
		{"/v1/referral/referrals", bob, 8},
	} {
		if rec := qryGet(t, e, c.target, c.token); rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", c.target, rec.Code)
		}
		if *runs != c.runs {
			t.Fatalf("%s: handler ran %d times in all, want %d", c.target, *runs, c.runs)
		}
	}
	if n := a.local.order.Len(); n != 4 {
		t.Errorf("%d entries, want 4", n)
	}
}

// TestQryAnswerKeyBound: a key that would pass maxKeyLen (here through a long path parameter)
// is not made at all.
func TestQryAnswerKeyBound(t *testing.T) {
	e := echo.New()
	var got []bool
	e.GET("/v1/x/:p", func(c echo.Context) error {
		_, ok := answerKey(c)
		got = append(got, ok)
		return nil
	})
	for _, p := range []string{"short", strings.Repeat("p", maxKeyLen)} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/x/"+p, nil))
	}
	if len(got) != 2 || !got[0] || got[1] {
		t.Fatalf("keys made: %v, want [true false]", got)
	}
}
