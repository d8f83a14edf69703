package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// The transaction helper and the change signal, exposed to this package's external tests.

// TxWrite runs fn as a write transaction through the store's one transaction helper.
func (s *Store) TxWrite(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.inTx(ctx, fn)
}

// TakeChangeSignal reports whether a change was signalled since the last call and clears it.
func (s *Store) TakeChangeSignal() bool {
	select {
	case <-s.changed:
		return true
	default:
		return false
	}
}
