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

// CheckAttempts returns RATE_LIMITED with Retry-After when subject has used up its failures in
// the current window, else nil. A zero Max disables the limit.
func (s *Store) CheckAttempts(ctx context.Context, lim AttemptLimit, tenant, subject string) error {
	if lim.Max <= 0 {
		return nil
	}
	const q = `
		SELECT count(*), min(failed_at) FROM (
		    SELECT failed_at FROM code_attempt_failures
		    WHERE tenant_id = $1 AND subject = $2 AND failed_at > clock_timestamp() - make_interval(secs => $3)
		    ORDER BY failed_at DESC LIMIT $4) recent`
	var row struct {
		N      int        `db:"count"`
		Oldest *time.Time `db:"min"`
	}
	if err := s.db.GetContext(ctx, &row, q, tenant, subject, lim.Window.Seconds(), lim.Max); err != nil {
		return fmt.Errorf("check attempts: %w", err)
	}
	if row.N < lim.Max || row.Oldest == nil {
		return nil
	}
	wait := time.Until(row.Oldest.Add(lim.Window))
	return &referral.Error{
		Code:       referral.ERateLimited,
		Message:    "too many failed code attempts; try again later",
		RetryAfter: max(1, int(math.Ceil(wait.Seconds()))),
	}
}

// RecordFailedAttempt counts one failed code attempt of subject.
func (s *Store) RecordFailedAttempt(ctx context.Context, tenant, subject string) error {
	const q = `INSERT INTO code_attempt_failures (tenant_id, subject) VALUES ($1, $2)`
	if _, err := s.db.ExecContext(ctx, q, tenant, subject); err != nil {
		return fmt.Errorf("record failed attempt: %w", err)
	}
	return nil
}
