package phoenix

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/client/go/admin"
	"github.com/phoenix-referral/phoenix/client/go/query"
)

// attempt is one request a fake gateway received.
type attempt struct {
	method, path, auth, key, body string
}

// fakeGateway answers the requests it receives with the scripted answers in order (the last one
// repeats) and records them.
type fakeGateway struct {
	mu       sync.Mutex
	got      []attempt
	answers  []func(w http.ResponseWriter)
	srv      *httptest.Server
	waits    []time.Duration
	tokenHit int
}

func newFakeGateway(t *testing.T, answers ...func(w http.ResponseWriter)) *fakeGateway {
	t.Helper()
	g := &fakeGateway{answers: answers}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		n := len(g.got)
		g.got = append(g.got, attempt{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), string(b)})
		g.mu.Unlock()
		g.answers[min(n, len(g.answers)-1)](w)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// options returns client options that record retry waits instead of sleeping and count token
// requests.
func (g *fakeGateway) options(extra ...Option) []Option {
	record := func(o *options) {
		o.sleep = func(_ *http.Request, d time.Duration) error {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.waits = append(g.waits, d)
			return nil
		}
	}
	tokens := WithTokenSource(TokenFunc(func(context.Context) (string, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.tokenHit++
		return "tok", nil
	}))
	return append([]Option{record, tokens}, extra...)
}

