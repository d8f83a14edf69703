package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

var _ referral.ReversalService = (*Store)(nil)

// processMixed runs events of one tenant in order inside tx, reversals (§10.1) among them: each
// run of ordinary events goes through processEvents as one set, each reversal through
// processReversal, so every event sees what the ones before it wrote. All the batch's users are
// locked first, in one order, so batches that share users do not deadlock between segments.
// A reversal refused for its input is answered as a rejected outcome, and the others go on.
func (s *Store) processMixed(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, dryRun bool) ([]referral.EventOutcome, error) {
	if !slices.ContainsFunc(evs, func(ev referral.Event) bool { return ev.Reverses != "" }) {
		return s.processEvents(ctx, tx, tenant, evs, dryRun)
	}
	if !dryRun {
		if err := lockUsers(ctx, tx, tenant, distinctEventKeys(evs, func(e referral.Event) string { return e.UserID })); err != nil {
			return nil, err
		}
	}
	outs := make([]referral.EventOutcome, 0, len(evs))
	for start := 0; start < len(evs); {
		if evs[start].Reverses != "" {
			o, err := s.processReversal(ctx, tx, evs[start], dryRun)
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
			start++
			continue
		}
		end := start
		for end < len(evs) && evs[end].Reverses == "" {
			end++
		}
		seg, err := s.processEvents(ctx, tx, tenant, evs[start:end], dryRun)
		if err != nil {
			return nil, err
		}
		outs = append(outs, seg...)
		start = end
	}
	return outs, nil
}

// processReversal runs reversal event ev inside tx (the user already locked unless dryRun):
// a used event_id is a duplicate; then the original is loaded with its rows (locked, in id
// order), the domain plans the reversal (referral.PlanReversal) and the negative rows, the
// reversal record and the lower referee_revenue are written. An input the contract refuses
// (NOT_FOUND, VALIDATION_FAILED, NOT_REVERSIBLE) is returned as a rejected outcome, having
// written nothing.
func (s *Store) processReversal(ctx context.Context, tx *sqlx.Tx, ev referral.Event, dryRun bool) (referral.EventOutcome, error) {
	tenant, now := ev.TenantID, s.now()
	stored, err := loadEventOutcomes(ctx, tx, tenant, []string{ev.EventID})
	if err != nil {
		return referral.EventOutcome{}, err
	}
	if o, ok := stored[ev.EventID]; ok {
		return repeatOf(o), nil
	}
	state, err := loadReversal(ctx, tx, ev, !dryRun)
	var plan referral.ReversalPlan
	if err == nil {
		held, herr := deferredOriginals(ctx, tx, tenant, []string{ev.Reverses})
		if herr != nil {
			return referral.EventOutcome{}, herr
		}
		if ref, ok := held[ev.Reverses]; ok {
			return s.deferReversal(ctx, tx, ev, ref, now, dryRun)
		}
		plan, err = referral.PlanReversal(ev, state)
	}
	if de := refusal(err); de != nil {
		return referral.EventOutcome{EventID: ev.EventID, Status: referral.EventRejected, Err: de}, nil
	} else if err != nil {
		return referral.EventOutcome{}, err
	}
	status := referral.EventProcessed
	if dryRun {
		status = referral.EventSimulated
	}
	out := referral.EventOutcome{EventID: ev.EventID, Status: status,
		Rewards: make([]referral.Reward, 0, len(plan.Rewards)), Commissions: make([]referral.Commission, 0, len(plan.Commissions))}
	for _, r := range plan.Rewards {
		r.ID, r.CreatedAt = newLedgerID(), now
		out.Rewards = append(out.Rewards, r)
	}
	for _, c := range plan.Commissions {
		c.ID, c.CreatedAt = newLedgerID(), now
		c.AvailableAt = referral.AvailableAt(now, 0, c.Amount)
		c.State = referral.CommissionState(c.AvailableAt, "", now)
		out.Commissions = append(out.Commissions, c)
	}
	if dryRun {
		return out, nil
	}
	claimed, err := claimEvents(ctx, tx, tenant, []referral.Event{ev}, []string{string(encodeOutcome(out))}, now)
	if err != nil {
		return referral.EventOutcome{}, err
	}
	if !claimed[ev.EventID] {
		// Another transaction used the id meanwhile (under another user): its outcome answers.
		found, err := loadEventOutcomes(ctx, tx, tenant, []string{ev.EventID})
		if err != nil {
			return referral.EventOutcome{}, err
		}
		o, ok := found[ev.EventID]
		if !ok {
			return referral.EventOutcome{}, fmt.Errorf("event %q: taken but not stored", ev.EventID)
		}
		return repeatOf(o), nil
	}
	const record = `INSERT INTO event_reversals (tenant_id, event_id, reverses_event_id, amount, created_at)
		VALUES ($1, $2, $3, $4, $5)`
	if _, err := tx.ExecContext(ctx, record, tenant, ev.EventID, ev.Reverses, plan.Amount, now); err != nil {
		return referral.EventOutcome{}, fmt.Errorf("record reversal: %w", err)
	}
	if err := insertRewards(ctx, tx, tenant, out.Rewards); err != nil {
		return referral.EventOutcome{}, err
	}
	if err := insertCommissions(ctx, tx, tenant, out.Commissions); err != nil {
		return referral.EventOutcome{}, err
	}
	// The negative rows are published like any ledger row.
	if err := publish(ctx, tx, tenant, now, ledgerMessages(out.Rewards, out.Commissions)...); err != nil {
		return referral.EventOutcome{}, err
	}
	if plan.Affiliate != nil {
		const q = `UPDATE affiliates SET referee_revenue = GREATEST(referee_revenue - $3, 0)
			WHERE tenant_id = $1 AND id = $2`
		if _, err := tx.ExecContext(ctx, q, tenant, *plan.Affiliate, plan.RevenueDrop); err != nil {
			return referral.EventOutcome{}, fmt.Errorf("lower affiliate revenue: %w", err)
		}
	}
	return out, nil
}

