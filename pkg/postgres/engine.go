package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// processEvent runs one event through the rules of SPEC §5 inside tx: it records the event,
// pays referral rewards and multi-level commissions, and returns what was paid. With dryRun it
// computes the same outcome and writes nothing. A repeated event_id yields the first outcome with
// status "duplicate".
func (s *Store) processEvent(ctx context.Context, tx *sqlx.Tx, ev referral.Event, dryRun bool) (referral.EventOutcome, error) {
	outs, err := s.processEvents(ctx, tx, ev.TenantID, []referral.Event{ev}, dryRun)
	if err != nil {
		return referral.EventOutcome{}, err
	}
	return outs[0], nil
}

// processEvents runs events of one tenant, in order, through the rules of SPEC §5 inside tx and
// returns one outcome per event. The work is set-based so a batch costs a fixed number of
// statements whatever its size:
//
//  1. take the users' locks (lockUsers: an apply-code of one of them still committing is waited
//     for), lock the users' referrals and their referrers' affiliates (FOR NO KEY UPDATE, in id
//     order), then load the configuration the events need (campaigns, rules, tiers, policy) and
//     the upline;
//  2. decide the events one after another in memory (referral.Engine); a repeat of an id inside
//     the batch is a duplicate of its first occurrence;
//  3. claim the events by inserting them with their outcomes (INSERT … ON CONFLICT DO NOTHING);
//  4. write the ledger rows, qualifications, conversions and counters in bulk.
//
// Step 3 is where exactly-once is decided: the events' primary key admits one row per id, and an
// insert meeting the row of a transaction still open waits for it. Ids that were already taken
// are duplicates: the rows this attempt did claim are removed, the stored outcomes of the taken
// ids are read, and the others are decided again without them — nothing was written yet. With
// dryRun the stored ids are looked up first and nothing is locked, claimed or written; processed
// events then report "simulated".
func (s *Store) processEvents(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, dryRun bool) ([]referral.EventOutcome, error) {
	if !dryRun {
		if err := lockUsers(ctx, tx, tenant, distinctEventKeys(evs, func(e referral.Event) string { return e.UserID })); err != nil {
			return nil, err
		}
	}
	return s.decideBatch(ctx, tx, tenant, evs, dryRun, s.loadEngine)
}

// engineLoader builds the engine deciding a batch of events: Store.loadEngine, or a state the
// caller already holds.
type engineLoader func(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, lock bool) (*referral.Engine, error)

// decideBatch is processEvents once the events' users are locked (or, with dryRun, without
// locks), with the engine built by load.
func (s *Store) decideBatch(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, dryRun bool, load engineLoader) ([]referral.EventOutcome, error) {
	now := s.now()
	first := make(map[string]int, len(evs))
	var fresh []string
	for i, ev := range evs {
		if _, seen := first[ev.EventID]; !seen {
			first[ev.EventID] = i
			fresh = append(fresh, ev.EventID)
		}
	}
	stored := map[string]referral.EventOutcome{}
	if dryRun {
		var err error
		if stored, err = loadEventOutcomes(ctx, tx, tenant, fresh); err != nil {
			return nil, err
		}
	}
	for {
		outs := make([]referral.EventOutcome, len(evs))
		var decide []int
		for _, id := range fresh {
			if o, ok := stored[id]; ok {
				outs[first[id]] = repeatOf(o)
			} else {
				decide = append(decide, first[id])
			}
		}
		if len(decide) > 0 {
			taken, err := s.decideEvents(ctx, tx, tenant, evs, decide, outs, now, dryRun, load)
			if err != nil {
				return nil, err
			}
			if len(taken) > 0 {
				found, err := loadEventOutcomes(ctx, tx, tenant, taken)
				if err != nil {
					return nil, err
				}
				for _, id := range taken {
					o, ok := found[id]
					if !ok {
						return nil, fmt.Errorf("event %q: taken but not stored", id)
					}
					stored[id] = o
				}
				// Each rerun has at least one more id stored, so the loop ends.
				continue
			}
		}
		for i, ev := range evs {
			if f := first[ev.EventID]; f != i {
				outs[i] = repeatOf(outs[f])
			}
		}
		return outs, nil
	}
}

