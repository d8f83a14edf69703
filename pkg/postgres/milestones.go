package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// milestoneKey is one referrer's progress in one campaign.
type milestoneKey struct {
	campaign string
	referrer string
}

// milestoneProgress is a referrer's count of successful referrals attributed to a campaign
// (capped at the largest threshold, which is all a threshold compares with) and the thresholds
// paid so far.
type milestoneProgress struct {
	count int64
	paid  map[int]bool
}

// milestonePayment is a threshold paid by an event of a batch.
type milestonePayment struct {
	key       milestoneKey
	threshold int
	referral  string
	event     string
}

// milestoneBook pays milestones (§13) inside the event engine's conversion path: when an event
// converts a referral, its referrer's count for the referral's campaign grows by one, and every
// threshold the count reached that was not yet paid pays the referrer once, in the event's
// transaction.
//
// Exactly once under concurrency: the first time a batch meets a (campaign, referrer) it takes
// that pair's transaction-scoped advisory lock and only then counts the committed successful
// referrals and reads the paid thresholds, so conversions of one referrer's referrals decide
// their milestones one transaction at a time, each seeing every earlier one committed (the
// primary key of milestone_payments backs this up). The conversions of the batch itself are
// not written yet when it counts: the book adds them as it goes.
type milestoneBook struct {
	tenant   string
	progress map[milestoneKey]*milestoneProgress
	payments []milestonePayment
}

func newMilestoneBook(tenant string) *milestoneBook {
	return &milestoneBook{tenant: tenant, progress: map[milestoneKey]*milestoneProgress{}}
}

// reach counts the conversion decision d made for event ev and returns d's rewards followed by
// the milestone rewards it earned (nothing when the referral has no referrer, or its campaign
// has no milestones or is not active). With lock unset (a dry run) the pair is not locked.
func (b *milestoneBook) reach(ctx context.Context, tx *sqlx.Tx, eng *referral.Engine, ev referral.Event, d referral.Decision, lock bool) ([]referral.Reward, error) {
	ref := d.Referral.Referral
	if ref.ReferrerID == nil || ref.CampaignID == nil {
		return d.Rewards, nil
	}
	var campaign *referral.Campaign
	for i := range eng.Campaigns {
		if eng.Campaigns[i].ID == *ref.CampaignID {
			campaign = &eng.Campaigns[i]
		}
	}
	if campaign == nil || !campaign.Active || len(campaign.Milestones) == 0 {
		return d.Rewards, nil
	}
	key := milestoneKey{campaign: campaign.ID.String(), referrer: *ref.ReferrerID}
	p := b.progress[key]
	if p == nil {
		var err error
		largest := campaign.Milestones[len(campaign.Milestones)-1].SuccessfulReferrals
		if p, err = b.load(ctx, tx, key, int64(largest), lock); err != nil {
			return nil, err
		}
		b.progress[key] = p
	}
	p.count++
	rewards := d.Rewards
	for _, m := range referral.MilestonesReached(campaign.Milestones, p.count, p.paid) {
		p.paid[m.SuccessfulReferrals] = true
		b.payments = append(b.payments, milestonePayment{key: key, threshold: m.SuccessfulReferrals,
			referral: ref.ID.String(), event: ev.EventID})
		n := m.SuccessfulReferrals
		for _, w := range referral.SumByCurrency(m.Rewards) {
			rewards = append(rewards, referral.Reward{TenantID: ev.TenantID, UserID: *ref.ReferrerID,
				Role: referral.RoleMilestone, CampaignID: campaign.ID, ReferralID: ref.ID, EventID: ev.EventID,
				CurrencyID: w.CurrencyID, Amount: w.Amount, Milestone: &n})
		}
		// milestone.reached is published with the batch's ledger rows (milestonesReached), once
		// the rewards have their ids.
	}
	return rewards, nil
}

// load locks the pair (when lock is set), then counts its committed successful referrals (up
// to limit) and reads its paid thresholds.
func (b *milestoneBook) load(ctx context.Context, tx *sqlx.Tx, key milestoneKey, limit int64, lock bool) (*milestoneProgress, error) {
	if lock {
		k := lockKey("milestone", b.tenant, key.campaign, key.referrer)
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(k, 10)+")"); err != nil {
			return nil, fmt.Errorf("lock milestones: %w", err)
		}
	}
	const q = `
		SELECT (SELECT count(*) FROM (
		            SELECT 1 FROM referrals
		            WHERE campaign_id = $1 AND referrer_id = $2 AND phoenix_successful(status) AND tenant_id = $4
		            LIMIT $3) AS c) AS count,
		       ARRAY(SELECT threshold FROM milestone_payments WHERE campaign_id = $1 AND referrer_id = $2) AS paid`
	var row struct {
		Count int64         `db:"count"`
		Paid  pq.Int64Array `db:"paid"`
	}
	if err := tx.GetContext(ctx, &row, q, key.campaign, key.referrer, limit, b.tenant); err != nil {
		return nil, fmt.Errorf("load milestone progress: %w", err)
	}
	p := &milestoneProgress{count: row.Count, paid: make(map[int]bool, len(row.Paid))}
	for _, n := range row.Paid {
		p.paid[int(n)] = true
	}
	return p, nil
}