// deferReversal records reversal ev of an original deferred for held referral ref (§12): the
// reversal is deferred with it, what it reverses kept beside it, and the review replays both in
// order (restoreReversals) or drops both.
func (s *Store) deferReversal(ctx context.Context, tx *sqlx.Tx, ev referral.Event, ref uuid.UUID, now time.Time, dryRun bool) (referral.EventOutcome, error) {
	out := referral.EventOutcome{EventID: ev.EventID, Status: referral.EventDeferred,
		Rewards: []referral.Reward{}, Commissions: []referral.Commission{}}
	if dryRun {
		return out, nil
	}
	claimed, err := claimEvents(ctx, tx, ev.TenantID, []referral.Event{ev}, []string{string(encodeOutcome(out))}, now)
	if err != nil {
		return referral.EventOutcome{}, err
	}
	if !claimed[ev.EventID] {
		found, err := loadEventOutcomes(ctx, tx, ev.TenantID, []string{ev.EventID})
		if err != nil {
			return referral.EventOutcome{}, err
		}
		return repeatOf(found[ev.EventID]), nil
	}
	const q = `INSERT INTO deferred_reversals (tenant_id, event_id, reverses_event_id, reverse_amount) VALUES ($1, $2, $3, $4)`
	if _, err := tx.ExecContext(ctx, q, ev.TenantID, ev.EventID, ev.Reverses, ev.ReverseAmount); err != nil {
		return referral.EventOutcome{}, fmt.Errorf("defer reversal: %w", err)
	}
	var d deferrals
	d.add(ev.EventID, ref)
	if err := d.write(ctx, tx, ev.TenantID); err != nil {
		return referral.EventOutcome{}, err
	}
	return out, nil
}