// decideEvents loads (with load) what the events at indexes decide need, decides them in order
// into outs and, unless dryRun, claims them and writes everything they cause. When some ids turn
// out to be taken already it writes nothing, undoes its claims and returns those ids.
func (s *Store) decideEvents(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event,
	decide []int, outs []referral.EventOutcome, now time.Time, dryRun bool, load engineLoader) ([]string, error) {
	batch := make([]referral.Event, len(decide))
	for k, i := range decide {
		batch[k] = evs[i]
	}
	eng, err := load(ctx, tx, tenant, batch, !dryRun)
	if err != nil {
		return nil, err
	}
	status := referral.EventProcessed
	if dryRun {
		status = referral.EventSimulated
	}
	var w ledgerWrites
	if !dryRun {
		w.trackTiers(eng)
	}
	hold := newHold(tenant)
	book := newMilestoneBook(tenant)
	for _, i := range decide {
		ev := evs[i]
		payload, err := referral.DecodePayload(ev.Payload)
		if err != nil {
			return nil, fmt.Errorf("event %q: %w", ev.EventID, err)
		}
		d := eng.Decide(ev, payload)
		if d.Converted {
			if d.Rewards, err = book.reach(ctx, tx, eng, ev, d, !dryRun); err != nil {
				return nil, err
			}
		}
		out := referral.EventOutcome{EventID: ev.EventID, Status: status,
			Rewards:     make([]referral.Reward, 0, len(d.Rewards)),
			Commissions: make([]referral.Commission, 0, len(d.Commissions))}
		for _, r := range d.Rewards {
			r.ID, r.CreatedAt = newLedgerID(), now
			out.Rewards = append(out.Rewards, r)
		}
		for _, c := range d.Commissions {
			c.ID, c.CreatedAt = newLedgerID(), now
			if err := hold.stamp(ctx, tx, &c); err != nil {
				return nil, err
			}
			out.Commissions = append(out.Commissions, c)
		}
		if d.Deferred {
			out.Status = referral.EventDeferred
		}
		outs[i] = out
		w.add(ev, d, out)
	}
	if dryRun {
		return nil, nil
	}
	claimed, err := claimEvents(ctx, tx, tenant, batch, w.outcomes, now)
	if err != nil {
		return nil, err
	}
	if len(claimed) < len(batch) {
		return releaseEvents(ctx, tx, tenant, batch, claimed)
	}
	if err := w.write(ctx, tx, tenant, now); err != nil {
		return nil, err
	}
	if err := s.publishTierChanges(ctx, tx, tenant, now, &w); err != nil {
		return nil, err
	}
	return nil, book.write(ctx, tx, now)
}

// ledgerMessages returns the reward.created and commission.created messages of ledger rows,
// one per row (negative rows included), as the ledger lists show them.
func ledgerMessages(rewards []referral.Reward, commissions []referral.Commission) []outbox.Message {
	msgs := make([]outbox.Message, 0, len(rewards)+len(commissions))
	for _, r := range rewards {
		msgs = append(msgs, outbox.Message{Type: outbox.RewardCreated, Data: apishape.NewReward(r)})
	}
	for _, c := range commissions {
		msgs = append(msgs, outbox.Message{Type: outbox.CommissionCreated, Data: apishape.NewCommission(c)})
	}
	return msgs
}

// milestonesReached returns a milestone.reached message per milestone the rewards of one event
// pay (§13): its milestone rewards grouped by campaign, referrer and threshold.
func milestonesReached(rewards []referral.Reward) []outbox.Message {
	var out []apishape.MilestoneReached
	for _, r := range rewards {
		if r.Role != referral.RoleMilestone || r.Milestone == nil {
			continue
		}
		i := slices.IndexFunc(out, func(m apishape.MilestoneReached) bool {
			return m.CampaignID == r.CampaignID && m.UserID == r.UserID && m.SuccessfulReferrals == *r.Milestone
		})
		if i < 0 {
			out = append(out, apishape.MilestoneReached{CampaignID: r.CampaignID, UserID: r.UserID,
				SuccessfulReferrals: *r.Milestone, RewardIDs: []uuid.UUID{}})
			i = len(out) - 1
		}
		out[i].RewardIDs = append(out[i].RewardIDs, r.ID)
	}
	msgs := make([]outbox.Message, len(out))
	for i, m := range out {
		msgs[i] = outbox.Message{Type: outbox.MilestoneReached, Data: m}
	}
	return msgs
}

// trackTiers records the effective tier of each of the engine's affiliates before the batch,
// so the batch can publish affiliate.tier_changed for those whose tier it moved.
func (w *ledgerWrites) trackTiers(eng *referral.Engine) {
	w.tierBefore = make(map[uuid.UUID]*uuid.UUID, len(eng.Affiliates))
	for _, a := range eng.Affiliates {
		var id *uuid.UUID
		if t := referral.EffectiveTier(eng.Tiers, a.TierOverrideID, a.ConvertedReferrals, a.RefereeRevenue); t != nil {
			id = &t.ID
		}
		w.tierBefore[a.ID] = id
	}
}

// publishTierChanges publishes affiliate.tier_changed for each affiliate the batch moved to
// another effective tier, with the affiliate as the Admin Gateway now shows it (re-read: the
// engine's counters may be capped).
func (s *Store) publishTierChanges(ctx context.Context, tx *sqlx.Tx, tenant string, now time.Time, w *ledgerWrites) error {
	var msgs []outbox.Message
	for _, a := range w.touched {
		before := w.tierBefore[a.ID]
		if equalIDs(before, a.TierID) {
			continue
		}
		cur, err := s.affiliateByID(ctx, tx, tenant, a.ID, false, "affiliate")
		if err != nil {
			return err
		}
		msgs = append(msgs, outbox.Message{Type: outbox.AffiliateTierChanged, Data: apishape.NewTierChange(cur, before)})
	}
	return publish(ctx, tx, tenant, now, msgs...)
}

