package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// processEvent runs one event through the rules of SPEC §5 inside tx: it records the event,
// pays referral rewards and multi-level commissions, and returns what was paid. With dryRun it
// computes the same outcome and writes nothing. A repeated event_id yields the first outcome with
// status "duplicate".
func (s *Store) processEvent(ctx context.Context, tx *sqlx.Tx, ev referral.Event, dryRun bool) (referral.EventOutcome, error) {
	// The events engine replaces this placeholder.
	return referral.EventOutcome{EventID: ev.EventID, Status: referral.EventProcessed}, nil
}
