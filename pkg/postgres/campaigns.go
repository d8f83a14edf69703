package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// storedCampaign is a campaigns row. Rewards are stored as the API's rewards object
// ({"wallet": [{"currency_id", "amount"}]}) and the filter as written, both reparsed on load.
type storedCampaign struct {
	ID               uuid.UUID  `db:"id"`
	TenantID         string     `db:"tenant_id"`
	Name             string     `db:"name"`
	QualifyingEvent  string     `db:"qualifying_event"`
	QualifyingFilter []byte     `db:"qualifying_filter"`
	ReferrerRewards  []byte     `db:"referrer_rewards"`
	RefereeRewards   []byte     `db:"referee_rewards"`
	Active           bool       `db:"active"`
	StartsAt         *time.Time `db:"starts_at"`
	EndsAt           *time.Time `db:"ends_at"`
	Clawback         bool       `db:"clawback"`
	Milestones       []byte     `db:"milestones"`
	CreatedAt        time.Time  `db:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
}

const campaignCols = `id, tenant_id, name, qualifying_event, qualifying_filter, referrer_rewards,
	referee_rewards, active, starts_at, ends_at, milestones, created_at, updated_at, clawback`

// storedWallets is the stored form of a campaign's rewards object.
type storedWallets struct {
	Wallet []storedWallet `json:"wallet"`
}

type storedWallet struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// encodeWallets returns a rewards document as a JSON string (a string parameter: []byte
// parameters travel as binary data, which jsonb does not read).
func encodeWallets(ws []referral.Wallet) (string, error) {
	doc := storedWallets{Wallet: make([]storedWallet, 0, len(ws))}
	for _, w := range ws {
		doc.Wallet = append(doc.Wallet, storedWallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("encode rewards: %w", err)
	}
	return string(b), nil
}

func decodeWallets(raw []byte) ([]referral.Wallet, error) {
	var doc storedWallets
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode stored rewards: %w", err)
	}
	out := make([]referral.Wallet, 0, len(doc.Wallet))
	for _, w := range doc.Wallet {
		out = append(out, referral.Wallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	return out, nil
}

// storedMilestone is one element of a campaign's stored milestones.
type storedMilestone struct {
	SuccessfulReferrals int           `json:"successful_referrals"`
	Rewards             storedWallets `json:"rewards"`
}

// encodeMilestones returns a campaign's milestones as a JSON string.
func encodeMilestones(ms []referral.Milestone) (string, error) {
	doc := make([]storedMilestone, 0, len(ms))
	for _, m := range ms {
		sm := storedMilestone{SuccessfulReferrals: m.SuccessfulReferrals, Rewards: storedWallets{Wallet: make([]storedWallet, 0, len(m.Rewards))}}
		for _, w := range m.Rewards {
			sm.Rewards.Wallet = append(sm.Rewards.Wallet, storedWallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
		}
		doc = append(doc, sm)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("encode milestones: %w", err)
	}
	return string(b), nil
}

func decodeMilestones(raw []byte) ([]referral.Milestone, error) {
	var doc []storedMilestone
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	out := make([]referral.Milestone, 0, len(doc))
	for _, m := range doc {
		ws := make([]referral.Wallet, 0, len(m.Rewards.Wallet))
		for _, w := range m.Rewards.Wallet {
			ws = append(ws, referral.Wallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
		}
		out = append(out, referral.Milestone{SuccessfulReferrals: m.SuccessfulReferrals, Rewards: ws})
	}
	return out, nil
}

func (r storedCampaign) domain() (referral.Campaign, error) {
	filter, err := referral.ParseFilter("qualifying_filter", r.QualifyingFilter)
	if err != nil {
		return referral.Campaign{}, fmt.Errorf("stored filter of campaign %s: %w", r.ID, err)
	}
	referrer, err := decodeWallets(r.ReferrerRewards)
	if err != nil {
		return referral.Campaign{}, err
	}
	referee, err := decodeWallets(r.RefereeRewards)
	if err != nil {
		return referral.Campaign{}, err
	}
	milestones, err := decodeMilestones(r.Milestones)
	if err != nil {
		return referral.Campaign{}, fmt.Errorf("stored milestones of campaign %s: %w", r.ID, err)
	}
	return referral.Campaign{
		ID: r.ID, TenantID: r.TenantID, Name: r.Name, QualifyingEvent: r.QualifyingEvent,
		QualifyingFilter: filter, ReferrerRewards: referrer, RefereeRewards: referee,
		Active: r.Active, StartsAt: utcTimePtr(r.StartsAt), EndsAt: utcTimePtr(r.EndsAt), Clawback: r.Clawback,
		Milestones: milestones, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// campaignArgs returns the JSON columns of c: the filter (nil, SQL NULL, for none) and both
// rewards.
func campaignArgs(c referral.Campaign) (filter any, referrer, referee string, err error) {
	if c.QualifyingFilter != nil {
		b, err := c.QualifyingFilter.MarshalJSON()
		if err != nil {
			return nil, "", "", fmt.Errorf("encode filter: %w", err)
		}
		// A string parameter, so that no filter stays SQL NULL rather than an empty value.
		filter = string(b)
	}
	if referrer, err = encodeWallets(c.ReferrerRewards); err != nil {
		return nil, "", "", err
	}
	if referee, err = encodeWallets(c.RefereeRewards); err != nil {
		return nil, "", "", err
	}
	return filter, referrer, referee, nil
}

// CreateCampaign stores a new campaign built from c (its id and timestamps are assigned) and
// returns it as stored.
func (s *Store) CreateCampaign(ctx context.Context, c referral.Campaign) (referral.Campaign, error) {
	const q = `
		INSERT INTO campaigns (id, tenant_id, name, qualifying_event, qualifying_filter,
		    referrer_rewards, referee_rewards, active, starts_at, ends_at, created_at, updated_at, milestones, clawback)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)
		RETURNING ` + campaignCols
	filter, referrer, referee, err := campaignArgs(c)
	if err != nil {
		return referral.Campaign{}, err
	}
	milestones, err := encodeMilestones(c.Milestones)
	if err != nil {
		return referral.Campaign{}, err
	}
	var out referral.Campaign
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedCampaign
		if err := tx.GetContext(ctx, &row, q, uuid.New(), c.TenantID, c.Name, c.QualifyingEvent,
			filter, referrer, referee, c.Active, c.StartsAt, c.EndsAt, s.now(), milestones, c.Clawback); err != nil {
			return fmt.Errorf("insert campaign: %w", err)
		}
		out, err = row.domain()
		return err
	})
	return out, err
}

// GetCampaign returns a campaign of the tenant. Errors: NOT_FOUND.
func (s *Store) GetCampaign(ctx context.Context, tenant string, id uuid.UUID) (referral.Campaign, error) {
	var out referral.Campaign
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = campaignByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// campaignByID loads a live campaign, locking it FOR UPDATE when lock is set.
func campaignByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool) (referral.Campaign, error) {
	q := `SELECT ` + campaignCols + ` FROM campaigns WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	if lock {
		q += ` FOR UPDATE`
	}
	return getRow[storedCampaign, referral.Campaign](ctx, tx, "campaign", q, tenant, id)
}