// claimEvents inserts the events with their outcomes and returns the ids it inserted; an id
// already stored (or held by a transaction that then commits) is skipped. The rows travel as one
// JSON array (payloads and outcomes embedded as they are, parsed once by PostgreSQL) and are
// inserted in event_id order, so concurrent batches wait on each other in one order.
func claimEvents(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, outcomes []string, now time.Time) (map[string]bool, error) {
	var rows bytes.Buffer
	rows.WriteByte('[')
	for k, ev := range evs {
		if k > 0 {
			rows.WriteByte(',')
		}
		rows.WriteString(`{"event_id":`)
		writeJSONString(&rows, ev.EventID)
		rows.WriteString(`,"type":`)
		writeJSONString(&rows, ev.Type)
		rows.WriteString(`,"user_id":`)
		writeJSONString(&rows, ev.UserID)
		rows.WriteString(`,"occurred_at":"`)
		rows.WriteString(ev.OccurredAt.UTC().Format(time.RFC3339Nano))
		rows.WriteString(`","payload":`)
		rows.Write(payloadOrEmpty(ev.Payload))
		rows.WriteString(`,"outcome":`)
		rows.WriteString(outcomes[k])
		rows.WriteByte('}')
	}
	rows.WriteByte(']')
	const q = `
		INSERT INTO events (tenant_id, event_id, type, user_id, occurred_at, payload, outcome, created_at)
		SELECT $1, t.event_id, t.type, t.user_id, t.occurred_at, t.payload, t.outcome, $3
		FROM jsonb_to_recordset($2::jsonb)
		     AS t(event_id text, type text, user_id text, occurred_at timestamptz, payload jsonb, outcome jsonb)
		ORDER BY t.event_id
		ON CONFLICT (tenant_id, event_id) DO NOTHING
		RETURNING event_id`
	var got []string
	if err := sqlx.SelectContext(ctx, tx, &got, q, tenant, rows.String(), now); err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	claimed := make(map[string]bool, len(got))
	for _, id := range got {
		claimed[id] = true
	}
	return claimed, nil
}

// releaseEvents removes the rows claimEvents inserted for evs (the events table is not part of
// the ledger) and returns the ids it could not claim.
func releaseEvents(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, claimed map[string]bool) ([]string, error) {
	var taken, mine []string
	for _, ev := range evs {
		if claimed[ev.EventID] {
			mine = append(mine, ev.EventID)
		} else {
			taken = append(taken, ev.EventID)
		}
	}
	if len(mine) > 0 {
		const q = `DELETE FROM events WHERE tenant_id = $1 AND event_id = ANY($2)`
		if _, err := tx.ExecContext(ctx, q, tenant, pq.StringArray(mine)); err != nil {
			return nil, fmt.Errorf("release events: %w", err)
		}
	}
	return taken, nil
}

// writeJSONString appends s as a JSON string.
func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always encodes
	b.Write(enc)
}

func payloadOrEmpty(p json.RawMessage) json.RawMessage {
	if len(p) == 0 || string(p) == "null" {
		return json.RawMessage("{}")
	}
	return p
}

// newLedgerID returns a time-ordered (version 7) id, so rows written together keep their order
// under ORDER BY created_at, id.
func newLedgerID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// ledgerWrites accumulates what a batch of decisions writes.
type ledgerWrites struct {
	qualCampaigns, qualReferrals, qualEvents []string
	rewards                                  []referral.Reward
	commissions                              []referral.Commission
	converted                                map[uuid.UUID]*referral.Referral
	convertedOrder                           []uuid.UUID
	revenue                                  map[uuid.UUID]int64 // referee_revenue after the batch
	revenueOrder                             []uuid.UUID
	outcomes                                 []string                 // encoded, one per decided event
	tierBefore                               map[uuid.UUID]*uuid.UUID // effective tier before the batch
	touched                                  []*referral.Affiliate    // affiliates whose counters moved, once each
	seen                                     map[uuid.UUID]bool       // the ids in touched
	deferred                                 deferrals
	milestones                               []outbox.Message // milestone.reached, one per threshold paid
}

func (w *ledgerWrites) add(ev referral.Event, d referral.Decision, out referral.EventOutcome) {
	for _, c := range d.Qualified {
		w.qualCampaigns = append(w.qualCampaigns, c.String())
		w.qualReferrals = append(w.qualReferrals, d.Referral.Referral.ID.String())
		w.qualEvents = append(w.qualEvents, ev.EventID)
	}
	w.rewards = append(w.rewards, out.Rewards...)
	w.milestones = append(w.milestones, milestonesReached(out.Rewards)...)
	w.commissions = append(w.commissions, out.Commissions...)
	if d.Converted {
		if w.converted == nil {
			w.converted = map[uuid.UUID]*referral.Referral{}
		}
		id := d.Referral.Referral.ID
		if _, ok := w.converted[id]; !ok {
			w.convertedOrder = append(w.convertedOrder, id)
		}
		w.converted[id] = &d.Referral.Referral
	}
	if d.Affiliate != nil && w.tierBefore != nil && !w.seen[d.Affiliate.ID] {
		if w.seen == nil {
			w.seen = map[uuid.UUID]bool{}
		}
		w.seen[d.Affiliate.ID] = true
		w.touched = append(w.touched, d.Affiliate)
	}
	if d.Affiliate != nil && d.RevenueDelta > 0 {
		if w.revenue == nil {
			w.revenue = map[uuid.UUID]int64{}
		}
		id := d.Affiliate.ID
		if _, ok := w.revenue[id]; !ok {
			w.revenueOrder = append(w.revenueOrder, id)
		}
		// The affiliate is locked and the engine added the delta to the counter it loaded
		// (saturating), so its value after this event is what the row is to hold.
		w.revenue[id] = d.Affiliate.RefereeRevenue
	}
	if d.Deferred {
		w.deferred.add(ev.EventID, d.Referral.Referral.ID)
	}
	var revenueAffiliate *uuid.UUID
	if d.Affiliate != nil {
		revenueAffiliate = &d.Affiliate.ID
	}
	w.outcomes = append(w.outcomes, string(encodeOutcomeWith(out, revenueAffiliate, d.RevenueDelta)))
}

