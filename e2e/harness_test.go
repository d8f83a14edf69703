// Package e2e runs the real admin-gateway and query-gateway binaries against a fresh PostgreSQL
// database and a Redis database of their own, and checks the Query Gateway end to end: its
// routes, tenant isolation, write-to-read freshness, and recovery from failures.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/web/contract"
)

const qrySecret = "e2e-secret-0123456789abcdef0123456789"

// qryAddressHashKey is the Admin Gateway's PHOENIX_ADDRESS_HASH_KEY in these tests.
const qryAddressHashKey = "e2e-address-hash-key-0123456789abcdef"

var (
	qryBinDir    string
	qryRedisBase int
	qryRedisNext atomic.Int32
)

// qryBuildDir is where the gateways of this checkout are built (for a race-detector build or
// not): one fixed directory per checkout and mode, rebuilt by every run, so that runs leave no
// litter and two checkouts tested at once never run each other's binaries.
func qryBuildDir(race bool) (string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(os.TempDir(), fmt.Sprintf("phoenix-e2e-bin-%x-race-%v", sum[:4], race)), nil
}

// qryBuild builds both gateways into dir.
func qryBuild(dir string, race bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/admin-gateway", "./cmd/query-gateway")...)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build gateways: %w", err)
	}
	return nil
}

// qryPlainBins returns a directory of gateways built without the race detector (whose memory
// use is many times a real build's): qryBinDir itself unless the tests run with -race.
var qryPlainBins = sync.OnceValues(func() (string, error) {
	if !qryRace {
		return qryBinDir, nil
	}
	dir, err := qryBuildDir(false)
	if err != nil {
		return "", err
	}
	return dir, qryBuild(dir, false)
})

func TestMain(m *testing.M) {
	dir, err := qryBuildDir(qryRace)
	if err == nil {
		err = qryBuild(dir, qryRace)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	qryBinDir = dir
	var b [1]byte
	rand.Read(b[:])
	qryRedisBase = int(b[0])
	pgtest.Main(m, cachetest.StopClusters)
}

// qryRedisIndex returns a Redis database index (2–15; 0 and 1 belong to the pkg/cache and
// pkg/projector tests) not used by another stack of this run.
func qryRedisIndex() int {
	return 2 + (qryRedisBase+int(qryRedisNext.Add(1)))%14
}

// qryProc is a running gateway binary.
type qryProc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	addr string
	logs *qryLog
	done chan struct{}
	// stopBound is how long the process may take to exit after SIGTERM: its drain delay and
	// shutdown timeout (SPEC §7, §8) and a margin for the process's own exit.
	stopBound time.Duration
	// ended is set once the test has stopped or killed the process on purpose.
	ended bool
}

type qryLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *qryLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *qryLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// qryFreeAddr picks a free loopback port.
func qryFreeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// qryShutdownTimeout is the gateways' PHOENIX_SHUTDOWN_TIMEOUT unless a test sets another.
const qryShutdownTimeout = "5s"

// qryStart runs a gateway binary of qryBinDir with env and waits until /healthz answers.
func qryStart(t testing.TB, bin string, env []string, args ...string) *qryProc {
	t.Helper()
	return qryStartPath(t, filepath.Join(qryBinDir, bin), env, args...)
}

// qryStartPath runs the gateway binary at path with env and waits until /healthz answers. When
// the test ends, a process still running is stopped with SIGTERM, and the test fails unless it
// exits with status 0 within its shutdown bound; one that exited before is a failure unless the
// test killed it.
func qryStartPath(t testing.TB, path string, env []string, args ...string) *qryProc {
	t.Helper()
	bin := filepath.Base(path)
	addr := qryFreeAddr(t)
	cmd := exec.Command(path, args...)
	// Later entries win: the caller's env overrides the defaults.
	cmd.Env = append(os.Environ(), append([]string{"PHOENIX_LOG_LEVEL=warn", "PHOENIX_JWT_SECRET=" + qrySecret,
		"PHOENIX_ADDRESS_HASH_KEY=" + qryAddressHashKey, "PHOENIX_SHUTDOWN_TIMEOUT=" + qryShutdownTimeout}, append(env, "PHOENIX_HTTP_ADDR="+addr)...)...)
	// The gateway dies with the test binary even if a cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &qryProc{t: t, name: bin, cmd: cmd, addr: addr, logs: &qryLog{}, done: make(chan struct{}),
		stopBound: qryEnvDuration(t, cmd.Env, "PHOENIX_DRAIN_DELAY") + qryEnvDuration(t, cmd.Env, "PHOENIX_SHUTDOWN_TIMEOUT") + 2*time.Second}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			if !p.ended && !cmd.ProcessState.Success() {
				t.Errorf("%s exited during the test: %v", bin, cmd.ProcessState)
			}
		default:
			p.stop()
		}
		if strings.Contains(p.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", bin)
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", bin, qryTail(p.logs.String(), 4000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", bin, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not become healthy:\n%s", bin, p.logs.String())
	return nil
}

