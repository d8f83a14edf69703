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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/projector"
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

// qryRedisServer starts a Redis server of this test only, on a Unix socket, and returns its URL
// and a client. A gateway rebuilds (wipes) the Redis it projects into, so it must not share one
// with other packages' tests.
func qryRedisServer(t *testing.T) (string, *redis.Client) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: the gateway needs a Redis of its own here")
	}
	dir, err := os.MkdirTemp("", "qgw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	t.Cleanup(func() { rdb.Close() })
	for deadline := time.Now().Add(10 * time.Second); rdb.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unix://" + sock, rdb
}

// qryEnv is a gateway's environment over a fresh database and a private Redis.
func qryEnv(t *testing.T) (map[string]string, *redis.Client) {
	redisURL, rdb := qryRedisServer(t)
	return map[string]string{
		"PHOENIX_DATABASE_URL": pgtest.NewDatabase(t), "PHOENIX_REDIS_URL": redisURL,
		"PHOENIX_JWT_SECRET": secret, "PHOENIX_HTTP_ADDR": "127.0.0.1:0",
	}, rdb
}

// qryWaitIdle waits until a started gateway is fully up without being sent a request: the
// projector leads and the in-process cache is subscribed to its announcements.
func qryWaitIdle(t *testing.T, logs *safeBuffer, rdb *redis.Client) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		subs, err := rdb.PubSubNumSub(context.Background(), projector.InvalidationChannel).Result()
		if err == nil && subs[projector.InvalidationChannel] == 1 && strings.Contains(logs.String(), "projector_leader") {
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
		"PHOENIX_LOCAL_CACHE_TTL", "PHOENIX_SHUTDOWN_TIMEOUT"} {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &safeBuffer{}
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), io.Discard, logs, listening) }()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	}
	qryWaitIdle(t, logs, rdb)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v\n%s", err, logs)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("run did not return within 2 s of shutdown:\n%s", logs)
	}
}

// TestIdleSIGTERM builds the binary, starts it, and sends SIGTERM while it is idle: it exits 0
// in under 2 s.
func TestIdleSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "query-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
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