// write stores the accumulated rows, a fixed number of statements for the whole batch.
func (w *ledgerWrites) write(ctx context.Context, tx *sqlx.Tx, tenant string, now time.Time) error {
	if n := len(w.qualCampaigns); n > 0 {
		// Referral rows are locked, so no other transaction can qualify these pairs meanwhile:
		// a conflict here means an invariant broke, and the whole batch is refused.
		const q = `
			INSERT INTO campaign_qualifications (tenant_id, campaign_id, referral_id, event_id, created_at)
			SELECT $1, t.campaign_id, t.referral_id, t.event_id, $2
			FROM unnest($3::uuid[], $4::uuid[], $5::text[]) AS t(campaign_id, referral_id, event_id)
			ON CONFLICT DO NOTHING`
		res, err := tx.ExecContext(ctx, q, tenant, now, pq.StringArray(w.qualCampaigns),
			pq.StringArray(w.qualReferrals), pq.StringArray(w.qualEvents))
		if err != nil {
			return fmt.Errorf("record qualifications: %w", err)
		}
		if got, err := res.RowsAffected(); err != nil || got != int64(n) {
			return fmt.Errorf("record qualifications: %d of %d recorded (%v)", got, n, err)
		}
	}
	if err := insertRewards(ctx, tx, tenant, w.rewards); err != nil {
		return err
	}
	if err := w.deferred.write(ctx, tx, tenant); err != nil {
		return err
	}
	if err := insertCommissions(ctx, tx, tenant, w.commissions); err != nil {
		return err
	}
	msgs := ledgerMessages(w.rewards, w.commissions)
	msgs = append(msgs, w.milestones...)
	if len(w.convertedOrder) > 0 {
		ids := make([]string, 0, len(w.convertedOrder))
		campaigns := make([]string, 0, len(w.convertedOrder))
		ats := make([]string, 0, len(w.convertedOrder))
		for _, id := range w.convertedOrder {
			r := w.converted[id]
			ids = append(ids, id.String())
			campaign := ""
			if r.CampaignID != nil {
				campaign = r.CampaignID.String()
			}
			campaigns = append(campaigns, campaign)
			ats = append(ats, r.ConvertedAt.UTC().Format(time.RFC3339Nano))
		}
		const q = `
			UPDATE referrals r
			SET status = 'converted', converted_at = t.converted_at,
			    campaign_id = COALESCE(r.campaign_id, NULLIF(t.campaign_id, '')::uuid), updated_at = $2
			FROM unnest($3::uuid[], $4::text[], $5::timestamptz[]) AS t(id, campaign_id, converted_at)
			WHERE r.id = t.id AND r.tenant_id = $1 AND r.status = 'pending'
			RETURNING r.id, r.tenant_id, r.code_id, r.code, r.campaign_id, r.referrer_id, r.referee_id, r.status,
			    r.reason, r.metadata, r.created_at, r.updated_at, r.converted_at, r.verified_at, r.rejected_at`
		var rows []storedReferral
		err := tx.SelectContext(ctx, &rows, q, tenant, now, pq.StringArray(ids), pq.StringArray(campaigns), pq.StringArray(ats))
		if err != nil {
			return fmt.Errorf("convert referrals: %w", err)
		}
		for _, r := range rows {
			msgs = append(msgs, outbox.Message{Type: outbox.ReferralConverted, Data: apishape.NewAdminReferral(r.domain())})
		}
	}
	if len(w.revenueOrder) > 0 {
		ids := make([]string, 0, len(w.revenueOrder))
		revenues := make([]int64, 0, len(w.revenueOrder))
		for _, id := range w.revenueOrder {
			ids = append(ids, id.String())
			revenues = append(revenues, w.revenue[id])
		}
		const q = `
			UPDATE affiliates a
			SET referee_revenue = t.revenue
			FROM unnest($2::uuid[], $3::bigint[]) AS t(id, revenue)
			WHERE a.id = t.id AND a.tenant_id = $1`
		if _, err := tx.ExecContext(ctx, q, tenant, pq.StringArray(ids), pq.Int64Array(revenues)); err != nil {
			return fmt.Errorf("update affiliate revenue: %w", err)
		}
	}
	return publish(ctx, tx, tenant, now, msgs...)
}

