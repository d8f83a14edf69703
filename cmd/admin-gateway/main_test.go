package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) {
	// The test binary stands in for the real one when runMain re-executes it.
	if os.Getenv("ADMIN_GATEWAY_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// runMain runs main with args in a child process (the test binary itself) and returns its
// stdout, stderr and exit status.
func runMain(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{"ADMIN_GATEWAY_TEST_MAIN=1", "PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

const secret = "main-test-secret-at-least-32-bytes-long"

// hashKey is the PHOENIX_ADDRESS_HASH_KEY of the tests that serve.
const hashKey = "main-test-address-hash-key-32-bytes-long"

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

func TestTokenCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"token", "--role", "player", "--tenant", "acme", "--sub", "u_1", "--ttl", "5m"},
		envOf(map[string]string{"PHOENIX_JWT_SECRET": secret}), &out, &errOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 || strings.Contains(out.String(), " ") {
		t.Fatalf("stdout is not just a token: %q", out.String())
	}
	v, _ := auth.NewVerifier(auth.KeyConfig{Secret: []byte(secret)})
	p, err := v.Verify(tok)
	if err != nil || p.Role != auth.RolePlayer || p.TenantID != "acme" || p.UserID != "u_1" {
		t.Fatalf("token verifies as %+v, %v", p, err)
	}
	err = run(context.Background(), []string{"token", "--role", "player", "--tenant", "a", "--sub", "u"},
		envOf(nil), &out, &errOut, nil)
	if err == nil {
		t.Fatal("token without a secret or PHOENIX_DEV succeeded")
	}
}

// TestTokenTenantsByRole: each role gets the tenant claims SPEC §2 gives it.
func TestTokenTenantsByRole(t *testing.T) {
	v, _ := auth.NewVerifier(auth.KeyConfig{Secret: []byte(secret)})
	for _, tc := range []struct {
		args []string
		want auth.Principal
	}{
		{[]string{"--role", "tenant_admin", "--tenant", "acme"}, auth.Principal{Role: auth.RoleTenantAdmin, TenantID: "acme"}},
		{[]string{"--role", "service", "--tenant", "acme"}, auth.Principal{Role: auth.RoleService, TenantID: "acme"}},
		{[]string{"--role", "client_admin", "--tenant", "acme,beta"}, auth.Principal{Role: auth.RoleClientAdmin, TenantIDs: []string{"acme", "beta"}}},
		{[]string{"--role", "client_admin", "--tenant", "acme"}, auth.Principal{Role: auth.RoleClientAdmin, TenantIDs: []string{"acme"}}},
		{[]string{"--role", "super_admin"}, auth.Principal{Role: auth.RoleSuperAdmin}},
		{[]string{"--role", "super_admin", "--tenant", "acme"}, auth.Principal{Role: auth.RoleSuperAdmin, TenantID: "acme"}},
	} {
		var out bytes.Buffer
		args := append([]string{"token", "--sub", "me"}, tc.args...)
		if err := run(context.Background(), args, envOf(map[string]string{"PHOENIX_JWT_SECRET": secret}), &out, io.Discard, nil); err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		p, err := v.Verify(strings.TrimSpace(out.String()))
		tc.want.UserID = "me"
		if err != nil || p.Role != tc.want.Role || p.TenantID != tc.want.TenantID || !slices.Equal(p.TenantIDs, tc.want.TenantIDs) {
			t.Errorf("%v: token verifies as %+v, %v; want %+v", tc.args, p, err, tc.want)
		}
	}
}

// TestTokenRefusals: a token the gateways would reject, or that its role could not use, is
// refused with a message naming the flag, and nothing is printed on stdout.
func TestTokenRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "player", "--sub", "u"}, "needs exactly one --tenant"},
		{[]string{"--role", "tenant_admin", "--sub", "u"}, "needs exactly one --tenant"},
		{[]string{"--role", "service", "--sub", "u"}, "needs exactly one --tenant"},
		{[]string{"--role", "player", "--tenant", "a,b", "--sub", "u"}, "needs exactly one --tenant"},
		{[]string{"--role", "client_admin", "--sub", "u"}, "client_admin needs --tenant"},
		{[]string{"--role", "super_admin", "--tenant", "a,b", "--sub", "u"}, "at most one --tenant"},
		{[]string{"--role", "player", "--tenant", "a b", "--sub", "u"}, "is not a tenant id"},
		{[]string{"--role", "player", "--tenant", strings.Repeat("t", 65), "--sub", "u"}, "is not a tenant id"},
		{[]string{"--role", "player", "--tenant", "a", "--sub", "u", "--ttl", "0s"}, "--ttl must be positive"},
		{[]string{"--role", "player", "--tenant", "a", "--sub", "u", "--ttl", "-1h"}, "--ttl must be positive"},
		{[]string{"--role", "player", "--tenant", "a", "--sub", "u", "--ttl", "soon"}, "ttl"},
		{[]string{"--role", "root", "--tenant", "a", "--sub", "u"}, "--role must be"},
		{[]string{"--tenant", "a", "--sub", "u"}, "--role must be"},
		{[]string{"--role", "player", "--tenant", "a"}, "--sub must be"},
		{[]string{"--role", "player", "--tenant", "a", "--sub", strings.Repeat("u", 129)}, "--sub must be"},
		{[]string{"--role", "player", "--tenant", "a", "--sub", "u", "extra"}, "unexpected arguments"},
		{[]string{"--rol", "player"}, "flag provided but not defined"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"token"}, tc.args...), envOf(map[string]string{"PHOENIX_DEV": "true"}), &out, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("%v: printed %q", tc.args, out.String())
		}
	}
	// Through main: a refusal exits non-zero with the reason on stderr.
	stdout, stderr, code := runMain(t, []string{"PHOENIX_DEV=true"}, "token", "--role", "player", "--sub", "u")
	if code == 0 || stdout != "" || !strings.Contains(stderr, "needs exactly one --tenant") {
		t.Errorf("token without a tenant: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--help"}, envOf(nil), &out, &errOut, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if errOut.Len() > 0 {
		t.Errorf("--help wrote to stderr: %q", errOut.String())
	}
	for _, v := range []string{"PHOENIX_HTTP_ADDR", "PHOENIX_DATABASE_URL", "PHOENIX_JWT_SECRET",
		"PHOENIX_JWT_PUBLIC_KEY_FILE", "PHOENIX_JWT_JWKS_URL", "PHOENIX_JWT_ISSUER", "PHOENIX_JWT_AUDIENCE", "PHOENIX_DEV",
		"PHOENIX_LOG_LEVEL", "PHOENIX_REFERRAL_URL_TEMPLATE", "PHOENIX_AUTO_MIGRATE", "PHOENIX_CODE_ATTEMPT_LIMIT",
		"PHOENIX_TRUSTED_PROXIES", "PHOENIX_SHUTDOWN_TIMEOUT", "PHOENIX_ADDRESS_HASH_KEY", "PHOENIX_VISITOR_LIMIT",
		"PHOENIX_IMPRESSION_TTL", "PHOENIX_IMPRESSION_RETENTION", "PHOENIX_CONSOLE", "PHOENIX_SIGNAL_RETENTION",
		"PHOENIX_OUTBOX_RETENTION", "PHOENIX_WEBHOOK_ALLOW_PRIVATE", "PHOENIX_SECRET_KEY"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

// TestHelpCommands: every way of asking for help prints the usage on stdout, nothing on stderr,
// and exits 0; a misspelt command is an error that points at help.
func TestHelpCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "PHOENIX_DATABASE_URL"},
		{[]string{"-h"}, "PHOENIX_DATABASE_URL"},
		{[]string{"help"}, "PHOENIX_DATABASE_URL"},
		{[]string{"help", "serve"}, "PHOENIX_DATABASE_URL"},
		{[]string{"help", "migrate"}, "PHOENIX_DATABASE_URL"},
		{[]string{"migrate", "--help"}, "PHOENIX_DATABASE_URL"},
		{[]string{"help", "token"}, "--tenant"},
		{[]string{"token", "--help"}, "client_admin needs one or more"},
	} {
		stdout, stderr, code := runMain(t, nil, tc.args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, tc.want) || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: exit %d, stderr %q, stdout contains %q: %v", tc.args, code, stderr, tc.want, strings.Contains(stdout, tc.want))
		}
	}
	for _, args := range [][]string{{"serv"}, {"help", "nope"}, {"help", "token", "extra"}, {"--nope"}} {
		stdout, stderr, code := runMain(t, nil, args...)
		if code == 0 || stdout != "" || !strings.Contains(stderr, "help") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want an error pointing at help", args, code, stdout, stderr)
		}
	}
}

