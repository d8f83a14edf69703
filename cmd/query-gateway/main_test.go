package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/projector"
)

func TestMain(m *testing.M) { pgtest.Main(m, cachetest.StopClusters) }

const secret = "main-test-secret-at-least-32-bytes-long"

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// safeBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// qryEnv is a gateway's environment over a fresh database and a private Redis (a Redis Cluster
// with cachetest.ClusterEnv set).
func qryEnv(t *testing.T) (map[string]string, redis.UniversalClient) {
	name, value, rdb := cachetest.Gateway(t)
	return map[string]string{
		"PHOENIX_DATABASE_URL": pgtest.NewDatabase(t), name: value,
		"PHOENIX_JWT_SECRET": secret, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
	}, rdb
}

// qryWaitIdle waits until a started gateway is fully up without being sent a request: the
// projector leads and the in-process cache is subscribed to its announcements.
func qryWaitIdle(t *testing.T, logs *safeBuffer, rdb redis.UniversalClient) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		subs, err := cachetest.Subscribers(context.Background(), rdb, cache.InvalidationChannel("*"))
		if err == nil && len(subs) == 1 && strings.Contains(logs.String(), "projector_leader") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not come up (subscribers %v, %v):\n%s", subs, err, logs)
		}
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--help"}, envOf(nil), &out, &errOut, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, v := range []string{"PHOENIX_HTTP_ADDR", "PHOENIX_REDIS_URL", "PHOENIX_VISITOR_LIMIT", "PHOENIX_TRUSTED_PROXIES",
		"PHOENIX_LOCAL_CACHE_TTL", "PHOENIX_SHUTDOWN_TIMEOUT", "PHOENIX_DEPLOYMENT"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("--help wrote to stderr: %q", errOut.String())
	}

	// A flag error is returned (main reports it on stderr) and names the flag; stdout stays clean.
	out.Reset()
	errOut.Reset()
	err = run(context.Background(), []string{"--no-such-flag"}, envOf(nil), &out, &errOut, nil)
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("unknown flag: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("flag error wrote to stdout: %q", out.String())
	}
}

// TestIdleShutdown: a gateway that was never sent a request stops within 2 s of its context
// ending (the SIGTERM path) and run returns nil.
func TestIdleShutdown(t *testing.T) {
	env, rdb := qryEnv(t)
	g := qryRun(t, env)
	qryWaitIdle(t, g.logs, rdb)
	g.stop(2 * time.Second)
}

// qryGateway is a run in progress.
type qryGateway struct {
	t      *testing.T
	base   string // http://host:port
	logs   *safeBuffer
	cancel context.CancelFunc
	done   chan error
}

// qryRun starts run with env and returns once it listens; the test ends it with stop.
func qryRun(t *testing.T, env map[string]string) *qryGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g := &qryGateway{t: t, logs: &safeBuffer{}, cancel: cancel, done: make(chan error, 1)}
	listening := make(chan net.Addr, 1)
	go func() { g.done <- run(ctx, nil, envOf(env), io.Discard, g.logs, listening) }()
	select {
	case a := <-listening:
		g.base = "http://" + a.String()
	case err := <-g.done:
		t.Fatalf("run: %v\n%s", err, g.logs)
	}
	return g
}

// stop ends the run's context and requires run to return nil within d.
func (g *qryGateway) stop(d time.Duration) {
	g.t.Helper()
	g.cancel()
	select {
	case err := <-g.done:
		if err != nil {
			g.t.Fatalf("run returned %v\n%s", err, g.logs)
		}
	case <-time.After(d):
		g.t.Fatalf("run did not return within %v of shutdown:\n%s", d, g.logs)
	}
}

// TestIdleSIGTERM builds the binary, starts it, and sends SIGTERM while it is idle: it exits 0
// in under 2 s.
func TestIdleSIGTERM(t *testing.T) {
	bin := qryBuild(t)
	env, rdb := qryEnv(t)
	cmd := exec.Command(bin)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &safeBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		io.Copy(logs, bufio.NewReader(stderr))
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	qryWaitIdle(t, logs, rdb)
	if !qryLogged(logs.String(), "http_listening") {
		t.Fatalf("not listening:\n%s", logs)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v after %v\n%s", err, time.Since(start), logs)
		}
		if d := time.Since(start); d >= 2*time.Second {
			t.Fatalf("exited after %v, want under 2 s", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("still running 2 s after SIGTERM:\n%s", logs)
	}
}

// qryLogged reports whether a JSON log line with msg was written.
func qryLogged(logs, msg string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return true
		}
	}
	return false
}