func insertRewards(ctx context.Context, tx *sqlx.Tx, tenant string, rs []referral.Reward) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	ids, users, roles := make([]string, n), make([]string, n), make([]string, n)
	campaigns, referrals, events := make([]string, n), make([]string, n), make([]string, n)
	currencies, amounts, reverses := make([]string, n), make([]int64, n), make([]string, n)
	milestones := make([]int64, n) // 0: not a milestone reward
	for i, r := range rs {
		if r.ReversesID != nil {
			reverses[i] = r.ReversesID.String()
		}
		ids[i], users[i], roles[i] = r.ID.String(), r.UserID, r.Role
		campaigns[i], referrals[i] = r.CampaignID.String(), r.ReferralID.String()
		events[i], currencies[i], amounts[i] = r.EventID, r.CurrencyID, r.Amount
		if r.Milestone != nil {
			milestones[i] = int64(*r.Milestone)
		}
	}
	const q = `
		INSERT INTO rewards (id, tenant_id, user_id, role, campaign_id, referral_id, event_id, currency_id, amount, milestone, created_at, reverses_id)
		SELECT t.id, $1, t.user_id, t.role, t.campaign_id, t.referral_id, t.event_id, t.currency_id, t.amount, NULLIF(t.milestone, 0), $2,
		       NULLIF(t.reverses_id, '')::uuid
		FROM unnest($3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::bigint[], $11::int[], $12::text[])
		     AS t(id, user_id, role, campaign_id, referral_id, event_id, currency_id, amount, milestone, reverses_id)`
	_, err := tx.ExecContext(ctx, q, tenant, rs[0].CreatedAt, pq.StringArray(ids), pq.StringArray(users),
		pq.StringArray(roles), pq.StringArray(campaigns), pq.StringArray(referrals), pq.StringArray(events),
		pq.StringArray(currencies), pq.Int64Array(amounts), pq.Int64Array(milestones), pq.StringArray(reverses))
	if err != nil {
		return fmt.Errorf("insert rewards: %w", err)
	}
	return nil
}

func insertCommissions(ctx context.Context, tx *sqlx.Tx, tenant string, cs []referral.Commission) error {
	if len(cs) == 0 {
		return nil
	}
	n := len(cs)
	ids, affs, users, levels := make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	sources, events, rules, tiers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rates, bases, amounts, currencies := make([]string, n), make([]int64, n), make([]int64, n), make([]string, n)
	reverses, reasons, availables := make([]string, n), make([]*string, n), make([]string, n)
	for i, c := range cs {
		if c.ReversesID != nil {
			reverses[i] = c.ReversesID.String()
		}
		reasons[i], availables[i] = c.Reason, c.AvailableAt.UTC().Format(time.RFC3339Nano)
		ids[i], affs[i], users[i], levels[i] = c.ID.String(), c.AffiliateID.String(), c.UserID, int64(c.Level)
		sources[i], events[i], rules[i] = c.SourceUserID, c.EventID, c.RuleID.String()
		if c.TierID != nil {
			tiers[i] = c.TierID.String()
		}
		rates[i], bases[i], amounts[i], currencies[i] = c.Rate.String(), c.BaseAmount, c.Amount, c.CurrencyID
	}
	const q = `
		INSERT INTO commissions (id, tenant_id, affiliate_id, user_id, level, source_user_id, event_id,
		    rule_id, tier_id, rate, base_amount, amount, currency_id, created_at, reverses_id, reason, available_at)
		SELECT t.id, $1, t.affiliate_id, t.user_id, t.level, t.source_user_id, t.event_id, t.rule_id,
		       NULLIF(t.tier_id, '')::uuid, t.rate, t.base_amount, t.amount, t.currency_id, $2,
		       NULLIF(t.reverses_id, '')::uuid, t.reason, t.available_at
		FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[], $9::uuid[],
		            $10::text[], $11::numeric[], $12::bigint[], $13::bigint[], $14::text[], $15::text[],
		            $16::text[], $17::timestamptz[])
		     AS t(id, affiliate_id, user_id, level, source_user_id, event_id, rule_id, tier_id, rate,
		          base_amount, amount, currency_id, reverses_id, reason, available_at)`
	_, err := tx.ExecContext(ctx, q, tenant, cs[0].CreatedAt, pq.StringArray(ids), pq.StringArray(affs),
		pq.StringArray(users), pq.Int64Array(levels), pq.StringArray(sources), pq.StringArray(events),
		pq.StringArray(rules), pq.StringArray(tiers), pq.StringArray(rates), pq.Int64Array(bases),
		pq.Int64Array(amounts), pq.StringArray(currencies), pq.StringArray(reverses), pq.Array(reasons),
		pq.StringArray(availables))
	if err != nil {
		return fmt.Errorf("insert commissions: %w", err)
	}
	return nil
}

