package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The junk load of issue 10: what a client without a token, or any player, may send to a
// gateway must not grow it.
const (
	qryJunkRequests    = 20_000    // of each kind, at each gateway
	qryJunkConcurrency = 32        // requests in flight
	qryJunkMaxRSS      = 100 << 20 // bytes, peak resident set size of a gateway
	qryJunkMaxMetrics  = 1 << 20   // bytes, of GET /metrics
)

// TestJunkLoadKeepsGatewaysSmall sends each gateway (real processes, built without the race
// detector) 20,000 requests with random method strings of 1–2,000 characters and 20,000 GETs
// of its routes and of random paths with unknown query parameters (values up to 60 KB, NUL,
// invalid UTF-8 and broken escapes), a quarter of them with a fresh, valid, padded token. No
// answer may be a 5xx, every one must be a 4xx (an unsupported method, an unknown query
// parameter, an unknown path: SPEC §3), the gateway's peak RSS stays under 100 MiB and its
// /metrics under 1 MiB (SPEC §3: bounded labels and caches).
func TestJunkLoadKeepsGatewaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("junk load (about a minute): skipped with -short")
	}
	bins, err := qryPlainBins()
	if err != nil {
		t.Fatal(err)
	}
	s := qryNewStackFrom(t, bins, "PHOENIX_LOG_LEVEL=error")
	qg := s.startQuery("PHOENIX_LOG_LEVEL=error")
	e := s.tenant(qg)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for i, g := range []struct {
		p     *qryProc
		role  string
		token string
	}{
		{s.admin, "tenant_admin", e.admin},
		{qg, "player", e.player("junk")},
	} {
		t.Run(g.p.name, func(t *testing.T) {
			routes := qryGetRoutes(t, g.p)
			j := &qryJunk{base: "http://" + g.p.addr, routes: routes, tenant: e.tenant, role: g.role, token: g.token}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			for _, phase := range []struct {
				name string
				gen  func(*rand.Rand) (*http.Request, error)
			}{
				{"random methods", j.methodRequest},
				{"query junk", j.queryRequest},
			} {
				r := qryBlast(ctx, qryJunkRequests, seed+uint64(i), phase.gen)
				t.Logf("%s: %v", phase.name, r)
				if r.sent < qryJunkRequests {
					t.Errorf("%s: only %d of %d requests sent in time", phase.name, r.sent, qryJunkRequests)
				}
				if len(r.errors) > 0 {
					t.Errorf("%s: %d requests got no answer; first: %s", phase.name, len(r.errors), strings.Join(r.errors[:min(5, len(r.errors))], "; "))
				}
				if len(r.server) > 0 {
					t.Errorf("%s: %d answers were 5xx; first: %s", phase.name, len(r.server), strings.Join(r.server[:min(5, len(r.server))], "; "))
				}
				if len(r.unexpected) > 0 {
					t.Errorf("%s: %d answers were neither 4xx nor 5xx; first: %s", phase.name, len(r.unexpected), strings.Join(r.unexpected[:min(5, len(r.unexpected))], "; "))
				}
			}
			hwm, rss := qryStatusKiB(t, g.p.cmd.Process.Pid, "VmHWM"), qryStatusKiB(t, g.p.cmd.Process.Pid, "VmRSS")
			t.Logf("peak RSS %d KiB, RSS now %d KiB", hwm, rss)
			if hwm<<10 >= qryJunkMaxRSS {
				t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(hwm)/1024, qryJunkMaxRSS>>20)
			}
			res, err := qryClient.Get(j.base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			t.Logf("/metrics: %d bytes", n)
			if res.StatusCode != 200 || n >= qryJunkMaxMetrics {
				t.Errorf("/metrics: status %d, %d bytes; want 200 and under %d", res.StatusCode, n, qryJunkMaxMetrics)
			}
		})
	}
}