// restoreReversals gives the deferred events a review replays back what the deferred
// reversals among them reverse, and forgets it: processMixed then runs them as reversals.
func restoreReversals(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event) error {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID
	}
	const q = `DELETE FROM deferred_reversals WHERE tenant_id = $1 AND event_id = ANY($2)
		RETURNING event_id, reverses_event_id, reverse_amount`
	var rows []struct {
		EventID  string `db:"event_id"`
		Reverses string `db:"reverses_event_id"`
		Amount   *int64 `db:"reverse_amount"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(ids)); err != nil {
		return fmt.Errorf("restore deferred reversals: %w", err)
	}
	byID := make(map[string]int, len(evs))
	for i, ev := range evs {
		byID[ev.EventID] = i
	}
	for _, r := range rows {
		ev := &evs[byID[r.EventID]]
		ev.Reverses, ev.ReverseAmount = r.Reverses, r.Amount
	}
	return nil
}

// refusal returns err as the domain error a batch item is rejected with, or nil when err is
// nil or not a refusal of the input.
func refusal(err error) *referral.Error {
	var de *referral.Error
	if !errors.As(err, &de) {
		return nil
	}
	switch de.Code {
	case referral.ENotFound, referral.EValidation, referral.ENotReversible:
		return de
	}
	return nil
}

// loadReversal loads what reversal ev acts on: the original event (NOT_FOUND when the tenant
// has no such processed event; VALIDATION_FAILED when it is itself a reversal or belongs to
// another user), its positive commission rows (locked FOR NO KEY UPDATE in id order when lock
// is set, so per-row reversals of the same rows wait) with their nets, the rewards a clawback
// takes back, what earlier reversals took and what it added to referee_revenue.
func loadReversal(ctx context.Context, tx *sqlx.Tx, ev referral.Event, lock bool) (*referral.ReversalState, error) {
	tenant := ev.TenantID
	var orig struct {
		UserID     string `db:"user_id"`
		Outcome    []byte `db:"outcome"`
		IsReversal bool   `db:"is_reversal"`
	}
	const q = `SELECT e.user_id, e.outcome,
		       EXISTS (SELECT 1 FROM event_reversals r WHERE r.tenant_id = e.tenant_id AND r.event_id = e.event_id) AS is_reversal
		FROM events e WHERE e.tenant_id = $1 AND e.event_id = $2`
	if err := tx.GetContext(ctx, &orig, q, tenant, ev.Reverses); err != nil {
		if isNoRows(err) {
			return nil, referral.NotFound("event to reverse")
		}
		return nil, fmt.Errorf("load reversed event: %w", err)
	}
	if orig.IsReversal {
		return nil, referral.Invalid("reverses", "names a reversal, which cannot be reversed")
	}
	if orig.UserID != ev.UserID {
		return nil, referral.Invalid("user_id", "must be the user of the reversed event")
	}
	var doc storedOutcome
	if err := json.Unmarshal(orig.Outcome, &doc); err != nil {
		return nil, fmt.Errorf("event %q: decode stored outcome: %w", ev.Reverses, err)
	}
	st := &referral.ReversalState{Net: map[uuid.UUID]int64{}, Revenue: doc.Revenue, RevenueAffiliate: doc.RevenueAffiliate}

	rows := `SELECT ` + commissionCols + ` FROM commissions
		WHERE tenant_id = $1 AND event_id = $2 AND reverses_id IS NULL ORDER BY id`
	if lock {
		rows += ` FOR NO KEY UPDATE`
	}
	var cs []ledgerCommissionRow
	if err := tx.SelectContext(ctx, &cs, rows, tenant, ev.Reverses); err != nil {
		return nil, fmt.Errorf("load reversed commissions: %w", err)
	}
	var err error
	if st.Commissions, err = domainAll(cs); err != nil {
		return nil, err
	}
	if len(st.Commissions) > 0 {
		ids := make([]uuid.UUID, len(st.Commissions))
		for i, c := range st.Commissions {
			ids[i] = c.ID
			st.Net[c.ID] = c.Amount
		}
		var nets []struct {
			ID  uuid.UUID `db:"reverses_id"`
			Sum int64     `db:"sum"`
		}
		const q = `SELECT reverses_id, sum(amount)::bigint AS sum FROM commissions
			WHERE reverses_id = ANY($1::uuid[]) GROUP BY reverses_id`
		if err := tx.SelectContext(ctx, &nets, q, uuidArray(ids)); err != nil {
			return nil, fmt.Errorf("load reversed nets: %w", err)
		}
		for _, n := range nets {
			st.Net[n.ID] += n.Sum
		}
		if st.RevenueAffiliate == nil {
			// An outcome stored before reversals existed: the level-0 row names the affiliate
			// whose revenue the event moved, by B.
			for _, c := range st.Commissions {
				if c.Level == 0 {
					id := c.AffiliateID
					st.RevenueAffiliate, st.Revenue = &id, st.Base()
					break
				}
			}
		}
	}
	var prior struct {
		N   int   `db:"n"`
		Sum int64 `db:"sum"`
	}
	const q2 = `SELECT count(*) AS n, COALESCE(sum(amount), 0)::bigint AS sum FROM event_reversals
		WHERE tenant_id = $1 AND reverses_event_id = $2`
	if err := tx.GetContext(ctx, &prior, q2, tenant, ev.Reverses); err != nil {
		return nil, fmt.Errorf("load earlier reversals: %w", err)
	}
	st.Reversals, st.Reversed = prior.N, prior.Sum

	// Rewards of clawback campaigns, milestone rewards excepted, not clawed back yet.
	const q3 = `SELECT ` + rewardCols + ` FROM rewards r
		WHERE r.tenant_id = $1 AND r.event_id = $2 AND r.reverses_id IS NULL AND r.role = ANY($3)
		  AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = r.campaign_id AND c.clawback)
		  AND NOT EXISTS (SELECT 1 FROM rewards x WHERE x.reverses_id = r.id)
		ORDER BY r.created_at, r.id`
	var rs []ledgerRewardRow
	if err := tx.SelectContext(ctx, &rs, q3, tenant, ev.Reverses, pq.StringArray{referral.RoleReferrer, referral.RoleReferee}); err != nil {
		return nil, fmt.Errorf("load clawback rewards: %w", err)
	}
	for _, r := range rs {
		st.Rewards = append(st.Rewards, r.domain())
	}
	return st, nil
}

// ReverseCommission reverses commission row id of the tenant in full with reason, in one
// transaction: the row is locked, its net read, the domain plans the negative row
// (referral.PlanRowReversal). The reversal does not count toward an event's reversed base.
// Errors: NOT_FOUND, NOT_REVERSIBLE.
func (s *Store) ReverseCommission(ctx context.Context, tenant string, id uuid.UUID, reason *string) (referral.Commission, error) {
	var out referral.Commission
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		q := `SELECT ` + commissionCols + ` FROM commissions WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE`
		row, err := getRow[ledgerCommissionRow, referral.Commission](ctx, tx, "commission", q, tenant, id)
		if err != nil {
			return err
		}
		var net int64
		const qn = `SELECT $2::bigint + COALESCE(sum(amount), 0)::bigint FROM commissions WHERE reverses_id = $1`
		if err := tx.GetContext(ctx, &net, qn, id, row.Amount); err != nil {
			return fmt.Errorf("load commission net: %w", err)
		}
		rev, err := referral.PlanRowReversal(row, net, reason)
		if err != nil {
			return err
		}
		now := s.now()
		rev.ID, rev.CreatedAt = newLedgerID(), now
		rev.AvailableAt = referral.AvailableAt(now, 0, rev.Amount)
		rev.State = referral.CommissionState(rev.AvailableAt, "", now)
		if err := insertCommissions(ctx, tx, tenant, []referral.Commission{rev}); err != nil {
			return err
		}
		if err := publish(ctx, tx, tenant, now, ledgerMessages(nil, []referral.Commission{rev})...); err != nil {
			return err
		}
		out = rev
		return nil
	})
	if err != nil {
		return referral.Commission{}, translate("reverse commission", err)
	}
	return out, nil
}