// loadEngine builds the engine for a batch of events: the events' users' referrals (locked FOR
// NO KEY UPDATE when lock is set: one referee's events are decided one transaction at a time),
// the campaigns and rules of the batch's event types, and for referrers that are affiliates their
// counters (locked too), the tier ladder, the policy and the upline.
func (s *Store) loadEngine(ctx context.Context, tx *sqlx.Tx, tenant string, evs []referral.Event, lock bool) (*referral.Engine, error) {
	eng := &referral.Engine{Referrals: map[string]*referral.ReferralState{},
		Affiliates: map[string]*referral.Affiliate{}, Upline: map[uuid.UUID]*referral.Affiliate{}}
	users, types := distinctEventKeys(evs, func(e referral.Event) string { return e.UserID }), distinctEventKeys(evs, func(e referral.Event) string { return e.Type })
	refs, err := loadEventReferrals(ctx, tx, tenant, users, lock)
	if err != nil || len(refs) == 0 {
		return eng, err
	}
	var referrers []string
	seen := map[string]bool{}
	refIDs := make([]string, 0, len(refs))
	for _, rs := range refs {
		eng.Referrals[rs.Referral.RefereeID] = rs
		refIDs = append(refIDs, rs.Referral.ID.String())
		if r := rs.Referral.ReferrerID; r != nil && rs.Referral.Status != referral.StatusRejected && !seen[*r] {
			seen[*r] = true
			referrers = append(referrers, *r)
		}
	}
	// Each step below is skipped when nothing it loads could matter: no campaign → no
	// qualifications; no referrer or no rule → no affiliate state (no commissions, and a revenue
	// delta of zero).
	if eng.Campaigns, err = loadEventCampaigns(ctx, tx, tenant, types); err != nil {
		return nil, err
	}
	if len(eng.Campaigns) > 0 {
		campaignIDs := make([]string, len(eng.Campaigns))
		for i, c := range eng.Campaigns {
			campaignIDs[i] = c.ID.String()
		}
		if err := loadEventQualifications(ctx, tx, campaignIDs, refIDs, eng.Referrals); err != nil {
			return nil, err
		}
	}
	if len(referrers) == 0 {
		return eng, nil
	}
	if eng.Rules, err = loadEventRules(ctx, tx, tenant, types); err != nil || len(eng.Rules) == 0 {
		return eng, err
	}
	affs, err := loadEventAffiliates(ctx, tx, tenant, referrers, lock)
	if err != nil || len(affs) == 0 {
		return eng, err
	}
	affUsers := make([]string, 0, len(affs))
	for _, a := range affs {
		eng.Affiliates[a.UserID] = a
		affUsers = append(affUsers, a.UserID)
	}
	if eng.Tiers, err = loadTiers(ctx, tx, tenant); err != nil {
		return nil, err
	}
	// converted_referrals only matters through the tiers' min_referrals thresholds, so counting
	// stops at the largest one: the tier choice is the same, and a big affiliate costs no more.
	var enough int64
	for _, t := range eng.Tiers {
		enough = max(enough, t.MinReferrals)
	}
	if enough > 0 {
		counts, err := countEventConversions(ctx, tx, tenant, affUsers, enough)
		if err != nil {
			return nil, err
		}
		for _, a := range affs {
			a.ConvertedReferrals = counts[a.UserID]
		}
	}
	if eng.Policy, err = loadEventPolicy(ctx, tx, tenant); err != nil {
		return nil, err
	}
	var upline []string
	seenUp := map[uuid.UUID]bool{}
	for _, a := range affs {
		for _, sh := range referral.UplineShares(eng.Policy, a.Ancestors) {
			if !seenUp[sh.AffiliateID] {
				seenUp[sh.AffiliateID] = true
				upline = append(upline, sh.AffiliateID.String())
			}
		}
	}
	if len(upline) > 0 {
		if eng.Upline, err = loadEventUpline(ctx, tx, tenant, upline); err != nil {
			return nil, err
		}
	}
	return eng, nil
}

