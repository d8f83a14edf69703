package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// ProcessEvent runs one validated event (referral.CheckEvent) through the rules of SPEC §5 in
// one transaction and returns what it paid, or for a repeated event_id the first outcome with
// status "duplicate".
func (s *Store) ProcessEvent(ctx context.Context, ev referral.Event) (referral.EventOutcome, error) {
	outs, err := s.ProcessBatch(ctx, ev.TenantID, []referral.Event{ev})
	if err != nil {
		return referral.EventOutcome{}, err
	}
	return outs[0], nil
}

// ProcessBatch runs validated events of tenant, in order, in one transaction and returns one
// outcome per event. The batch commits as a whole: every event in it is all or nothing, and the
// events are decided exactly as if posted one after another (a repeat of an id inside the batch
// is a duplicate of its first occurrence).
func (s *Store) ProcessBatch(ctx context.Context, tenant string, evs []referral.Event) ([]referral.EventOutcome, error) {
	if len(evs) == 0 {
		return []referral.EventOutcome{}, nil
	}
	var outs []referral.EventOutcome
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		outs, err = s.processMixed(ctx, tx, tenant, evs, false)
		return err
	})
	if err != nil {
		return nil, translate("process events", err)
	}
	return outs, nil
}

// Simulate answers what ProcessEvent would for ev, with status "simulated", writing nothing: its
// event_id stays unused. An event_id already used answers as ProcessEvent would, "duplicate" with
// the first outcome.
func (s *Store) Simulate(ctx context.Context, ev referral.Event) (referral.EventOutcome, error) {
	var out referral.EventOutcome
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		outs, err := s.processMixed(ctx, tx, ev.TenantID, []referral.Event{ev}, true)
		if err != nil {
			return err
		}
		out = outs[0]
		return nil
	})
	if err != nil {
		return referral.EventOutcome{}, translate("simulate event", err)
	}
	return out, nil
}

// ledgerRewardRow is a rewards row.
type ledgerRewardRow struct {
	ID         uuid.UUID  `db:"id"`
	TenantID   string     `db:"tenant_id"`
	UserID     string     `db:"user_id"`
	Role       string     `db:"role"`
	CampaignID uuid.UUID  `db:"campaign_id"`
	ReferralID uuid.UUID  `db:"referral_id"`
	EventID    string     `db:"event_id"`
	CurrencyID string     `db:"currency_id"`
	Amount     int64      `db:"amount"`
	Milestone  *int       `db:"milestone"`
	CreatedAt  time.Time  `db:"created_at"`
	ReversesID *uuid.UUID `db:"reverses_id"`
}

const rewardCols = `id, tenant_id, user_id, role, campaign_id, referral_id, event_id, currency_id, amount, milestone, created_at, reverses_id`

func (r ledgerRewardRow) domain() referral.Reward {
	return referral.Reward{ID: r.ID, TenantID: r.TenantID, UserID: r.UserID, Role: r.Role,
		CampaignID: r.CampaignID, ReferralID: r.ReferralID, EventID: r.EventID, CurrencyID: r.CurrencyID,
		Amount: r.Amount, Milestone: r.Milestone, CreatedAt: r.CreatedAt.UTC(), ReversesID: r.ReversesID}
}

