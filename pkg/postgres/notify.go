package postgres

import (
	"context"
	"log/slog"
	"time"
)

// ChangesChannel is the LISTEN/NOTIFY channel that wakes change-log readers.
const ChangesChannel = "phoenix_changes"

// notifyThrottle is the shortest gap between two notifications; writes committed meanwhile are
// announced by the next one.
const notifyThrottle = 2 * time.Millisecond

// signalChange tells the notifier that a transaction has committed. It never blocks: pending
// signals are folded into one.
func (s *Store) signalChange() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// RunNotifier sends NOTIFY phoenix_changes after commits, until ctx ends. The notification is
// sent outside the writing transaction: inside it, PostgreSQL would hold its notification-queue
// lock through the commit's WAL flush and serialise all writers. A notification lost to a crash
// between commit and NOTIFY only delays readers until their periodic catch-up.
func (s *Store) RunNotifier(ctx context.Context, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
		if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, '')`, ChangesChannel); err != nil && ctx.Err() == nil {
			log.Warn("notify_failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifyThrottle):
		}
	}
}