func distinctEventKeys(evs []referral.Event, key func(referral.Event) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range evs {
		if k := key(e); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// eventReferralRow is a referral with its code's bound campaign.
type eventReferralRow struct {
	storedReferral
	BoundCampaign *uuid.UUID `db:"bound_campaign_id"`
}

func loadEventReferrals(ctx context.Context, tx *sqlx.Tx, tenant string, users []string, lock bool) ([]*referral.ReferralState, error) {
	q := `
		SELECT ` + referralCols + `,
		       (SELECT c.campaign_id FROM referral_codes c WHERE c.id = r.code_id) AS bound_campaign_id
		FROM referrals r
		WHERE r.tenant_id = $1 AND r.referee_id = ANY($2)
		ORDER BY r.id`
	if lock {
		q += ` FOR NO KEY UPDATE OF r`
	}
	var rows []eventReferralRow
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("load referrals: %w", err)
	}
	out := make([]*referral.ReferralState, 0, len(rows))
	for _, r := range rows {
		out = append(out, &referral.ReferralState{
			Referral:      r.domain(),
			BoundCampaign: r.BoundCampaign,
			Qualified:     map[uuid.UUID]bool{},
		})
	}
	return out, nil
}

// loadEventQualifications marks, in into, which of the campaigns already paid which of the
// referrals. Both lists bound the lookup, so it is a walk of the primary key.
func loadEventQualifications(ctx context.Context, tx *sqlx.Tx, campaignIDs, referralIDs []string, into map[string]*referral.ReferralState) error {
	const q = `SELECT referral_id, campaign_id FROM campaign_qualifications
		WHERE campaign_id = ANY($1::uuid[]) AND referral_id = ANY($2::uuid[])`
	var rows []struct {
		ReferralID uuid.UUID `db:"referral_id"`
		CampaignID uuid.UUID `db:"campaign_id"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, q, pq.StringArray(campaignIDs), pq.StringArray(referralIDs)); err != nil {
		return fmt.Errorf("load qualifications: %w", err)
	}
	byID := make(map[uuid.UUID]*referral.ReferralState, len(into))
	for _, rs := range into {
		byID[rs.Referral.ID] = rs
	}
	for _, r := range rows {
		if rs := byID[r.ReferralID]; rs != nil {
			rs.Qualified[r.CampaignID] = true
		}
	}
	return nil
}

// loadEventCampaigns returns the tenant's live campaigns qualifying on one of types, oldest
// first: the order in which "the first campaign that qualifies" is found.
func loadEventCampaigns(ctx context.Context, tx *sqlx.Tx, tenant string, types []string) ([]referral.Campaign, error) {
	const q = `SELECT ` + campaignCols + ` FROM campaigns
		WHERE tenant_id = $1 AND deleted_at IS NULL AND qualifying_event = ANY($2)
		ORDER BY created_at, id`
	var rows []storedCampaign
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(types)); err != nil {
		return nil, fmt.Errorf("load campaigns: %w", err)
	}
	return domainAll(rows)
}

// loadEventAffiliates returns the live affiliates of users, locked FOR NO KEY UPDATE (in id order)
// when lock is set so their counters move one transaction at a time. ConvertedReferrals is left
// 0: countEventConversions counts only as far as the tiers need.
func loadEventAffiliates(ctx context.Context, tx *sqlx.Tx, tenant string, users []string, lock bool) ([]*referral.Affiliate, error) {
	q := `SELECT ` + affiliateCols + ` FROM affiliates a
		WHERE a.tenant_id = $1 AND a.user_id = ANY($2) AND a.deleted_at IS NULL
		ORDER BY a.id`
	if lock {
		q += ` FOR NO KEY UPDATE`
	}
	var rows []storedAffiliate
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("load affiliates: %w", err)
	}
	out := make([]*referral.Affiliate, 0, len(rows))
	for _, r := range rows {
		a, err := r.domain(nil)
		if err != nil {
			return nil, err
		}
		out = append(out, &a)
	}
	return out, nil
}

// loadEventUpline returns the live affiliates among ids (deleted ones are left out: they earn
// nothing).
func loadEventUpline(ctx context.Context, tx *sqlx.Tx, tenant string, ids []string) (map[uuid.UUID]*referral.Affiliate, error) {
	const q = `SELECT ` + affiliateCols + ` FROM affiliates a
		WHERE a.tenant_id = $1 AND a.id = ANY($2::uuid[]) AND a.deleted_at IS NULL`
	var rows []storedAffiliate
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("load upline: %w", err)
	}
	out := make(map[uuid.UUID]*referral.Affiliate, len(rows))
	for _, r := range rows {
		a, err := r.domain(nil)
		if err != nil {
			return nil, err
		}
		out[a.ID] = &a
	}
	return out, nil
}

// countEventConversions counts, per referrer user, the referrals that count towards tiers
// (converted or verified; §5.4), stopping at limit.
func countEventConversions(ctx context.Context, tx *sqlx.Tx, tenant string, users []string, limit int64) (map[string]int64, error) {
	const q = `
		SELECT u.user_id AS referrer_id,
		       (SELECT count(*) FROM (
		            SELECT 1 FROM referrals r
		            WHERE r.tenant_id = $1 AND r.referrer_id = u.user_id AND phoenix_successful(r.status)
		            LIMIT $3) AS c) AS n
		FROM unnest($2::text[]) AS u(user_id)`
	var rows []struct {
		ReferrerID string `db:"referrer_id"`
		N          int64  `db:"n"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(users), limit); err != nil {
		return nil, fmt.Errorf("count conversions: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.ReferrerID] = r.N
	}
	return out, nil
}

// loadEventRules returns the tenant's live, active commission rules for types, oldest first.
func loadEventRules(ctx context.Context, tx *sqlx.Tx, tenant string, types []string) ([]referral.CommissionRule, error) {
	const q = `SELECT ` + commissionRuleCols + ` FROM commission_rules
		WHERE tenant_id = $1 AND deleted_at IS NULL AND active AND event_type = ANY($2)
		ORDER BY created_at, id`
	var rows []storedCommissionRule
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(types)); err != nil {
		return nil, fmt.Errorf("load commission rules: %w", err)
	}
	return domainAll(rows)
}

// loadEventPolicy returns the tenant's hierarchy policy, nil when none was set.
func loadEventPolicy(ctx context.Context, tx *sqlx.Tx, tenant string) (*referral.HierarchyPolicy, error) {
	const q = `SELECT ` + policyCols + ` FROM hierarchy_policies WHERE tenant_id = $1`
	var row storedPolicy
	if err := sqlx.GetContext(ctx, tx, &row, q, tenant); err != nil {
		if isNoRows(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("load hierarchy policy: %w", err)
	}
	p, err := row.domain()
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// loadEventOutcomes returns the stored outcomes of events by id.
func loadEventOutcomes(ctx context.Context, tx *sqlx.Tx, tenant string, ids []string) (map[string]referral.EventOutcome, error) {
	const q = `SELECT event_id, outcome FROM events WHERE tenant_id = $1 AND event_id = ANY($2)`
	var rows []struct {
		EventID string `db:"event_id"`
		Outcome []byte `db:"outcome"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, q, tenant, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("load event outcomes: %w", err)
	}
	out := make(map[string]referral.EventOutcome, len(rows))
	for _, r := range rows {
		o, err := decodeOutcome(tenant, r.EventID, r.Outcome)
		if err != nil {
			return nil, fmt.Errorf("event %q: %w", r.EventID, err)
		}
		out[r.EventID] = o
	}
	return out, nil
}

// storedOutcome is the outcome of an event as kept in events.outcome, replayed to duplicates.
type storedOutcome struct {
	Rewards     []storedReward     `json:"rewards"`
	Commissions []storedCommission `json:"commissions"`
	// Deferred marks an event of a held referral (§12): its repeats answer "deferred" until
	// the review replaces the row.
	Deferred bool `json:"deferred,omitempty"`
	// Revenue is what the event added to the referee_revenue of RevenueAffiliate, which a
	// reversal takes back (§10.1); never answered.
	RevenueAffiliate *uuid.UUID `json:"revenue_affiliate_id,omitempty"`
	Revenue          int64      `json:"revenue,omitempty"`
}

type storedReward struct {
	ID         uuid.UUID  `json:"id"`
	UserID     string     `json:"user_id"`
	Role       string     `json:"role"`
	CampaignID uuid.UUID  `json:"campaign_id"`
	ReferralID uuid.UUID  `json:"referral_id"`
	CurrencyID string     `json:"currency_id"`
	Amount     int64      `json:"amount"`
	Milestone  *int       `json:"milestone,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ReversesID *uuid.UUID `json:"reverses_id,omitempty"`
}

type storedCommission struct {
	ID           uuid.UUID  `json:"id"`
	AffiliateID  uuid.UUID  `json:"affiliate_id"`
	UserID       string     `json:"user_id"`
	Level        int        `json:"level"`
	SourceUserID string     `json:"source_user_id"`
	RuleID       uuid.UUID  `json:"rule_id"`
	TierID       *uuid.UUID `json:"tier_id"`
	Rate         string     `json:"rate"`
	BaseAmount   int64      `json:"base_amount"`
	Amount       int64      `json:"amount"`
	CurrencyID   string     `json:"currency_id"`
	CreatedAt    time.Time  `json:"created_at"`
	ReversesID   *uuid.UUID `json:"reverses_id,omitempty"`
	AvailableAt  *time.Time `json:"available_at,omitempty"`
	State        string     `json:"state,omitempty"`
}

func encodeOutcome(o referral.EventOutcome) []byte {
	return encodeOutcomeWith(o, nil, 0)
}

// encodeOutcomeWith is encodeOutcome recording that the event added revenue to the
// referee_revenue of affiliate (nil: nothing).
func encodeOutcomeWith(o referral.EventOutcome, affiliate *uuid.UUID, revenue int64) []byte {
	doc := storedOutcome{Rewards: make([]storedReward, 0, len(o.Rewards)), Commissions: make([]storedCommission, 0, len(o.Commissions)),
		Deferred: o.Status == referral.EventDeferred}
	if affiliate != nil && revenue > 0 {
		doc.RevenueAffiliate, doc.Revenue = affiliate, revenue
	}
	for _, r := range o.Rewards {
		doc.Rewards = append(doc.Rewards, storedReward{ID: r.ID, UserID: r.UserID, Role: r.Role,
			CampaignID: r.CampaignID, ReferralID: r.ReferralID, CurrencyID: r.CurrencyID, Amount: r.Amount,
			Milestone: r.Milestone, CreatedAt: r.CreatedAt, ReversesID: r.ReversesID})
	}
	for _, c := range o.Commissions {
		at := c.AvailableAt
		doc.Commissions = append(doc.Commissions, storedCommission{ID: c.ID, AffiliateID: c.AffiliateID,
			UserID: c.UserID, Level: c.Level, SourceUserID: c.SourceUserID, RuleID: c.RuleID, TierID: c.TierID,
			Rate: c.Rate.String(), BaseAmount: c.BaseAmount, Amount: c.Amount, CurrencyID: c.CurrencyID,
			CreatedAt: c.CreatedAt, ReversesID: c.ReversesID, AvailableAt: &at, State: c.State})
	}
	b, _ := json.Marshal(doc) // plain strings, numbers and ids: cannot fail
	return b
}

func decodeOutcome(tenant, eventID string, raw []byte) (referral.EventOutcome, error) {
	var doc storedOutcome
	if err := json.Unmarshal(raw, &doc); err != nil {
		return referral.EventOutcome{}, fmt.Errorf("decode stored outcome: %w", err)
	}
	o := referral.EventOutcome{EventID: eventID, Rewards: make([]referral.Reward, 0, len(doc.Rewards)), Commissions: make([]referral.Commission, 0, len(doc.Commissions))}
	if doc.Deferred {
		o.Status = referral.EventDeferred
	}
	for _, r := range doc.Rewards {
		o.Rewards = append(o.Rewards, referral.Reward{ID: r.ID, TenantID: tenant, EventID: eventID, UserID: r.UserID, Role: r.Role,
			CampaignID: r.CampaignID, ReferralID: r.ReferralID, CurrencyID: r.CurrencyID, Amount: r.Amount,
			Milestone: r.Milestone, CreatedAt: r.CreatedAt.UTC(), ReversesID: r.ReversesID})
	}
	for _, c := range doc.Commissions {
		rate, err := referral.ParseRate(c.Rate)
		if err != nil {
			return referral.EventOutcome{}, fmt.Errorf("decode stored outcome: rate %q: %w", c.Rate, err)
		}
		// Outcomes stored before holds existed: the row was available when written.
		available, state := c.CreatedAt.UTC(), c.State
		if c.AvailableAt != nil {
			available = c.AvailableAt.UTC()
		}
		if state == "" {
			state = referral.CommissionAvailable
		}
		o.Commissions = append(o.Commissions, referral.Commission{ID: c.ID, TenantID: tenant, EventID: eventID,
			AffiliateID: c.AffiliateID, UserID: c.UserID, Level: c.Level, SourceUserID: c.SourceUserID,
			RuleID: c.RuleID, TierID: c.TierID, Rate: rate, BaseAmount: c.BaseAmount, Amount: c.Amount, CurrencyID: c.CurrencyID,
			CreatedAt: c.CreatedAt.UTC(), ReversesID: c.ReversesID, AvailableAt: available, State: state})
	}
	return o, nil
}