// ListRewards returns a page of the tenant's reward ledger and the number of rows matching f.
// Rows are ordered by (created_at, id), newest first unless f.Ascending.
func (s *Store) ListRewards(ctx context.Context, tenant string, f referral.RewardLedgerFilter) ([]referral.Reward, int, error) {
	w := ledgerWhere{}
	w.add("tenant_id = %s", tenant)
	if f.UserID != nil {
		w.add("user_id = %s", *f.UserID)
	}
	if f.CampaignID != nil {
		w.add("campaign_id = %s", *f.CampaignID)
	}
	if f.ReferralID != nil {
		w.add("referral_id = %s", *f.ReferralID)
	}
	if f.EventID != nil {
		w.add("event_id = %s", *f.EventID)
	}
	var rows []ledgerRewardRow
	var total int
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		if err := sqlx.GetContext(ctx, tx, &total, `SELECT count(*) FROM rewards WHERE `+w.sql(), w.args...); err != nil {
			return fmt.Errorf("count rewards: %w", err)
		}
		q := `SELECT ` + rewardCols + ` FROM rewards WHERE ` + w.sql() + ledgerOrder(f.Ascending) + w.page(f.Limit, f.Offset)
		if err := sqlx.SelectContext(ctx, tx, &rows, q, w.args...); err != nil {
			return fmt.Errorf("list rewards: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]referral.Reward, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.domain())
	}
	return out, total, nil
}

// ledgerCommissionRow is a commissions row; the rate is read as exact text.
type ledgerCommissionRow struct {
	ID           uuid.UUID  `db:"id"`
	TenantID     string     `db:"tenant_id"`
	AffiliateID  uuid.UUID  `db:"affiliate_id"`
	UserID       string     `db:"user_id"`
	Level        int        `db:"level"`
	SourceUserID string     `db:"source_user_id"`
	EventID      string     `db:"event_id"`
	RuleID       uuid.UUID  `db:"rule_id"`
	TierID       *uuid.UUID `db:"tier_id"`
	Rate         string     `db:"rate"`
	BaseAmount   int64      `db:"base_amount"`
	Amount       int64      `db:"amount"`
	CurrencyID   string     `db:"currency_id"`
	CreatedAt    time.Time  `db:"created_at"`
	ReversesID   *uuid.UUID `db:"reverses_id"`
	Reason       *string    `db:"reason"`
	AvailableAt  time.Time  `db:"available_at"`
}

const commissionCols = `id, tenant_id, affiliate_id, user_id, level, source_user_id, event_id, rule_id, tier_id,
	rate::text AS rate, base_amount, amount, currency_id, created_at, reverses_id, reason, available_at`

func (r ledgerCommissionRow) domain() (referral.Commission, error) {
	rate, err := referral.ParseRate(r.Rate)
	if err != nil {
		return referral.Commission{}, fmt.Errorf("commission %s: stored rate %q: %w", r.ID, r.Rate, err)
	}
	return referral.Commission{ID: r.ID, TenantID: r.TenantID, AffiliateID: r.AffiliateID,
		UserID: r.UserID, Level: r.Level, SourceUserID: r.SourceUserID, EventID: r.EventID, RuleID: r.RuleID,
		TierID: r.TierID, Rate: rate, BaseAmount: r.BaseAmount, Amount: r.Amount, CurrencyID: r.CurrencyID,
		CreatedAt: r.CreatedAt.UTC(), ReversesID: r.ReversesID, Reason: r.Reason, AvailableAt: r.AvailableAt.UTC()}, nil
}

// ListCommissions returns a page of the tenant's commission ledger and the number of rows
// matching f. Rows are ordered by (created_at, id), newest first unless f.Ascending.
func (s *Store) ListCommissions(ctx context.Context, tenant string, f referral.CommissionLedgerFilter) ([]referral.Commission, int, error) {
	w := ledgerWhere{}
	w.add("tenant_id = %s", tenant)
	if f.AffiliateID != nil {
		w.add("affiliate_id = %s", *f.AffiliateID)
	}
	if f.EventID != nil {
		w.add("event_id = %s", *f.EventID)
	}
	if f.Level != nil {
		w.add("level = %s", *f.Level)
	}
	now := s.now()
	if f.PayoutID != nil {
		// Every row the payout covers, also once a failed payout released them: they are among
		// its affiliate's commissions in its currency.
		w.add(`id IN (SELECT pr.commission_id FROM payouts p
			JOIN commissions c ON c.tenant_id = p.tenant_id AND c.currency_id = p.currency_id AND c.affiliate_id = p.affiliate_id
			JOIN payout_rows pr ON pr.commission_id = c.id AND pr.payout_id = p.id
			WHERE p.id = %s)`, *f.PayoutID)
	}
	if f.State != nil {
		w.add("phoenix_commission_state(available_at, payout_status, %s::timestamptz) = %s", now, *f.State)
	}
	var rows []stateCommissionRow
	var total int
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		if err := sqlx.GetContext(ctx, tx, &total, `SELECT count(*) FROM `+commissionStates+` WHERE `+w.sql(), w.args...); err != nil {
			return fmt.Errorf("count commissions: %w", err)
		}
		q := `SELECT ` + commissionCols + `, payout_status FROM ` + commissionStates + ` WHERE ` + w.sql() +
			ledgerOrder(f.Ascending) + w.page(f.Limit, f.Offset)
		if err := sqlx.SelectContext(ctx, tx, &rows, q, w.args...); err != nil {
			return fmt.Errorf("list commissions: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]referral.Commission, 0, len(rows))
	for _, r := range rows {
		c, err := r.at(now)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, nil
}

// ledgerOrder is the ORDER BY of a ledger read: only these two clauses exist.
func ledgerOrder(ascending bool) string {
	if ascending {
		return ` ORDER BY created_at, id`
	}
	return ` ORDER BY created_at DESC, id DESC`
}

// ledgerWhere builds a conjunction of fixed conditions with numbered parameters.
type ledgerWhere struct {
	conds []string
	args  []any
}

// add appends cond, whose %s are replaced by the next parameter placeholders, bound to args.
func (w *ledgerWhere) add(cond string, args ...any) {
	marks := make([]any, len(args))
	for i, a := range args {
		w.args = append(w.args, a)
		marks[i] = "$" + strconv.Itoa(len(w.args))
	}
	w.conds = append(w.conds, fmt.Sprintf(cond, marks...))
}

func (w *ledgerWhere) sql() string { return strings.Join(w.conds, " AND ") }

// page returns the LIMIT/OFFSET clause; both are validated integers, formatted, not bound.
func (w *ledgerWhere) page(limit, offset int) string {
	if limit <= 0 {
		limit = 50
	}
	return " LIMIT " + strconv.Itoa(limit) + " OFFSET " + strconv.Itoa(max(offset, 0))
}