// qryBuild builds the binary into the test's temporary directory and returns its path; the test
// is skipped with -short.
func qryBuild(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "query-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestRefusesBadConfig: a bad setting, or a PostgreSQL that cannot be reached, stops run before
// it serves, with an error that names what is wrong.
func TestRefusesBadConfig(t *testing.T) {
	unreachable := "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no key":                 {map[string]string{"PHOENIX_JWT_SECRET": ""}, "no JWT key"},
		"short secret":           {map[string]string{"PHOENIX_JWT_SECRET": "short"}, "PHOENIX_JWT_SECRET"},
		"bad level":              {map[string]string{"PHOENIX_LOG_LEVEL": "loud"}, "PHOENIX_LOG_LEVEL"},
		"bad duration":           {map[string]string{"PHOENIX_REDIS_TIMEOUT": "soon"}, "PHOENIX_REDIS_TIMEOUT"},
		"bad number":             {map[string]string{"PHOENIX_VISITOR_LIMIT": "many"}, "PHOENIX_VISITOR_LIMIT"},
		"no fallback":            {map[string]string{"PHOENIX_FALLBACK_CONCURRENCY": "0"}, "PHOENIX_FALLBACK_CONCURRENCY"},
		"negative attempts":      {map[string]string{"PHOENIX_CODE_ATTEMPT_LIMIT": "-1"}, "PHOENIX_CODE_ATTEMPT_LIMIT"},
		"stale in-process cache": {map[string]string{"PHOENIX_LOCAL_CACHE_TTL": "5s"}, "PHOENIX_LOCAL_CACHE_TTL"},
		"short retention":        {map[string]string{"PHOENIX_CHANGE_RETENTION": "1m"}, "PHOENIX_CHANGE_RETENTION"},
		"bad proxies":            {map[string]string{"PHOENIX_TRUSTED_PROXIES": "the office"}, "PHOENIX_TRUSTED_PROXIES"},
		"bad deployment":         {map[string]string{"PHOENIX_DEPLOYMENT": "a b"}, "PHOENIX_DEPLOYMENT"},
		"bad redis url":          {map[string]string{"PHOENIX_DATABASE_URL": pgtest.URL(t), "PHOENIX_REDIS_URL": "ftp://redis"}, "PHOENIX_REDIS_URL"},
		"no database":            {map[string]string{"PHOENIX_DATABASE_URL": unreachable}, "connect to database"},
	} {
		env := map[string]string{"PHOENIX_JWT_SECRET": secret, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
			"PHOENIX_DATABASE_URL": unreachable, "PHOENIX_REDIS_URL": "redis://127.0.0.1:1/0"}
		for k, v := range c.env {
			env[k] = v
		}
		logs := &safeBuffer{}
		listening := make(chan net.Addr, 1)
		err := run(context.Background(), nil, envOf(env), io.Discard, logs, listening)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: run returned %v, want an error naming %q", name, err, c.want)
		}
		select {
		case a := <-listening:
			t.Errorf("%s: served on %v", name, a)
		default:
		}
	}
}

