package console_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/console"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

const secret = "console-test-secret-at-least-32-bytes"

func server(t *testing.T, opts console.Options) (*httptest.Server, *echo.Echo) {
	t.Helper()
	s := web.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), web.Options{Name: "admin-gateway", MethodNotAllowed: true})
	if err := console.Register(s.Echo, opts); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	return srv, s.Echo
}

// TestRoutes: the console is a page and its files; the development sign-in is the one route
// with logic, and only when it is configured.
func TestRoutes(t *testing.T) {
	for _, dev := range []bool{false, true} {
		var opts console.Options
		if dev {
			opts.DevSecret = []byte(secret)
		}
		_, e := server(t, opts)
		var got []string
		for _, r := range e.Routes() {
			if strings.HasPrefix(r.Path, "/console") && r.Method != echo.RouteNotFound {
				got = append(got, r.Method+" "+r.Path)
			}
		}
		slices.Sort(got)
		want := []string{"GET /console", "GET /console/", "GET /console/*"}
		if dev {
			want = append(want, "POST /console/dev-token")
		}
		if !slices.Equal(got, want) {
			t.Errorf("dev=%v: routes %v, want %v", dev, got, want)
		}
	}
}

// TestAssets: files are served with their type and the policy; what is not a file is 404 in
// the error envelope.
func TestAssets(t *testing.T) {
	srv, _ := server(t, console.Options{})
	for path, want := range map[string]int{
		"/console/": 200, "/console/app.js": 200, "/console/screens/overview.js": 200, "/console/console.css": 200,
		"/console/favicon.svg": 200, "/console/nope.js": 404, "/console/screens": 404, "/console/index.html": 404,
		"/console/%2e%2e/console.go": 404, "/console/../go.mod": 404,
	} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
			continue
		}
		if got := res.Header.Get("Content-Security-Policy"); want == 200 && got != console.ContentSecurityPolicy {
			t.Errorf("GET %s: policy %q", path, got)
		}
		if want == 404 && !strings.Contains(string(body), `"NOT_FOUND"`) {
			t.Errorf("GET %s: %s", path, body)
		}
		ct := res.Header.Get("Content-Type")
		switch {
		case strings.HasSuffix(path, ".js") && want == 200 && !strings.HasPrefix(ct, "text/javascript"),
			path == "/console/" && !strings.HasPrefix(ct, "text/html"):
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	// The page loads only its own files and has no inline script or style.
	res, _ := http.Get(srv.URL + "/console/")
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, bad := range []string{"http://", "https://", "<style", "style=", "<script>", "onclick", "phoenix-dev-sign-in"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
}

// TestDevToken: the development sign-in mints a tenant_admin token of the chosen tenant that
// the API's verifier accepts, and refuses bad input with field errors.
func TestDevToken(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	srv, _ := server(t, console.Options{DevSecret: []byte(secret), Now: func() time.Time { return now }})
	post := func(body string) (int, map[string]any) {
		res, err := http.Post(srv.URL+"/console/dev-token", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	st, out := post(`{"tenant_id": "demo"}`)
	if st != 200 {
		t.Fatalf("dev-token: %d %v", st, out)
	}
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(out["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != auth.RoleTenantAdmin || p.TenantID != "demo" || p.UserID != "console_admin" {
		t.Errorf("minted principal %+v", p)
	}
	if out["expires_at"] != now.UTC().Add(console.DevTokenTTL).Format(time.RFC3339) {
		t.Errorf("expires_at %v", out["expires_at"])
	}
	for body, field := range map[string]string{
		`{}`: "tenant_id", `{"tenant_id": "a b"}`: "tenant_id", `{"tenant_id": "demo", "role": "super_admin"}`: "role",
		`{"tenant_id": "demo", "user_id": "` + strings.Repeat("u", 129) + `"}`: "user_id",
	} {
		st, out := post(body)
		fields, _ := out["error"].(map[string]any)["fields"].(map[string]any)
		if st != 400 || fields[field] == nil {
			t.Errorf("%s: %d %v, want 400 naming %s", body, st, out, field)
		}
	}
}
