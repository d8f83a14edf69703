package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// attempt is the referral.Attempt of ReserveAttempt: a row of code_attempt_failures. An attempt
// whose process dies before settling stays counted, which errs on the side of the limit.
type attempt struct {
	store *Store
	id    int64 // 0: nothing reserved (the limit is disabled)
}

// ReserveAttempt reserves a slot of subject's failed-attempt limit for an attempt about to run,
// or answers RATE_LIMITED with Retry-After when the failures and the attempts still running in
// the current window fill the limit. A zero Max disables the limit: the Attempt reserves
// nothing. Call Settle once the attempt's outcome is known.
//
// The reservation is one statement (reserve_code_attempt, migration 00002: the subject's
// advisory lock, the count and the insert) holding one lock, so it costs one round trip and
// cannot deadlock; it runs outside transact for that reason. It commits without waiting for
// the disk (asyncCommit): the slot counts for every other request at once.
func (s *Store) ReserveAttempt(ctx context.Context, lim referral.AttemptLimit, tenant, subject string) (referral.Attempt, error) {
	if lim.Max <= 0 {
		return attempt{}, nil
	}
	const q = `SELECT r.slot, r.oldest FROM reserve_code_attempt($1, $2, $3, $4, $5) AS r, ` + asyncCommit
	var row struct {
		Slot   *int64     `db:"slot"`
		Oldest *time.Time `db:"oldest"`
	}
	key := lockKey("code-attempts", tenant, subject)
	if err := s.db.GetContext(ctx, &row, q, tenant, subject, key, lim.Window.Seconds(), lim.Max); err != nil {
		return nil, fmt.Errorf("reserve attempt: %w", err)
	}
	if row.Slot != nil {
		return attempt{store: s, id: *row.Slot}, nil
	}
	wait := time.Duration(0)
	if row.Oldest != nil {
		wait = time.Until(row.Oldest.Add(lim.Window))
	}
	return nil, referral.RateLimited("too many failed code attempts; try again later", wait)
}

// Settle records the attempt's outcome: a failed attempt keeps its slot for the window, any
// other outcome frees it. Freeing is one single-row statement, which holds no other lock and so
// cannot deadlock either, and commits without waiting for the disk (asyncCommit; a free lost in
// a crash leaves the slot counted, on the side of the limit).
func (a attempt) Settle(ctx context.Context, failed bool) error {
	if a.id == 0 || failed {
		return nil
	}
	const q = `DELETE FROM code_attempt_failures USING ` + asyncCommit + ` WHERE id = $1`
	if _, err := a.store.db.ExecContext(ctx, q, a.id); err != nil {
		return fmt.Errorf("free attempt: %w", err)
	}
	return nil
}