// TestStartupLogMasksPasswords: the start-up config log of either connection string form
// hides the password (the database is unreachable here, so run stops after the log).
func TestStartupLogMasksPasswords(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:s3cret-pw@127.0.0.1:1/phoenix?sslmode=disable",
		"host=127.0.0.1 port=1 user=app password=s3cret-pw dbname=phoenix sslmode=disable",
		"host=127.0.0.1 port=1 user=app password='s3cret-pw two' dbname=phoenix sslmode=disable",
	} {
		var logs bytes.Buffer
		err := run(context.Background(), nil, envOf(map[string]string{"PHOENIX_DATABASE_URL": dsn, "PHOENIX_JWT_SECRET": secret, "PHOENIX_ADDRESS_HASH_KEY": hashKey}), io.Discard, &logs, nil)
		if err == nil {
			t.Fatalf("%s: connected to an unreachable database", dsn)
		}
		if !strings.Contains(logs.String(), `"msg":"config"`) || !strings.Contains(logs.String(), "****") {
			t.Errorf("%s: no masked config log:\n%s", dsn, logs.String())
		}
		if strings.Contains(logs.String()+err.Error(), "s3cret") {
			t.Errorf("%s: password in the log or error:\n%s\n%v", dsn, logs.String(), err)
		}
	}
}

