package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// AttemptLimit is the failed code-attempt limit of SPEC §4.3: at most Max failures per Window,
// per tenant and subject (a player id or, for visitors, a client address).
type AttemptLimit struct {
	Max    int
	Window time.Duration
}

// Attempt is a code attempt holding one slot of its subject's failed-attempt limit while it runs.
// The slot counts as a failure until Settle says otherwise, so attempts running at once never
// pass the limit together; an attempt whose process dies before settling stays counted, which
// errs on the side of the limit.
type Attempt struct {
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
// cannot deadlock; it runs outside transact for that reason.
func (s *Store) ReserveAttempt(ctx context.Context, lim AttemptLimit, tenant, subject string) (Attempt, error) {
	if lim.Max <= 0 {
		return Attempt{}, nil
	}
	const q = `SELECT slot, oldest FROM reserve_code_attempt($1, $2, $3, $4, $5)`
	var row struct {
		Slot   *int64     `db:"slot"`
		Oldest *time.Time `db:"oldest"`
	}
	key := lockKey("code-attempts", tenant, subject)
	if err := s.db.GetContext(ctx, &row, q, tenant, subject, key, lim.Window.Seconds(), lim.Max); err != nil {
		return Attempt{}, fmt.Errorf("reserve attempt: %w", err)
	}
	if row.Slot != nil {
		return Attempt{store: s, id: *row.Slot}, nil
	}
	wait := time.Duration(0)
	if row.Oldest != nil {
		wait = time.Until(row.Oldest.Add(lim.Window))
	}
	return Attempt{}, &referral.Error{
		Code:       referral.ERateLimited,
		Message:    "too many failed code attempts; try again later",
		RetryAfter: max(1, int(math.Ceil(wait.Seconds()))),
	}
}

// Settle records the attempt's outcome: a failed attempt keeps its slot for the window, any
// other outcome frees it. Freeing is one single-row statement, which holds no other lock and so
// cannot deadlock either.
func (a Attempt) Settle(ctx context.Context, failed bool) error {
	if a.id == 0 || failed {
		return nil
	}
	const q = `DELETE FROM code_attempt_failures WHERE id = $1`
	if _, err := a.store.db.ExecContext(ctx, q, a.id); err != nil {
		return fmt.Errorf("free attempt: %w", err)
	}
	return nil
}