// qryEnvDuration returns the duration an environment list (last entry wins) sets for key, or
// zero.
func qryEnvDuration(t testing.TB, env []string, key string) time.Duration {
	t.Helper()
	var d time.Duration
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			var err error
			if d, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		}
	}
	return d
}

func qryTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill ends the process at once (SIGKILL) and waits for it.
func (p *qryProc) kill() {
	p.ended = true
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop ends the process gracefully (SIGTERM) and waits for it; it returns how long the exit
// took. The test fails unless the process exits with status 0 within its stop bound; past the
// bound it is killed.
func (p *qryProc) stop() time.Duration {
	p.t.Helper()
	p.ended = true
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.stopBound):
		p.t.Errorf("%s did not exit within %v of SIGTERM", p.name, p.stopBound)
		p.kill()
		return time.Since(start)
	}
	took := time.Since(start)
	if !p.cmd.ProcessState.Success() {
		p.t.Errorf("%s exited with %v after SIGTERM, want exit status 0", p.name, p.cmd.ProcessState)
	}
	return took
}

// qryStack is one database, one Redis database (or, with cachetest.ClusterEnv set, one Redis
// Cluster), an Admin Gateway and Query Gateways.
type qryStack struct {
	t       testing.TB
	bins    string // the directory of the gateway binaries
	dbURL   string
	db      *sqlx.DB
	redisDB int                   // the database number on the shared Redis (single-node mode)
	cluster *redis.ClusterClient  // the stack's own Redis Cluster (cluster mode), else nil
	redis   string                // the Query Gateway's Redis setting, NAME=value
	rdb     redis.UniversalClient // the stack's Redis
	admin   *qryProc
}

// qryNewStack creates a fresh database and Redis database (or Redis Cluster) and starts an Admin
// Gateway (with extra environment adminEnv).
func qryNewStack(t testing.TB, adminEnv ...string) *qryStack {
	t.Helper()
	return qryNewStackFrom(t, qryBinDir, adminEnv...)
}

// qryNewStackFrom is qryNewStack with the gateway binaries of directory bins.
func qryNewStackFrom(t testing.TB, bins string, adminEnv ...string) *qryStack {
	t.Helper()
	s := &qryStack{t: t, bins: bins, dbURL: pgtest.NewDatabase(t), redisDB: qryRedisIndex()}
	db, err := sqlx.Open("postgres", s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s.db = db
	if cachetest.ClusterMode() {
		addrs, c := cachetest.Cluster(t) // empty, and flushed again when the test ends
		s.cluster, s.rdb = c, c
		s.redis = "PHOENIX_REDIS_CLUSTER_ADDRS=" + strings.Join(addrs, ",")
	} else {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: s.redisDB})
		t.Cleanup(func() {
			rdb.FlushDB(context.Background())
			rdb.Close()
		})
		if err := rdb.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("redis: %v", err)
		}
		s.rdb = rdb
		s.redis = fmt.Sprintf("PHOENIX_REDIS_URL=redis://127.0.0.1:6379/%d", s.redisDB)
	}
	s.admin = qryStartPath(t, filepath.Join(bins, "admin-gateway"), append([]string{"PHOENIX_DATABASE_URL=" + s.dbURL}, adminEnv...))
	return s
}

// startQuery starts a Query Gateway on the stack.
func (s *qryStack) startQuery(env ...string) *qryProc {
	s.t.Helper()
	return qryStartPath(s.t, filepath.Join(s.bins, "query-gateway"), append([]string{
		"PHOENIX_DATABASE_URL=" + s.dbURL, s.redis,
	}, env...))
}

// qryTenant returns a fresh tenant id.
func qryTenant() string {
	var b [5]byte
	rand.Read(b[:])
	return "qry-" + hex.EncodeToString(b[:])
}