func TestRefusesBadConfig(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no key":                        {},
		"short secret":                  {"PHOENIX_JWT_SECRET": "short"},
		"bad bool":                      {"PHOENIX_DEV": "maybe"},
		"bad level":                     {"PHOENIX_DEV": "true", "PHOENIX_LOG_LEVEL": "loud"},
		"no retention":                  {"PHOENIX_DEV": "true", "PHOENIX_SIGNAL_RETENTION": "0s"},
		"bad retention":                 {"PHOENIX_DEV": "true", "PHOENIX_SIGNAL_RETENTION": "90 days"},
		"short address hash key":        {"PHOENIX_JWT_SECRET": secret, "PHOENIX_ADDRESS_HASH_KEY": "short"},
		"impression ttl past retention": {"PHOENIX_DEV": "true", "PHOENIX_IMPRESSION_TTL": "240h", "PHOENIX_IMPRESSION_RETENTION": "24h"},
		"impression ttl zero":           {"PHOENIX_DEV": "true", "PHOENIX_IMPRESSION_TTL": "0s"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), nil, envOf(env), &out, &out, nil); err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

// TestAddressHashKeyRequiredToServe: outside development, serve refuses to start without
// PHOENIX_ADDRESS_HASH_KEY (no client address could be stored safely), while migrate, which
// stores none, runs without it.
func TestAddressHashKeyRequiredToServe(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := map[string]string{"PHOENIX_DATABASE_URL": dbURL, "PHOENIX_JWT_SECRET": secret, "PHOENIX_HTTP_ADDR": "127.0.0.1:0"}
	err := run(context.Background(), nil, envOf(env), io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "PHOENIX_ADDRESS_HASH_KEY is required") {
		t.Fatalf("serve without the key: %v", err)
	}
	if err := run(context.Background(), []string{"migrate"}, envOf(env), io.Discard, io.Discard, nil); err != nil {
		t.Fatalf("migrate without the key: %v", err)
	}
	env["PHOENIX_ADDRESS_HASH_KEY"] = "short"
	if err := run(context.Background(), []string{"migrate"}, envOf(env), io.Discard, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Fatalf("a short key: %v", err)
	}
}

