package projector

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// qryRunning starts p.Run and returns a function that cancels it and reports how long Run took
// to return (failing the test past 2 s) and what it returned.
func qryRunning(t *testing.T, p *Projector) func() (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(cancel)
	return func() (time.Duration, error) {
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			return time.Since(start), err
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return within 2 s of its context ending")
			return 0, nil
		}
	}
}

// qryWaitLeader waits until p holds the projector lock.
func qryWaitLeader(t *testing.T, p *Projector) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !p.Leader(); {
		if time.Now().After(deadline) {
			t.Fatal("never became leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// qryListening reports whether a goroutine is still in Projector.listen (not counting the
// short-lived drain of a closed listener's channel).
func qryListening() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Contains(string(buf), "projector.(*Projector).listen(")
}

// TestQryRunReleasesLockOnExit: a projector that stops (its context ends) while its database
// handle stays open gives up the advisory lock at once, so another replica takes over, and
// leaves no listener behind.
func TestQryRunReleasesLockOnExit(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db, err := postgres.Open(context.Background(), dsn, "qry-projector-test", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, rdb := cachetest.Server(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{DSN: dsn, LockRetry: 20 * time.Millisecond}
	a := New(db, cache.New(rdb), log, nil, cfg)
	stopA := qryRunning(t, a)
	qryWaitLeader(t, a)

	b := New(db, cache.New(rdb), log, nil, cfg)
	stopB := qryRunning(t, b)
	time.Sleep(100 * time.Millisecond)
	if b.Leader() {
		t.Fatal("two leaders at once")
	}
	if d, err := stopA(); err != nil || d > time.Second {
		t.Fatalf("Run returned %v after %v", err, d)
	}
	if a.Leader() {
		t.Fatal("still leader after Run returned")
	}
	// The lock lives on a pooled connection of the still-open db: only releasing it explicitly
	// lets b in.
	qryWaitLeader(t, b)
	if _, err := stopB(); err != nil {
		t.Fatal(err)
	}
	// pg_locks is cluster-wide: count only this test database's advisory locks (other packages'
	// tests run projectors at the same time), and give the ended sessions a moment to go.
	var held int
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := db.Get(&held, `
			SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			t.Fatal(err)
		}
		if held == 0 || time.Now().After(deadline) {
			break
		}
	}
	if held != 0 {
		t.Errorf("%d advisory locks still held after both projectors stopped", held)
	}
	if qryListening() {
		t.Error("a listener goroutine outlived Run")
	}
}

// TestQryRunStopsWithoutListenerConnection: while the listener cannot connect (its DSN points at
// a closed port) Run still stops promptly and takes its listener with it.
func TestQryRunStopsWithoutListenerConnection(t *testing.T) {
	p, _ := qryProjector(t)
	p.cfg.DSN = "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1"
	stop := qryRunning(t, p)
	qryWaitLeader(t, p)
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	if qryListening() {
		t.Error("a listener goroutine outlived Run")
	}
}
