package web

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// newTestServer is a gateway with a few routes: a list, an item, and a POST that decodes.
func newTestServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	s := NewServer(discard(), opts)
	ok := func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"ip": c.RealIP()}) }
	s.Echo.GET("/v1/items", ok)
	s.Echo.GET("/v1/items/:item_id", ok)
	s.Echo.POST("/v1/items", func(c echo.Context) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := Bind(c, &in, RejectReadOnly); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]int{"name_bytes": len(in.Name)})
	})
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb apishape.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("not the error envelope: %s", body)
	}
	return eb.Error.Code
}

// TestMetricsLabelsBounded sends thousands of requests with made-up methods to made-up paths: the
// request metric keeps one series per registered route, standard method and status, and
// /metrics stays small.
func TestMetricsLabelsBounded(t *testing.T) {
	srv := newTestServer(t, Options{Name: "test", MethodNotAllowed: true})
	rnd := rand.New(rand.NewPCG(1, 2))
	junk := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rnd.IntN(26)]
		}
		return string(b)
	}
	paths := []string{"/v1/items", "/v1/items/1", "/v1/nowhere/", "/v1/items/1/2/3"}
	for i := 0; i < 2000; i++ {
		method := junk(1 + rnd.IntN(200))
		path := paths[i%len(paths)] + junk(rnd.IntN(3))
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, req)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	_, body := send(t, req)
	series := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "phoenix_http_request_duration_seconds_count{") {
			series[line[:strings.LastIndexByte(line, ' ')]] = true
		}
	}
	labels := regexp.MustCompile(`method="([^"]*)",route="([^"]*)"`)
	for s := range series {
		m := labels.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("unexpected series %s", s)
		}
		if m[1] != "other" && methodLabel(m[1]) != m[1] {
			t.Fatalf("method label %.40q…", m[1])
		}
		switch m[2] {
		case "/v1/items", "/v1/items/:item_id", "unmatched":
		default:
			t.Errorf("route label %q is not a registered template", m[2])
		}
	}
	if len(series) == 0 || len(series) > 12 {
		t.Errorf("%d request series after junk methods", len(series))
	}
	if !strings.Contains(string(body), `method="other",route="unmatched"`) {
		t.Errorf("no series for junk methods on unknown paths")
	}
	if len(body) > 64<<10 {
		t.Errorf("/metrics is %d bytes after junk methods", len(body))
	}
}

