package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// txAttempts bounds how often one transaction runs: when PostgreSQL aborts it for a deadlock or
// a serialization failure it is run again from the start, at most this many times in all.
const txAttempts = 5

// txBackoff is the longest pause before the second run; it doubles before each further run.
const txBackoff = 8 * time.Millisecond

// txOptions says how a transaction runs.
type txOptions struct {
	// readOnly begins the transaction READ ONLY.
	readOnly bool
	// isolation is its isolation level (sql.LevelDefault: READ COMMITTED).
	isolation sql.IsolationLevel
	// notify, when set, is called after the commit: the transaction wrote tables the read models
	// follow, and the change notifier must wake their readers (Store.signalChange).
	notify func()
}

// The transactions that signal nothing. A write of tables the read models follow uses
// Store.inTx, whose options carry the signal.
var (
	// txRead only reads (READ ONLY, READ COMMITTED).
	txRead = txOptions{readOnly: true}
	// txSnapshot only reads, every statement from one snapshot (READ ONLY, REPEATABLE READ), so
	// reads spread over several statements see one moment even while writes commit in between.
	txSnapshot = txOptions{readOnly: true, isolation: sql.LevelRepeatableRead}
	// txPrivate writes only what no read model follows (expired idempotency keys, attempt
	// failures, the pruned change log).
	txPrivate = txOptions{}
)

// transact is the package's one transaction helper: every transaction of the package runs
// through it, except the projector's round snapshot (OpenSnapshot), whose holder writes Redis
// between its reads and so cannot simply run again, and which begins through begin all the same.
// The only writes outside it are single statements holding a single lock, which cannot
// deadlock: attempt slots and idempotency keys — and risk signals, whose one statement locks
// its few rows in key order; and the impression batch, one statement whose contended locks (its
// counter rows) are taken in key order (writeImpressionBatch).
//
// It runs fn in a transaction on db with options o and commits when fn returns nil; the commit
// error is returned. When PostgreSQL aborts the transaction for a deadlock (40P01) or a
// serialization failure (40001), at any statement or at commit, nothing of it was committed: fn
// runs again in a new transaction after a random pause (so transactions aborted together do not
// collide again in step), at most txAttempts runs in all, and a transaction still aborted after
// that answers UNAVAILABLE. fn must be safe to rerun: it sets its results (never adds to what an
// earlier run left) and acts on nothing outside the transaction. After a commit o.notify, when
// set, is called; reads leave it unset.
func transact(ctx context.Context, db *sqlx.DB, o txOptions, fn func(tx *sqlx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := runTx(ctx, db, o, fn)
		if !isContention(err) {
			return err
		}
		if attempt == txAttempts {
			return errors.Join(referral.Errorf(referral.EUnavailable, "the request met too much contention; retry it"), err)
		}
		// Full jitter: uniform in [0, txBackoff·2^(attempt-1)).
		pause := time.Duration(rand.Int64N(int64(txBackoff << (attempt - 1))))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// runTx is one run of transact.
func runTx(ctx context.Context, db *sqlx.DB, o txOptions, fn func(tx *sqlx.Tx) error) error {
	tx, err := begin(ctx, db, o)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if o.notify != nil {
		o.notify()
	}
	return nil
}

// begin begins a transaction on db with options o (o.notify is the committer's business).
func begin(ctx context.Context, db *sqlx.DB, o txOptions) (*sqlx.Tx, error) {
	var opts *sql.TxOptions
	if o.readOnly || o.isolation != sql.LevelDefault {
		opts = &sql.TxOptions{Isolation: o.isolation, ReadOnly: o.readOnly}
	}
	tx, err := db.BeginTxx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return tx, nil
}

// isContention reports whether err is PostgreSQL aborting a transaction for a deadlock or a
// serialization failure, after which the transaction may simply run again.
func isContention(err error) bool {
	code := pqCode(err)
	return code == pqDeadlock || code == pqSerialization
}

// asyncCommit, joined into the FROM (or USING) list of an autocommitted statement, makes that
// statement's transaction commit without waiting for its WAL to reach the disk (synchronous_commit
// off for this transaction only; the setting is read at commit). The write is visible to every
// other transaction at once, as any commit; only a PostgreSQL crash within a fraction of a second
// can lose it. It is for writes whose loss the contract tolerates: attempt slots and risk signals.
// A durable commit costs a WAL flush (about 3 ms on the benchmark machine), which a player's
// request otherwise paid three times over besides its own transaction's.
const asyncCommit = `set_config('synchronous_commit', 'off', true) AS async_commit`

// inTx runs fn as a write of tables the read models follow: its commit signals the change
// notifier (see transact and RunNotifier).
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return transact(ctx, s.db, txOptions{notify: s.signalChange}, fn)
}

// readTx runs fn as a read-only transaction (see transact).
func (s *Store) readTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return transact(ctx, s.db, txRead, fn)
}