// liveCampaignExists reports whether a live campaign id belongs to the tenant.
func liveCampaignExists(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM campaigns WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL)`
	var ok bool
	if err := tx.GetContext(ctx, &ok, q, tenant, id); err != nil {
		return false, fmt.Errorf("check campaign: %w", err)
	}
	return ok, nil
}

// ListCampaigns returns a page of the tenant's campaigns, newest first, and the total count.
func (s *Store) ListCampaigns(ctx context.Context, tenant string, f referral.CampaignFilter) ([]referral.Campaign, int, error) {
	const where = ` FROM campaigns WHERE tenant_id = $1 AND deleted_at IS NULL AND ($2::boolean IS NULL OR active = $2)`
	const q = `SELECT ` + campaignCols + where + ` ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`
	const count = `SELECT count(*)` + where
	var (
		out   []referral.Campaign
		total int
	)
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []storedCampaign
		if err := tx.SelectContext(ctx, &rows, q, tenant, f.Active, f.Limit, f.Offset); err != nil {
			return fmt.Errorf("list campaigns: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, tenant, f.Active); err != nil {
			return fmt.Errorf("count campaigns: %w", err)
		}
		var err error
		out, err = domainAll(rows)
		return err
	})
	return out, total, err
}

// ReplaceCampaign overwrites every writable field of the campaign c.ID with c's and returns it.
// Errors: NOT_FOUND.
func (s *Store) ReplaceCampaign(ctx context.Context, c referral.Campaign) (referral.Campaign, error) {
	const q = `
		UPDATE campaigns SET name = $3, qualifying_event = $4, qualifying_filter = $5,
		    referrer_rewards = $6, referee_rewards = $7, active = $8, starts_at = $9, ends_at = $10,
		    updated_at = $11, milestones = $12, clawback = $13
		WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
		RETURNING ` + campaignCols
	filter, referrer, referee, err := campaignArgs(c)
	if err != nil {
		return referral.Campaign{}, err
	}
	milestones, err := encodeMilestones(c.Milestones)
	if err != nil {
		return referral.Campaign{}, err
	}
	var out referral.Campaign
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedCampaign
		if err := tx.GetContext(ctx, &row, q, c.TenantID, c.ID, c.Name, c.QualifyingEvent,
			filter, referrer, referee, c.Active, c.StartsAt, c.EndsAt, s.now(), milestones, c.Clawback); err != nil {
			if isNoRows(err) {
				return referral.NotFound("campaign")
			}
			return fmt.Errorf("replace campaign: %w", err)
		}
		out, err = row.domain()
		return err
	})
	return out, err
}

// DeleteCampaign hides a campaign from every read. Codes bound to it and referrals and ledger
// rows that name it keep pointing at it. Errors: NOT_FOUND.
func (s *Store) DeleteCampaign(ctx context.Context, tenant string, id uuid.UUID) error {
	const q = `UPDATE campaigns SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, q, tenant, id, s.now())
		if err != nil {
			return fmt.Errorf("delete campaign: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete campaign: %w", err)
		} else if n == 0 {
			return referral.NotFound("campaign")
		}
		return nil
	})
}

// utcTimePtr returns t in UTC (nil stays nil).
func utcTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