// qryGetRoutes lists the paths with a GET operation in a gateway's OpenAPI document.
func qryGetRoutes(t *testing.T, p *qryProc) []string {
	t.Helper()
	r := qryDo(t, "GET", "http://"+p.addr+"/openapi.json", "", nil)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	r.must(t, 200, &doc)
	var out []string
	for path, ops := range doc.Paths {
		if _, ok := ops["get"]; ok && strings.HasPrefix(path, "/v1/") {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	if len(out) < 5 {
		t.Fatalf("%s documents %d GET routes: %v", p.name, len(out), out)
	}
	return out
}

// qryJunk makes the hostile requests for one gateway.
type qryJunk struct {
	base   string
	routes []string // OpenAPI paths with {parameters}
	tenant string
	role   string
	token  string // a valid token for the routes
}

// qryTokenChars are the characters an HTTP method (a token, RFC 9110) may hold.
const qryTokenChars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func qryRandomString(r *rand.Rand, chars string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

// qryLogLength is a length from 1 to max, as often in each order of magnitude.
func qryLogLength(r *rand.Rand, max int) int {
	return min(max, int(math.Exp(r.Float64()*math.Log(float64(max))))+1)
}

var qryPathParam = regexp.MustCompile(`\{[^}]+\}`)

// path returns a route with its parameters filled (a UUID or junk), or a random path; a clean
// one is a route with UUIDs, which the HTTP server reads to the end (it answers a request
// line it cannot parse at once and closes the connection, which a client still sending a large
// header sees as a broken pipe).
func (j *qryJunk) path(r *rand.Rand, clean bool) string {
	if !clean && r.IntN(8) == 0 {
		return "/" + qryCut(r, qryPools().path, 1+r.IntN(200))
	}
	return qryPathParam.ReplaceAllStringFunc(j.routes[r.IntN(len(j.routes))], func(string) string {
		if clean || r.IntN(2) == 0 {
			return fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), r.Uint64()&(1<<48-1))
		}
		return qryCut(r, qryPools().path, 1+r.IntN(100))
	})
}

// qryJunkPools is the junk requests are cut from: made once, since making it per request
// would make the client (race-instrumented under -race) slower than the gateways.
type qryJunkPools struct {
	path, query string // qryJunkText without and with query separators
	method      string // method characters
	letters     string // a-z
}

var qryPools = sync.OnceValue(func() qryJunkPools {
	r := rand.New(rand.NewPCG(10, 10))
	return qryJunkPools{path: qryJunkText(r, 1<<18, false), query: qryJunkText(r, 1<<18, true),
		method: qryRandomString(r, qryTokenChars, 1<<16), letters: qryRandomString(r, "abcdefghijklmnopqrstuvwxyz", 1<<17)}
})

// qryCut returns n bytes of pool from a random offset.
func qryCut(r *rand.Rand, pool string, n int) string {
	off := r.IntN(len(pool) - n + 1)
	return pool[off : off+n]
}

// qryJunkText is at least n bytes of URL-encoded junk: plain characters, NUL, invalid UTF-8, a
// lone surrogate's UTF-8 form, broken escapes and (in a query) separators. A cut of it may also
// split an escape.
func qryJunkText(r *rand.Rand, n int, query bool) string {
	pieces := []string{"%00", "%ff", "%fe%ff", "%ed%a0%80", "%", "%zz", "%c3%28", "~", "."}
	if query {
		pieces = append(pieces, "+", "=", "&", ";", "%26", "%3D")
	}
	var b strings.Builder
	for b.Len() < n {
		if r.IntN(4) == 0 {
			b.WriteString(pieces[r.IntN(len(pieces))])
		} else {
			b.WriteString(qryRandomString(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", 1+r.IntN(16)))
		}
	}
	return b.String()
}

// methodRequest is a request with a random method of 1–2,000 characters, to a route, a random
// path or an operational endpoint, with or without a token.
func (j *qryJunk) methodRequest(r *rand.Rand) (*http.Request, error) {
	path := j.path(r, false)
	if r.IntN(4) == 0 {
		path = []string{"/healthz", "/readyz", "/metrics", "/openapi.json"}[r.IntN(4)]
	}
	method := qryCut(r, qryPools().method, 1+r.IntN(2000))
	if slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}, method) {
		method += "X" // a real method by chance: what every route supports is not the point
	}
	req, err := qryRawRequest(method, j.base, path, "")
	if err == nil && r.IntN(2) == 0 {
		req.Header.Set("Authorization", "Bearer "+j.token)
	}
	return req, err
}

// queryRequest is a GET of a route or a random path with one to four query parameters, at least
// one of them unknown to every route, and values up to 60 KB; a quarter carry instead a fresh
// token (valid, padded to 8–36 KB) that no cache has seen, shorter values (a request stays
// within the gateways' 64 KiB header limit) and a clean path.
func (j *qryJunk) queryRequest(r *rand.Rand) (*http.Request, error) {
	token, maxValue, padded := j.token, 60_000, r.IntN(4) == 0
	if padded {
		claims := jwt.MapClaims{"sub": fmt.Sprintf("junk-%d", r.Uint64()), "role": j.role, "tenant_id": j.tenant,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
			"pad": qryCut(r, qryPools().letters, 8<<10+r.IntN(28<<10))}
		var err error
		if token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(qrySecret)); err != nil {
			return nil, err
		}
		maxValue = 2_000
	}
	known := []string{"tenant_id", "limit", "offset", "period", "status", "user_id", "code", "sort", "q", "cursor"}
	params := []string{"zz" + qryCut(r, qryPools().letters, 1+r.IntN(12)) + "=" + qryCut(r, qryPools().query, qryLogLength(r, maxValue))}
	for range r.IntN(4) {
		name := known[r.IntN(len(known))]
		if r.IntN(2) == 0 {
			name = qryCut(r, qryPools().path, 1+r.IntN(30))
		}
		params = append(params, name+"="+qryCut(r, qryPools().query, qryLogLength(r, 1_000)))
	}
	r.Shuffle(len(params), func(a, b int) { params[a], params[b] = params[b], params[a] })
	req, err := qryRawRequest("GET", j.base, j.path(r, padded), strings.Join(params, "&"))
	if err == nil && r.IntN(8) != 0 {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, err
}

// qryRawRequest is a request whose path and query go on the wire exactly as given, broken
// escapes included (a URL would refuse them).
func qryRawRequest(method, base, path, query string) (*http.Request, error) {
	req, err := http.NewRequest(method, base+"/", nil)
	if err != nil {
		return nil, err
	}
	req.URL.Opaque, req.URL.RawQuery = path, query
	return req, nil
}

// qryBlastResult is what a junk load got back.
type qryBlastResult struct {
	sent       int // requests sent, answered or not
	statuses   map[int]int
	server     []string // 5xx answers
	unexpected []string // other answers that were not 4xx
	errors     []string // requests without an answer
	took       time.Duration
}

func (r qryBlastResult) String() string {
	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&b, " %d×%d", r.statuses[c], c)
	}
	return fmt.Sprintf("%d requests in %v (%.0f/s), statuses%s", r.sent, r.took.Round(time.Millisecond),
		float64(r.sent)/r.took.Seconds(), b.String())
}