func answer(status int, header map[string]string, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const tierJSON = `{"id":"6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c","tenant_id":"t1","name":"Gold","commission_rate":0.15,
	"min_referrals":0,"min_referee_revenue":0,"priority":1,"created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z"}`

func TestDoerSignsRequestsAndKeysWrites(t *testing.T) {
	g := newFakeGateway(t, answer(200, nil, tierJSON))
	c, err := NewAdminClient(g.srv.URL, g.options()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := admin.CreateTierJSONRequestBody{Name: "Gold", CommissionRate: 0.15}
	if _, err := c.CreateTierWithResponse(ctx, nil, body); err != nil {
		t.Fatal(err)
	}
	mine := "order-42"
	if _, err := c.CreateTierWithResponse(ctx, &admin.CreateTierParams{IdempotencyKey: &mine}, body); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetTierWithResponse(ctx, [16]byte{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.JSON200 == nil || got.JSON200.Name != "Gold" {
		t.Fatalf("decoded tier = %+v", got.JSON200)
	}
	// A PUT replaces and an event is deduplicated by its event_id: both are repeatable as they
	// are, and a key would only cost the gateway a stored answer.
	if _, err := c.ReplaceTierWithResponse(ctx, [16]byte{1}, nil, admin.ReplaceTierJSONRequestBody{Name: "Gold", CommissionRate: 0.2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostEventWithResponse(ctx, nil, admin.PostEventJSONRequestBody{EventID: "e1", Type: "t", UserID: "u"}); err != nil {
		t.Fatal(err)
	}

	if len(g.got) != 5 {
		t.Fatalf("requests = %d, want 5", len(g.got))
	}
	for _, a := range g.got {
		if a.auth != "Bearer tok" {
			t.Errorf("%s %s: Authorization = %q", a.method, a.path, a.auth)
		}
	}
	if k := g.got[0].key; len(k) != 26 {
		t.Errorf("generated Idempotency-Key = %q, want 26 characters", k)
	}
	if k := g.got[1].key; k != mine {
		t.Errorf("caller's Idempotency-Key became %q", k)
	}
	for _, a := range g.got[2:] {
		if a.key != "" {
			t.Errorf("%s %s carries Idempotency-Key %q", a.method, a.path, a.key)
		}
	}
}

func TestDoerRetries429AfterRetryAfterWithTheSameKeyAndBody(t *testing.T) {
	limited := answer(429, map[string]string{"Retry-After": "2", "X-Request-Id": "r1"},
		`{"error":{"code":"RATE_LIMITED","message":"too many failed attempts"}}`)
	g := newFakeGateway(t, limited, limited, answer(200, nil, `{"id":"x"}`))
	d := NewDoer(g.options()...)
	req, _ := http.NewRequest(http.MethodPost, g.srv.URL+"/v1/referral/apply-code", strings.NewReader(`{"code":"ALICE"}`))
	resp, err := d.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(g.got) != 3 {
		t.Fatalf("attempts = %d, want 3", len(g.got))
	}
	for i, a := range g.got {
		if a.key != g.got[0].key || a.key == "" {
			t.Errorf("attempt %d: Idempotency-Key %q, first %q", i, a.key, g.got[0].key)
		}
		if a.body != `{"code":"ALICE"}` {
			t.Errorf("attempt %d: body %q", i, a.body)
		}
	}
	if want := []time.Duration{2 * time.Second, 2 * time.Second}; !equalDurations(g.waits, want) {
		t.Errorf("waits = %v, want %v", g.waits, want)
	}
	if g.tokenHit != 3 {
		t.Errorf("token asked %d times, want once per attempt (3)", g.tokenHit)
	}
}

func TestDoerRetries503WithBackoffThenGivesUp(t *testing.T) {
	g := newFakeGateway(t, answer(503, nil, `{"error":{"code":"UNAVAILABLE","message":"try again"}}`))
	c, err := NewQueryClient(g.srv.URL, g.options(WithRetries(2))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.MyCodesWithResponse(context.Background(), nil)
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 503 || e.Code != CodeUnavailable {
		t.Fatalf("err = %v, want a 503 UNAVAILABLE *Error", err)
	}
	if len(g.got) != 3 {
		t.Fatalf("attempts = %d, want 1 + 2 retries", len(g.got))
	}
	for i, w := range g.waits {
		if window := 100 * time.Millisecond << i; w <= 0 || w > window+time.Millisecond {
			t.Errorf("wait %d = %v, want within (0, %v]", i, w, window)
		}
	}
}

func TestDoerNeverRepeatsAnUnsafeWriteAfter503(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			g := newFakeGateway(t, answer(503, nil, `{"error":{"code":"UNAVAILABLE","message":"try again"}}`))
			d := NewDoer(g.options(WithoutIdempotencyKeys())...)
			req, _ := http.NewRequest(method, g.srv.URL+"/v1/referral/codes/x", strings.NewReader(`{}`))
			if _, err := d.Do(req); CodeOf(err) != CodeUnavailable {
				t.Fatalf("err = %v", err)
			}
			if len(g.got) != 1 || g.got[0].key != "" {
				t.Fatalf("attempts = %+v, want one without a key", g.got)
			}
		})
	}
}

func TestDoerRepeatsEventsAfter503WithoutAKey(t *testing.T) {
	for _, path := range []string{"/v1/events", "/v1/events/batch", "/v1/affiliate/simulate"} {
		t.Run(path, func(t *testing.T) {
			g := newFakeGateway(t, answer(503, nil, `{"error":{"code":"UNAVAILABLE","message":"try again"}}`),
				answer(200, nil, `{}`))
			d := NewDoer(g.options()...)
			req, _ := http.NewRequest(http.MethodPost, g.srv.URL+path, strings.NewReader(`{"event_id":"e1"}`))
			resp, err := d.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(g.got) != 2 || g.got[0].key != "" || g.got[1].body != `{"event_id":"e1"}` {
				t.Fatalf("attempts = %+v, want two without a key", g.got)
			}
		})
	}
}

func TestDoerReturnsALongRetryAfterToTheCaller(t *testing.T) {
	g := newFakeGateway(t, answer(429, map[string]string{"Retry-After": "600"},
		`{"error":{"code":"RATE_LIMITED","message":"too many failed attempts"}}`))
	d := NewDoer(g.options()...)
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/v1/referral/validate/X", nil)
	_, err := d.Do(req)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeRateLimited || e.RetryAfter != 10*time.Minute {
		t.Fatalf("err = %#v", err)
	}
	if len(g.got) != 1 || len(g.waits) != 0 {
		t.Fatalf("attempts %d, waits %v: want one attempt and no wait", len(g.got), g.waits)
	}
}

func TestDoerStopsWaitingWhenTheContextEnds(t *testing.T) {
	g := newFakeGateway(t, answer(503, map[string]string{"Retry-After": "5"}, ""))
	d := NewDoer(WithToken("tok"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/v1/referral/me", nil)
	start := time.Now()
	if _, err := d.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("returned after %v", el)
	}
}

func TestDoerFailsBeforeSendingWithoutAToken(t *testing.T) {
	g := newFakeGateway(t, answer(200, nil, `{}`))
	boom := errors.New("no token")
	d := NewDoer(WithTokenSource(TokenFunc(func(context.Context) (string, error) { return "", boom })))
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/v1/referral/me", nil)
	if _, err := d.Do(req); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if len(g.got) != 0 {
		t.Fatalf("a request was sent: %+v", g.got)
	}
}

func TestErrorEnvelope(t *testing.T) {
	g := newFakeGateway(t,
		answer(400, map[string]string{"X-Request-Id": "req-1"},
			`{"error":{"code":"VALIDATION_FAILED","message":"request validation failed","fields":{"name":"is required"}}}`),
		answer(502, nil, "<html>bad gateway</html>"))
	c, err := NewAdminClient(g.srv.URL, g.options()...)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.CreateTierWithResponse(context.Background(), nil, admin.CreateTierJSONRequestBody{})
	if resp != nil {
		t.Errorf("a response came with the error: %+v", resp)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want *Error", err, err)
	}
	if e.StatusCode != 400 || e.Code != CodeValidationFailed || e.Fields["name"] != "is required" || e.RequestID != "req-1" {
		t.Fatalf("error = %+v", e)
	}
	if want := "phoenix: 400 VALIDATION_FAILED: request validation failed map[name:is required] (request req-1)"; e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}

	_, err = c.ListTiersWithResponse(context.Background(), nil)
	if !errors.As(err, &e) || e.StatusCode != 502 || e.Code != "" || e.Message != "Bad Gateway" || string(e.Body) != "<html>bad gateway</html>" {
		t.Fatalf("non-envelope answer: %#v", err)
	}
	if CodeOf(errors.New("other")) != "" || CodeOf(nil) != "" {
		t.Error("CodeOf of a non-*Error is not empty")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 30 ":                          30 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Sun, 01 Mar 2026 12:01:30 GMT": 90 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestQueryClientDecodesNullableAnswers(t *testing.T) {
	g := newFakeGateway(t, answer(200, map[string]string{"ETag": `"e1"`},
		`{"valid":false,"code":"NOPE","reason":"CODE_NOT_FOUND","referrer_id":null,"campaigns":[]}`))
	c, err := NewQueryClient(g.srv.URL, g.options()...)
	if err != nil {
		t.Fatal(err)
	}
	tenant := query.TenantID("t1")
	v, err := c.ValidateCodeWithResponse(context.Background(), "nope", &query.ValidateCodeParams{TenantID: &tenant})
	if err != nil {
		t.Fatal(err)
	}
	if v.JSON200 == nil || v.JSON200.Valid || v.JSON200.Reason == nil || *v.JSON200.Reason != query.ValidationReasonCODENOTFOUND || v.JSON200.ReferrerID != nil {
		t.Fatalf("validation = %+v", v.JSON200)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