// TestBinaryExitCodes: the built binary exits 1 on a bad setting, with the reason on stderr and
// nothing on stdout, and 0 after printing --help on stdout.
func TestBinaryExitCodes(t *testing.T) {
	bin := qryBuild(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PHOENIX_JWT_SECRET=" + secret, "PHOENIX_LOCAL_CACHE_TTL=5s"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("bad config: %v, want exit status 1", err)
	}
	if msg := stderr.String(); !strings.HasPrefix(msg, "query-gateway: ") || !strings.Contains(msg, "PHOENIX_LOCAL_CACHE_TTL") {
		t.Errorf("bad config: stderr %q, want the reason", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("bad config: stdout %q", stdout.String())
	}

	stdout.Reset()
	stderr.Reset()
	cmd = exec.Command(bin, "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("--help: %v (stderr %q)", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "PHOENIX_REDIS_URL") || stderr.Len() != 0 {
		t.Errorf("--help: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestServeEndToEnd runs the real run on :0 over a fresh database and a private Redis: a code
// written before the start is answered; one written while it runs (announced as the Admin
// Gateway announces its commits) reaches the read model the projector keeps in Redis within
// seconds and is answered too; the operational endpoints answer; admin tokens and write paths
// are refused; and run returns nil when its context ends.
func TestServeEndToEnd(t *testing.T) {
	env, rdb := qryEnv(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, env["PHOENIX_DATABASE_URL"], "main-test", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := postgres.NewStore(db)
	if _, err := store.CreatePlayerCode(ctx, "acme", "alice", "ALICE1", nil); err != nil {
		t.Fatal(err)
	}

	g := qryRun(t, env)
	base, logs := g.base, g.logs
	player, _ := auth.Sign([]byte(secret), auth.Principal{UserID: "alice", Role: auth.RolePlayer, TenantID: "acme"}, time.Hour, time.Now())
	admin, _ := auth.Sign([]byte(secret), auth.Principal{UserID: "root", Role: auth.RoleTenantAdmin, TenantID: "acme"}, time.Hour, time.Now())
	codes := func() []string {
		t.Helper()
		status, body := qrySend(t, http.MethodGet, base+"/v1/referral/codes", player)
		var got struct {
			Items []struct{ Code string }
		}
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Fatalf("GET /v1/referral/codes: %d %s", status, body)
		}
		var out []string
		for _, c := range got.Items {
			out = append(out, c.Code)
		}
		return out
	}
	if got := codes(); len(got) != 1 || got[0] != "ALICE1" {
		t.Fatalf("codes %v, want [ALICE1]", got)
	}

	if _, err := store.CreatePlayerCode(ctx, "acme", "alice", "ALICE2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT pg_notify($1, '')`, projector.Channel); err != nil {
		t.Fatal(err)
	}
	// The projector applies the change to alice's documents in Redis; the answer follows.
	written := time.Now()
	for !strings.Contains(rdb.HGet(ctx, cache.UserKey("acme", "alice"), cache.SectionCodes).Val(), "ALICE2") {
		if time.Since(written) > 5*time.Second {
			t.Fatalf("the new code is not in Redis after 5 s:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("a new code projected %v after its commit", time.Since(written).Round(time.Millisecond))
	// The in-process answer cache drops the old answer when the projector's announcement, sent
	// after the Redis write, arrives: within the freshness bound (1 s), not at the same instant.
	projected := time.Now()
	for got := codes(); len(got) != 2; got = codes() {
		if time.Since(projected) > time.Second {
			t.Fatalf("codes %v 1 s after the projection, want ALICE1 and ALICE2", got)
		}
		time.Sleep(5 * time.Millisecond)
	}

	for _, c := range []struct {
		method, path, token string
		status              int
		want                string
	}{
		{http.MethodGet, "/healthz", "", http.StatusOK, ""},
		{http.MethodGet, "/readyz", "", http.StatusOK, ""},
		{http.MethodGet, "/openapi.json", "", http.StatusOK, "/v1/referral/codes"},
		{http.MethodGet, "/metrics", "", http.StatusOK, "\nphoenix_projector_leader 1"},
		{http.MethodGet, "/v1/referral/codes", "", http.StatusUnauthorized, ""},
		{http.MethodGet, "/v1/referral/codes", admin, http.StatusForbidden, "FORBIDDEN"},
		{http.MethodPost, "/v1/referral/codes", player, http.StatusNotFound, "NOT_FOUND"},
	} {
		status, body := qrySend(t, c.method, base+c.path, c.token)
		if status != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s: %d %.200s, want %d with %q", c.method, c.path, status, body, c.status, c.want)
		}
	}

	g.stop(10 * time.Second)
}

// qrySend sends a request with an optional bearer token and returns the status and body.
func qrySend(t *testing.T, method, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res.StatusCode, body
}