// TestServeAndGracefulShutdown runs the real binary's run on :0: migrate, serve, then SIGTERM
// (context cancel) while a request is in flight. The request completes, /readyz answers 503
// while draining, and run returns nil.
func TestServeAndGracefulShutdown(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := envOf(map[string]string{
		"PHOENIX_DATABASE_URL": dbURL, "PHOENIX_JWT_SECRET": secret, "PHOENIX_ADDRESS_HASH_KEY": hashKey, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
		"PHOENIX_DRAIN_DELAY": "500ms",
	})
	logs := &safeBuffer{}
	if err := run(context.Background(), []string{"migrate"}, env, io.Discard, logs, nil); err != nil {
		t.Fatalf("migrate: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "migrations_done") {
		t.Fatalf("migrate did not finish:\n%s", logs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, io.Discard, logs, listening) }()
	var base string
	select {
	case a := <-listening:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if r := get(t, base+"/readyz"); r != http.StatusOK {
		t.Fatalf("/readyz = %d", r)
	}

	// A request whose body arrives after shutdown began must still be answered.
	tok, _ := auth.Sign([]byte(secret), auth.Principal{UserID: "a", Role: auth.RoleTenantAdmin, TenantID: "t1"}, time.Hour, time.Now())
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/referral/campaigns", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = -1
	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		inflight <- result{status: res.StatusCode}
	}()
	fmt.Fprint(pw, `{"name": "Welcome", "qualifying_event": "deposit.completed",`)
	time.Sleep(100 * time.Millisecond)
	cancel()
	time.Sleep(150 * time.Millisecond)
	if r := get(t, base+"/readyz"); r != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", r)
	}
	fmt.Fprint(pw, ` "referrer_rewards": {"wallet": []}, "referee_rewards": {"wallet": []}}`)
	pw.Close()
	res := <-inflight
	if res.err != nil || res.status >= 500 || res.status == 0 {
		t.Fatalf("in-flight request during shutdown: status %d, err %v", res.status, res.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	if !strings.Contains(logs.String(), "http_stopped") {
		t.Fatalf("no shutdown log:\n%s", logs)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestShutdownUnderLoad sends SIGTERM (context cancel) while 16 clients keep requesting and a
// watcher polls /readyz the way a load balancer does; clients stop sending new requests once it
// reports 503. Every request sent is answered without a 5xx or a broken connection, and run
// returns nil.
func TestShutdownUnderLoad(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := envOf(map[string]string{
		"PHOENIX_DATABASE_URL": dbURL, "PHOENIX_JWT_SECRET": secret, "PHOENIX_ADDRESS_HASH_KEY": hashKey, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
		"PHOENIX_DRAIN_DELAY": "200ms",
	})
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	logs := &safeBuffer{}
	go func() { done <- run(ctx, nil, env, io.Discard, logs, listening) }()
	var base string
	select {
	case a := <-listening:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	}
	tok, _ := auth.Sign([]byte(secret), auth.Principal{UserID: "a", Role: auth.RoleTenantAdmin, TenantID: "t1"}, time.Hour, time.Now())
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var (
		mu                sync.Mutex
		answered, refused int
		draining          atomic.Bool
		failures          []string
		wg                sync.WaitGroup
		deadline          = time.Now().Add(5 * time.Second)
	)
	go func() {
		for !draining.Load() && time.Now().Before(deadline) {
			if res, err := client.Get(base + "/readyz"); err != nil || res.StatusCode == http.StatusServiceUnavailable {
				draining.Store(true)
			} else {
				res.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !draining.Load() && time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, base+"/v1/referral/campaigns", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := client.Do(req)
				mu.Lock()
				switch {
				case err != nil:
					var op *net.OpError
					if errors.As(err, &op) && op.Op == "dial" {
						refused++
						mu.Unlock()
						return // the listener is closed: shutdown has begun
					}
					failures = append(failures, err.Error())
				case res.StatusCode >= 500:
					failures = append(failures, fmt.Sprintf("status %d", res.StatusCode))
				default:
					answered++
				}
				mu.Unlock()
				if res != nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v", err)
	}
	if len(failures) > 0 {
		t.Fatalf("%d requests failed during shutdown (first: %s); %d answered", len(failures), failures[0], answered)
	}
	if answered == 0 || !draining.Load() {
		t.Fatalf("answered %d, draining seen %v: the load did not span the shutdown", answered, draining.Load())
	}
	t.Logf("%d requests answered, %d refused after the listener closed", answered, refused)
}

// TestConfigLeavesRedisToTheQueryGateway: the Admin Gateway never talks to Redis, so it has no
// Redis setting, and it checks the failed code-attempt limit as the Query Gateway does.
func TestConfigLeavesRedisToTheQueryGateway(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, envOf(nil), &out, &errOut, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if strings.Contains(out.String(), "REDIS") {
		t.Errorf("--help lists a Redis setting:\n%s", out.String())
	}
	out.Reset()
	err := run(context.Background(), nil, envOf(map[string]string{"PHOENIX_DEV": "true", "PHOENIX_CODE_ATTEMPT_LIMIT": "-1"}), &out, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "PHOENIX_CODE_ATTEMPT_LIMIT") {
		t.Errorf("a negative attempt limit: %v", err)
	}
}
