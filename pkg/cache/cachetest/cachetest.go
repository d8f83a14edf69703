// Package cachetest gives tests a Redis server of their own, for code that rebuilds or wipes
// the Redis it works on (the projector, a whole gateway) and so must not share one with other
// packages' tests — a single node (Server), or a real three-master Redis Cluster (Cluster), which
// the Redis-facing suites use instead when PHOENIX_TEST_REDIS_CLUSTER=1 (ClusterMode, Gateway,
// Client).
package cachetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server starts a redis-server of this test only, listening on a Unix socket (no TCP port, no
// persistence), stopped when the test ends. It returns the server's URL and a client. The test
// is skipped when redis-server is not installed.
func Server(tb testing.TB) (url string, rdb *redis.Client) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not installed: this test needs a Redis of its own")
	}
	dir, err := os.MkdirTemp("", "phx-redis")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	rdb = redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	tb.Cleanup(func() { rdb.Close() })
	for deadline := time.Now().Add(10 * time.Second); rdb.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			tb.Fatal("cachetest: redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unix://" + sock, rdb
}