// qryBlast sends n requests made by gen (each worker with its own random source) from
// qryJunkConcurrency workers until ctx ends.
func qryBlast(ctx context.Context, n int, seed uint64, gen func(*rand.Rand) (*http.Request, error)) qryBlastResult {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: qryJunkConcurrency, MaxConnsPerHost: qryJunkConcurrency}}
	defer client.CloseIdleConnections()
	var (
		next atomic.Int64
		mu   sync.Mutex
		res  = qryBlastResult{statuses: map[int]int{}}
		wg   sync.WaitGroup
	)
	note := func(list *[]string, s string) {
		mu.Lock()
		*list = append(*list, s)
		mu.Unlock()
	}
	start := time.Now()
	for w := range qryJunkConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				req, err := gen(r)
				if err != nil {
					note(&res.errors, "request: "+err.Error())
					continue
				}
				resp, err := client.Do(req.WithContext(ctx))
				mu.Lock()
				res.sent++
				mu.Unlock()
				if err != nil {
					note(&res.errors, fmt.Sprintf("%.40s %.80s (%d bytes): %v", req.Method, req.URL.RequestURI(), len(req.URL.RequestURI()), err))
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
				mu.Lock()
				res.statuses[resp.StatusCode]++
				mu.Unlock()
				switch resp.StatusCode / 100 {
				case 4:
				case 5:
					note(&res.server, fmt.Sprintf("%.40s %.300s: %d %.200s", req.Method, req.URL.RequestURI(), resp.StatusCode, body))
				default:
					note(&res.unexpected, fmt.Sprintf("%.40s %.80s: %d %.200s", req.Method, req.URL.RequestURI(), resp.StatusCode, body))
				}
			}
		}()
	}
	wg.Wait()
	res.took = time.Since(start)
	return res
}

// qryStatusKiB reads a kB field (VmRSS, VmHWM) of /proc/<pid>/status.
func qryStatusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
