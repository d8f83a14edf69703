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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

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
	err = run(context.Background(), []string{"token", "--role", "root", "--tenant", "a", "--sub", "u"},
		envOf(map[string]string{"PHOENIX_DEV": "true"}), &out, &errOut, nil)
	if err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, envOf(nil), &out, &out, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, v := range []string{"PHOENIX_HTTP_ADDR", "PHOENIX_DATABASE_URL", "PHOENIX_REDIS_URL", "PHOENIX_JWT_SECRET",
		"PHOENIX_JWT_PUBLIC_KEY_FILE", "PHOENIX_JWT_JWKS_URL", "PHOENIX_JWT_ISSUER", "PHOENIX_JWT_AUDIENCE", "PHOENIX_DEV",
		"PHOENIX_LOG_LEVEL", "PHOENIX_REFERRAL_URL_TEMPLATE", "PHOENIX_AUTO_MIGRATE", "PHOENIX_CODE_ATTEMPT_LIMIT"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

func TestRefusesBadConfig(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no key":       {},
		"short secret": {"PHOENIX_JWT_SECRET": "short"},
		"bad bool":     {"PHOENIX_DEV": "maybe"},
		"bad level":    {"PHOENIX_DEV": "true", "PHOENIX_LOG_LEVEL": "loud"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), nil, envOf(env), &out, &out, nil); err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

// TestServeAndGracefulShutdown runs the real binary's run on :0: migrate, serve, then SIGTERM
// (context cancel) while a request is in flight. The request completes, /readyz answers 503
// while draining, and run returns nil.
func TestServeAndGracefulShutdown(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := envOf(map[string]string{
		"PHOENIX_DATABASE_URL": dbURL, "PHOENIX_JWT_SECRET": secret, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
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
		"PHOENIX_DATABASE_URL": dbURL, "PHOENIX_JWT_SECRET": secret, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
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