// write records the thresholds the batch paid.
func (b *milestoneBook) write(ctx context.Context, tx *sqlx.Tx, now time.Time) error {
	if len(b.payments) == 0 {
		return nil
	}
	n := len(b.payments)
	campaigns, referrers, refs, events := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	thresholds := make([]int64, n)
	for i, p := range b.payments {
		campaigns[i], referrers[i], refs[i], events[i] = p.key.campaign, p.key.referrer, p.referral, p.event
		thresholds[i] = int64(p.threshold)
	}
	const q = `
		INSERT INTO milestone_payments (tenant_id, campaign_id, referrer_id, threshold, referral_id, event_id, created_at)
		SELECT $1, t.campaign_id, t.referrer_id, t.threshold, t.referral_id, t.event_id, $2
		FROM unnest($3::uuid[], $4::text[], $5::int[], $6::uuid[], $7::text[])
		     AS t(campaign_id, referrer_id, threshold, referral_id, event_id)`
	if _, err := tx.ExecContext(ctx, q, b.tenant, now, pq.StringArray(campaigns), pq.StringArray(referrers),
		pq.Int64Array(thresholds), pq.StringArray(refs), pq.StringArray(events)); err != nil {
		return fmt.Errorf("record milestones: %w", err)
	}
	return nil
}

// MilestoneCampaigns returns the tenant's live, active campaigns that have milestones, oldest
// first (§13). Whether each is in its window now is the caller's to ask (Campaign.ActiveAt).
func (s *Store) MilestoneCampaigns(ctx context.Context, tenant string) ([]referral.Campaign, error) {
	const q = `SELECT ` + campaignCols + ` FROM campaigns
		WHERE tenant_id = $1 AND deleted_at IS NULL AND active AND milestones <> '[]'::jsonb
		ORDER BY created_at, id`
	var out []referral.Campaign
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []storedCampaign
		if err := tx.SelectContext(ctx, &rows, q, tenant); err != nil {
			return fmt.Errorf("load milestone campaigns: %w", err)
		}
		var err error
		out, err = domainAll(rows)
		return err
	})
	return out, err
}

// PlayerMilestones returns each milestone of campaigns, in order, with when it was paid to
// referrer and the referrer's count of successful referrals attributed to its campaign (all
// time, §13), read in one snapshot.
func (s *Store) PlayerMilestones(ctx context.Context, tenant, referrer string, campaigns []referral.Campaign) ([]referral.MilestoneProgress, error) {
	const progress = `
		SELECT c.id AS campaign_id,
		       (SELECT count(*) FROM referrals r
		        WHERE r.campaign_id = c.id AND r.referrer_id = $2 AND phoenix_successful(r.status) AND r.tenant_id = $1) AS progress
		FROM unnest($3::uuid[]) AS c(id)`
	const paid = `SELECT campaign_id, threshold, created_at FROM milestone_payments
		WHERE campaign_id = ANY($3::uuid[]) AND referrer_id = $2 AND tenant_id = $1`
	out := []referral.MilestoneProgress{}
	if len(campaigns) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(campaigns))
	for _, c := range campaigns {
		ids = append(ids, c.ID.String())
	}
	type threshold struct {
		campaign string
		n        int
	}
	var (
		count   map[string]int64
		reached map[threshold]time.Time
	)
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		count, reached = map[string]int64{}, map[threshold]time.Time{}
		var counts []struct {
			CampaignID string `db:"campaign_id"`
			Progress   int64  `db:"progress"`
		}
		if err := tx.SelectContext(ctx, &counts, progress, tenant, referrer, pq.StringArray(ids)); err != nil {
			return fmt.Errorf("count milestone progress: %w", err)
		}
		var payments []struct {
			CampaignID string    `db:"campaign_id"`
			Threshold  int       `db:"threshold"`
			CreatedAt  time.Time `db:"created_at"`
		}
		if err := tx.SelectContext(ctx, &payments, paid, tenant, referrer, pq.StringArray(ids)); err != nil {
			return fmt.Errorf("load milestone payments: %w", err)
		}
		for _, c := range counts {
			count[c.CampaignID] = c.Progress
		}
		for _, p := range payments {
			reached[threshold{p.CampaignID, p.Threshold}] = p.CreatedAt.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range campaigns {
		for _, m := range c.Milestones {
			mp := referral.MilestoneProgress{CampaignID: c.ID, SuccessfulReferrals: m.SuccessfulReferrals, Progress: count[c.ID.String()]}
			if at, ok := reached[threshold{c.ID.String(), m.SuccessfulReferrals}]; ok {
				mp.ReachedAt = &at
			}
			out = append(out, mp)
		}
	}
	return out, nil
}