// TestChunkedBodyTooLarge sends bodies of unknown length (chunked): past 1 MiB is 413, not 400.
func TestChunkedBodyTooLarge(t *testing.T) {
	srv := newTestServer(t, Options{Name: "test"})
	encodings := make(chan []string, 1)
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encodings <- r.TransferEncoding
		inner.ServeHTTP(w, r)
	})
	for _, tt := range []struct {
		name   string
		size   int // bytes of the name string
		status int
		code   string
	}{
		{"just under 1 MiB", MaxBodyBytes - len(`{"name":""}`), 200, ""},
		{"one byte over", MaxBodyBytes - len(`{"name":""}`) + 1, 413, referral.EBodyTooLarge},
		{"far over", 4 * MaxBodyBytes, 413, referral.EBodyTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"name":"` + strings.Repeat("x", tt.size) + `"}`
			// A reader of unknown length makes the client send the body chunked.
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/items", io.MultiReader(strings.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			res, b := send(t, req)
			if te := <-encodings; len(te) != 1 || te[0] != "chunked" {
				t.Fatalf("request was not chunked: %v", te)
			}
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, b)
			}
			if tt.code != "" && errorCode(t, b) != tt.code {
				t.Fatalf("body %s, want %s", b, tt.code)
			}
		})
	}
	t.Run("declared length over 1 MiB", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/items", strings.NewReader(strings.Repeat(" ", MaxBodyBytes+1)))
		res, b := send(t, req)
		<-encodings
		if res.StatusCode != 413 || errorCode(t, b) != referral.EBodyTooLarge {
			t.Fatalf("status %d: %s", res.StatusCode, b)
		}
	})
}

// TestOptionsRefused: OPTIONS is a method the gateways do not support — 405 with an Allow list
// without OPTIONS on the Admin Gateway, 404 on the Query Gateway — instead of Echo's 204.
func TestOptionsRefused(t *testing.T) {
	for _, tt := range []struct {
		name             string
		methodNotAllowed bool
		path             string
		status           int
		code, allow      string
	}{
		{"admin, known path", true, "/v1/items", 405, referral.EMethodNotAllowed, "GET, POST"},
		{"admin, known item path", true, "/v1/items/1", 405, referral.EMethodNotAllowed, "GET"},
		{"admin, unknown path", true, "/v1/nowhere", 404, referral.ENotFound, ""},
		{"query, known path", false, "/v1/items", 404, referral.ENotFound, ""},
		{"query, unknown path", false, "/v1/nowhere", 404, referral.ENotFound, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Options{Name: "test", MethodNotAllowed: tt.methodNotAllowed})
			req, _ := http.NewRequest(http.MethodOptions, srv.URL+tt.path, nil)
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Access-Control-Request-Method", "POST")
			res, b := send(t, req)
			if res.StatusCode != tt.status || errorCode(t, b) != tt.code {
				t.Fatalf("status %d: %s", res.StatusCode, b)
			}
			if got := res.Header.Get("Allow"); got != tt.allow {
				t.Fatalf("Allow = %q, want %q", got, tt.allow)
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("CORS header on a refused preflight")
			}
		})
	}
	t.Run("another method still lists the real ones", func(t *testing.T) {
		srv := newTestServer(t, Options{Name: "test", MethodNotAllowed: true})
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/items", nil)
		res, b := send(t, req)
		if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, POST" {
			t.Fatalf("status %d, Allow %q: %s", res.StatusCode, res.Header.Get("Allow"), b)
		}
	})
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies configured: the peer, XFF ignored", nil, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"untrusted peer: XFF ignored", trusted, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted peer without XFF", trusted, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"trusted peer: the client it names", trusted, "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"right-most untrusted wins over a forged left part", trusted, "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines are one list", trusted, "10.1.2.3:5000", []string{"1.1.1.1", "198.51.100.1,10.9.9.9"}, "198.51.100.1"},
		{"all trusted: the left-most", trusted, "10.1.2.3:5000", []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5"},
		{"invalid entry stops at the last trusted hop", trusted, "10.1.2.3:5000", []string{"1.1.1.1, garbage, 10.0.0.6"}, "10.0.0.6"},
		{"invalid right-most entry: the peer", trusted, "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1:80"}, "10.1.2.3"},
		{"empty XFF: the peer", trusted, "10.1.2.3:5000", []string{""}, "10.1.2.3"},
		{"IPv6 proxy and client", trusted, "[fd00::1]:443", []string{" 2001:db8::7 "}, "2001:db8::7"},
		{"IPv4-mapped peer is the IPv4 address", trusted, "[::ffff:10.1.2.3]:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped client is normalised", trusted, "10.1.2.3:1", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"zoned trusted hop", trusted, "10.1.2.3:1", []string{"198.51.100.1, fd00::9%eth0"}, "198.51.100.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(tt.trusted)(r); got != tt.want {
				t.Fatalf("client = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTrustedProxiesOption: the server's RealIP follows Options.TrustedProxies.
func TestTrustedProxiesOption(t *testing.T) {
	for _, tt := range []struct {
		trusted []netip.Prefix
		want    string
	}{
		{nil, "127.0.0.1"},
		{[]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "198.51.100.1"},
	} {
		srv := newTestServer(t, Options{Name: "test", TrustedProxies: tt.trusted})
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/items", nil)
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		_, b := send(t, req)
		if !strings.Contains(string(b), `"ip":"`+tt.want+`"`) {
			t.Errorf("trusted %v: %s, want %s", tt.trusted, b, tt.want)
		}
	}
}

// TestUnauthorizedChallenge: every 401 names the Bearer scheme (RFC 6750), also one raised
// without the auth middleware's reason; a challenge already set is kept.
func TestUnauthorizedChallenge(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(discard(), true, nil)
	e.GET("/plain", func(echo.Context) error { return echo.ErrUnauthorized })
	e.GET("/reasoned", func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer error="invalid_token", error_description="token is expired"`)
		return referral.Errorf(referral.EUnauthorized, "token is expired")
	})
	for path, want := range map[string]string{
		"/plain":    "Bearer",
		"/reasoned": `Bearer error="invalid_token", error_description="token is expired"`,
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 401 || rec.Header().Get(echo.HeaderWWWAuthenticate) != want {
			t.Errorf("%s: %d, WWW-Authenticate %q", path, rec.Code, rec.Header().Get(echo.HeaderWWWAuthenticate))
		}
	}
}