// qryToken signs a token, failing t if it cannot (from the test's goroutine only).
func qryToken(t testing.TB, role auth.Role, tenant, sub string) string {
	t.Helper()
	tok, err := qrySign(role, tenant, sub)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// qrySign signs a token valid for an hour.
func qrySign(role auth.Role, tenant, sub string) (string, error) {
	return auth.Sign([]byte(qrySecret), auth.Principal{UserID: sub, Role: role, TenantID: tenant}, time.Hour, time.Now())
}

// qryResp is an HTTP answer.
type qryResp struct {
	Req    *http.Request
	Status int
	Header http.Header
	Body   []byte
}

var qryClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

// qryDo sends a request; body is JSON-encoded unless nil. It fails t when there is no answer,
// so it must be called from the test's goroutine (qrySend is for the others).
func qryDo(t testing.TB, method, url, token string, body any, headers ...string) qryResp {
	t.Helper()
	r, err := qrySend(method, url, token, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// qrySend sends a request and returns the answer, or an error when there is none.
func qrySend(method, url, token string, body any, headers ...string) (qryResp, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return qryResp{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return qryResp{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := qryClient.Do(req)
	if err != nil {
		return qryResp{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return qryResp{}, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	return qryResp{Req: req, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// must checks the status and decodes the body into v (when not nil).
func (r qryResp) must(t testing.TB, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("decode %s: %v", r.Body, err)
		}
	}
}

// fail checks an error answer.
func (r qryResp) fail(t testing.TB, status int, code string) {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if r.Status != status || json.Unmarshal(r.Body, &e) != nil || e.Error.Code != code {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}

// qryTenantEnv is one tenant on a stack, with helpers for its admin writes and player reads.
type qryTenantEnv struct {
	t      testing.TB
	s      *qryStack
	tenant string
	admin  string
	svc    string
	qg     *qryProc
}

func (s *qryStack) tenant(qg *qryProc) *qryTenantEnv {
	tn := qryTenant()
	return &qryTenantEnv{t: s.t, s: s, tenant: tn, qg: qg,
		admin: qryToken(s.t, auth.RoleTenantAdmin, tn, "admin"),
		svc:   qryToken(s.t, auth.RoleService, tn, "svc")}
}

func (e *qryTenantEnv) player(user string) string {
	return qryToken(e.t, auth.RolePlayer, e.tenant, user)
}

// write sends an Admin Gateway request and decodes a 200 answer into v.
func (e *qryTenantEnv) write(method, path, token string, body, v any) {
	e.t.Helper()
	qryDo(e.t, method, "http://"+e.s.admin.addr+path, token, body).must(e.t, 200, v)
}

// read sends a Query Gateway GET and checks the exchange against the gateway's OpenAPI
// document.
func (e *qryTenantEnv) read(path, token string, headers ...string) qryResp {
	e.t.Helper()
	r := qryDo(e.t, "GET", "http://"+e.qg.addr+path, token, nil, headers...)
	qryCheckContract(e.t, r)
	return r
}

var qryContract = sync.OnceValues(func() (*contract.Validator, error) { return contract.Load(queryapi.OpenAPI) })

// qryCheckContract validates a Query Gateway exchange against its OpenAPI document.
func qryCheckContract(t testing.TB, r qryResp) {
	t.Helper()
	v, err := qryContract()
	if err != nil {
		t.Fatalf("query gateway OpenAPI document: %v", err)
	}
	v.Check(t, r.Req, nil, r.Status, r.Header, r.Body)
}

// eventually polls fn until it returns nil or the timeout passes.
func qryEventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// qryIDs helps decode objects with an id.
type qryObj struct {
	ID string `json:"id"`
}

// qryContains reports whether s contains every one of subs.
func qryContains(s []byte, subs ...string) error {
	for _, sub := range subs {
		if !strings.Contains(string(s), sub) {
			return fmt.Errorf("%s does not contain %q", s, sub)
		}
	}
	return nil
}

// waitProjected waits until the projector has applied every change committed so far: every
// change row visible now belongs to a transaction its position's snapshot shows as completed.
func (s *qryStack) waitProjected(t testing.TB, timeout time.Duration) {
	t.Helper()
	var last string
	if err := s.db.Get(&last, `SELECT coalesce(max(xid)::text, '0') FROM changes`); err != nil {
		t.Fatal(err)
	}
	qryEventually(t, timeout, func() error {
		b, err := s.rdb.Get(context.Background(), "phx:pos").Bytes()
		if err != nil {
			return err
		}
		var pos struct {
			Snap string `json:"snap"`
		}
		if err := json.Unmarshal(b, &pos); err != nil {
			return err
		}
		var pending int
		const q = `SELECT count(*) FROM changes WHERE xid <= $2::xid8
			AND xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)`
		if err := s.db.Get(&pending, q, pos.Snap, last); err != nil {
			return err
		}
		if pending > 0 {
			return fmt.Errorf("%d changes not yet applied (position %s)", pending, pos.Snap)
		}
		return nil
	})
}
