package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
	"github.com/phoenix-referral/phoenix/pkg/web/contract"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testSecret = "test-secret-that-is-at-least-32-bytes-long"

// testAddressKey keys the address hashes of risk signals (§12) and impressions (§15).
const testAddressKey = "test-address-hash-key-of-at-least-32-bytes"

// env is one Admin Gateway over the package's test database, with a tenant of its own.
type env struct {
	t      testing.TB
	srv    *httptest.Server
	store  *postgres.Store
	tenant string
	log    bytes.Buffer
}

type envOption func(*adminapi.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, tenant: pgtest.Tenant(t)}
	e.store = postgres.NewStore(pgtest.DB(t))
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := webhook.NewSealer("test-secret-key")
	if err != nil {
		t.Fatal(err)
	}
	cfg := adminapi.Config{Attempts: referral.AttemptLimit{Max: 20, Window: 10 * time.Minute},
		AddressHashKey: []byte(testAddressKey), Sealer: sealer}
	for _, o := range opts {
		o(&cfg)
	}
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &e.log}, nil))
	s := web.NewServer(log, web.Options{Name: "admin-gateway", MethodNotAllowed: true})
	api := adminapi.New(e.store, v, cfg, log)
	s.Registry.MustRegister(api.Collectors()...)
	api.Register(s.Echo)
	e.srv = httptest.NewServer(s.Echo)
	t.Cleanup(e.srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	go e.store.RunNotifier(ctx, log)
	t.Cleanup(cancel)
	return e
}

// token signs a token for sub with role in the env's tenant.
func (e *env) token(role auth.Role, sub string) string {
	return e.tokenFor(auth.Principal{UserID: sub, Role: role, TenantID: e.tenant})
}

func (e *env) admin() string { return e.token(auth.RoleTenantAdmin, "admin_1") }

func (e *env) tokenFor(p auth.Principal) string {
	tok, err := auth.Sign([]byte(testSecret), p, time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request. body may be nil, a string (sent as is) or any value (sent as JSON).
// headers are name, value pairs.
func (e *env) do(method, path, token string, body any, headers ...string) *resp {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = j
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	oasAdminContract().Check(e.t, req, raw, res.StatusCode, res.Header, b)
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// oasAdminContract checks every exchange of the package's tests against the Admin Gateway's
// OpenAPI document (one Validator, so Uncovered reports the package's coverage).
var oasAdminContract = sync.OnceValue(func() *contract.Validator {
	v, err := contract.Load(adminapi.OpenAPI)
	if err != nil {
		panic(err)
	}
	return v
})

// must asserts the status and decodes the body into v (when v is not nil).
func (r *resp) must(t testing.TB, status int, v any) *resp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("decode %s: %v", r.Body, err)
		}
	}
	return r
}

// fail asserts an error answer with the given status and error code.
func (r *resp) fail(t testing.TB, status int, code string) apishape.ErrorBody {
	t.Helper()
	var eb apishape.ErrorBody
	if r.Status != status {
		t.Fatalf("status = %d, want %d (%s); body: %s", r.Status, status, code, r.Body)
	}
	if err := json.Unmarshal(r.Body, &eb); err != nil {
		t.Fatalf("error body %s: %v", r.Body, err)
	}
	if eb.Error.Code != code {
		t.Fatalf("error code = %q, want %q; body: %s", eb.Error.Code, code, r.Body)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("no X-Request-Id on error response")
	}
	return eb
}

// obj decodes the body as a JSON object.
func (r *resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return m
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
