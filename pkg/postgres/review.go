package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// repeatOf is the answer to a repeat of an event whose first outcome is o: "duplicate" with
// that outcome, except that an event still deferred for a review answers "deferred" again
// (§12).
func repeatOf(o referral.EventOutcome) referral.EventOutcome {
	if o.Status != referral.EventDeferred {
		o.Status = referral.EventDuplicate
	}
	return o
}

// deferrals collects the events a batch deferred and the held referral each waits for.
type deferrals struct {
	events, referrals []string
}

func (d *deferrals) add(eventID string, referralID uuid.UUID) {
	d.events = append(d.events, eventID)
	d.referrals = append(d.referrals, referralID.String())
}

// write records the deferred events, in the order they were decided: that order is their
// receipt, which orders the replay of events that occurred at the same time.
func (d *deferrals) write(ctx context.Context, tx *sqlx.Tx, tenant string) error {
	if len(d.events) == 0 {
		return nil
	}
	const q = `
		INSERT INTO deferred_events (tenant_id, event_id, referral_id)
		SELECT $1, t.event_id, t.referral_id
		FROM unnest($2::text[], $3::uuid[]) WITH ORDINALITY AS t(event_id, referral_id, n)
		ORDER BY t.n`
	if _, err := tx.ExecContext(ctx, q, tenant, pq.StringArray(d.events), pq.StringArray(d.referrals)); err != nil {
		return fmt.Errorf("defer events: %w", err)
	}
	return nil
}

// deferredOriginals returns, among the tenant's event ids, those deferred for a review with the
// referral each waits for. A reversal of a deferred event is deferred with it (§12): the
// reversal path asks this for its originals and defers the reversal under the same referral
// (deferrals.add), so the review replays or drops both together.
func deferredOriginals(ctx context.Context, tx *sqlx.Tx, tenant string, eventIDs []string) (map[string]uuid.UUID, error) {
	const q = `SELECT event_id, referral_id FROM deferred_events WHERE tenant_id = $1 AND event_id = ANY($2)`
	var rows []struct {
		EventID    string    `db:"event_id"`
		ReferralID uuid.UUID `db:"referral_id"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(eventIDs)); err != nil {
		return nil, fmt.Errorf("load deferred originals: %w", err)
	}
	out := make(map[string]uuid.UUID, len(rows))
	for _, r := range rows {
		out[r.EventID] = r.ReferralID
	}
	return out, nil
}

// ReviewReferral decides a held referral (§12). Approve marks it approved and, in the same
// transaction, processes its deferred events exactly once, in (occurred_at, receipt) order,
// with their original occurred_at and the campaigns and rules in force now; reject makes it
// rejected and its deferred events earn nothing (their repeats answer "duplicate" with an empty
// outcome). The referee's user lock is taken first, as event processing does, then the
// referral's row lock: an event of the referee arriving meanwhile waits for the review, and a
// second review waits and then finds the referral no longer held. Errors: NOT_FOUND,
// INVALID_TRANSITION (not held).
func (s *Store) ReviewReferral(ctx context.Context, tenant string, id uuid.UUID, decision string, note *string) (referral.Referral, error) {
	var out referral.Referral
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		cur, err := referralByID(ctx, tx, tenant, id, false)
		if err != nil {
			return err
		}
		if err := lockUsers(ctx, tx, tenant, []string{cur.RefereeID}); err != nil {
			return err
		}
		if cur, err = referralByID(ctx, tx, tenant, id, true); err != nil {
			return err
		}
		if err := referral.CheckReview(cur); err != nil {
			return err
		}
		now := s.now()
		// The decision is published as referral.reviewed (a rejection also as
		// referral.status_changed) before the deferred events it releases pay.
		const mark = `
			UPDATE referrals SET review_state = $3, review_note = $4, reviewed_at = $5, updated_at = $5,
			    status = CASE WHEN $3 = 'rejected' THEN 'rejected' ELSE status END,
			    rejected_at = CASE WHEN $3 = 'rejected' THEN $5 ELSE rejected_at END
			WHERE tenant_id = $1 AND id = $2
			RETURNING ` + referralCols
		state := referral.ReviewApproved
		if decision == referral.DecisionReject {
			state = referral.ReviewRejected
		}
		var row storedReferral
		if err := tx.GetContext(ctx, &row, mark, tenant, id, state, note, now); err != nil {
			return fmt.Errorf("review referral: %w", err)
		}
		reviewed := apishape.NewAdminReferral(row.domain())
		msgs := []outbox.Message{{Type: outbox.ReferralReviewed, Data: reviewed}}
		if row.Status != cur.Status {
			msgs = append(msgs, outbox.Message{Type: outbox.ReferralStatusChanged, Data: reviewed})
		}
		if err := publish(ctx, tx, tenant, now, msgs...); err != nil {
			return err
		}
		evs, err := takeDeferred(ctx, tx, tenant, id, state == referral.ReviewApproved)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			// Reversals deferred with their originals (§10.1) replay as reversals.
			if err := restoreReversals(ctx, tx, tenant, evs); err != nil {
				return err
			}
			if _, err := s.processMixed(ctx, tx, tenant, evs, false); err != nil {
				return fmt.Errorf("replay deferred events: %w", err)
			}
		}
		out, err = referralByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// takeDeferred removes the deferred events of referral id and, for a replay, returns them in
// (occurred_at, receipt) order with their events rows deleted, so processing claims them
// afresh; without a replay their rows keep an empty outcome, which repeats answer as
// duplicates.
func takeDeferred(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, replay bool) ([]referral.Event, error) {
	const take = `
		WITH d AS (DELETE FROM deferred_events WHERE tenant_id = $1 AND referral_id = $2 RETURNING event_id, receipt)
		SELECT e.event_id, e.type, e.user_id, e.occurred_at, e.payload
		FROM d JOIN events e ON e.tenant_id = $1 AND e.event_id = d.event_id
		ORDER BY e.occurred_at, d.receipt`
	var rows []struct {
		EventID    string    `db:"event_id"`
		Type       string    `db:"type"`
		UserID     string    `db:"user_id"`
		OccurredAt time.Time `db:"occurred_at"`
		Payload    []byte    `db:"payload"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, take, tenant, id); err != nil {
		return nil, fmt.Errorf("take deferred events: %w", err)
	}
	ids := make([]string, 0, len(rows))
	evs := make([]referral.Event, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.EventID)
		evs = append(evs, referral.Event{TenantID: tenant, EventID: r.EventID, Type: r.Type, UserID: r.UserID,
			OccurredAt: r.OccurredAt.UTC(), Payload: r.Payload})
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if !replay {
		const settle = `UPDATE events SET outcome = $3 WHERE tenant_id = $1 AND event_id = ANY($2)`
		if _, err := tx.ExecContext(ctx, settle, tenant, pq.StringArray(ids), string(encodeOutcome(referral.EventOutcome{}))); err != nil {
			return nil, fmt.Errorf("settle deferred events: %w", err)
		}
		return nil, nil
	}
	const release = `DELETE FROM events WHERE tenant_id = $1 AND event_id = ANY($2)`
	if _, err := tx.ExecContext(ctx, release, tenant, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("release deferred events: %w", err)
	}
	return evs, nil
}
