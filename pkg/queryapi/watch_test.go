package queryapi

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// qryLog discards logs.
var qryLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// qryRedis connects to the test Redis. Watch only subscribes: the database index does not matter
// (Pub/Sub channels are server-wide).
func qryRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	return rdb
}

// TestQryWatchStopsWhenIdle: an idle subscription (no message ever arrives) ends as soon as its
// context does — go-redis's Receive alone would block on the socket forever.
func TestQryWatchStopsWhenIdle(t *testing.T) {
	a := New(nil, nil, nil, Config{LocalTTL: time.Second}, qryLog, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Watch(ctx, qryRedis(t))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !a.local.token().ok {
		if time.Now().After(deadline) {
			t.Fatal("never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Watch did not return within 2 s of its context ending")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Watch took %v to stop", d)
	}
	if a.local.token().ok {
		t.Error("cache still in use after the subscription ended")
	}
}
