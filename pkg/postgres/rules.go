package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// storedCommissionRule is a commission_rules row; the rate is read as text to stay exact.
type storedCommissionRule struct {
	ID              uuid.UUID `db:"id"`
	TenantID        string    `db:"tenant_id"`
	Name            string    `db:"name"`
	EventType       string    `db:"event_type"`
	EventFilter     []byte    `db:"event_filter"`
	CommissionField string    `db:"commission_field"`
	UseTierRate     bool      `db:"use_tier_rate"`
	CustomRate      *string   `db:"custom_rate"`
	CurrencyID      string    `db:"currency_id"`
	Active          bool      `db:"active"`
	CreatedAt       time.Time `db:"created_at"`
	UpdatedAt       time.Time `db:"updated_at"`
}

const commissionRuleCols = `id, tenant_id, name, event_type, event_filter, commission_field,
	use_tier_rate, custom_rate::text AS custom_rate, currency_id, active, created_at, updated_at`

func (r storedCommissionRule) domain() (referral.CommissionRule, error) {
	filter, err := referral.ParseFilter("event_filter", r.EventFilter)
	if err != nil {
		return referral.CommissionRule{}, fmt.Errorf("rule %s: stored filter: %w", r.ID, err)
	}
	var rate *referral.Rate
	if r.CustomRate != nil {
		v, err := referral.ParseRate(*r.CustomRate)
		if err != nil {
			return referral.CommissionRule{}, fmt.Errorf("rule %s: stored rate %q: %w", r.ID, *r.CustomRate, err)
		}
		rate = &v
	}
	return referral.CommissionRule{ID: r.ID, TenantID: r.TenantID, Name: r.Name, EventType: r.EventType,
		EventFilter: filter, CommissionField: r.CommissionField, UseTierRate: r.UseTierRate,
		CustomRate: rate, CurrencyID: r.CurrencyID, Active: r.Active,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// commissionRuleArgs returns the stored forms of a rule's filter and custom rate.
func commissionRuleArgs(r referral.CommissionRule) (filter, rate any, err error) {
	if r.EventFilter != nil {
		b, err := r.EventFilter.MarshalJSON()
		if err != nil {
			return nil, nil, fmt.Errorf("encode filter: %w", err)
		}
		filter = string(b)
	}
	if r.CustomRate != nil {
		rate = r.CustomRate.String()
	}
	return filter, rate, nil
}

// CreateCommissionRule stores a new rule built from r (its id and timestamps are assigned) and
// returns it as stored.
func (s *Store) CreateCommissionRule(ctx context.Context, r referral.CommissionRule) (referral.CommissionRule, error) {
	const q = `
		INSERT INTO commission_rules (id, tenant_id, name, event_type, event_filter, commission_field,
		    use_tier_rate, custom_rate, currency_id, active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
		RETURNING ` + commissionRuleCols
	filter, rate, err := commissionRuleArgs(r)
	if err != nil {
		return referral.CommissionRule{}, err
	}
	var out referral.CommissionRule
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedCommissionRule
		if err := tx.GetContext(ctx, &row, q, uuid.New(), r.TenantID, r.Name, r.EventType, filter,
			r.CommissionField, r.UseTierRate, rate, r.CurrencyID, r.Active, s.now()); err != nil {
			return fmt.Errorf("insert commission rule: %w", err)
		}
		out, err = row.domain()
		return err
	})
	return out, err
}

// GetCommissionRule returns a live rule of the tenant. Errors: NOT_FOUND.
func (s *Store) GetCommissionRule(ctx context.Context, tenant string, id uuid.UUID) (referral.CommissionRule, error) {
	const q = `SELECT ` + commissionRuleCols + ` FROM commission_rules WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	return getRow[storedCommissionRule, referral.CommissionRule](ctx, s.db, "commission rule", q, tenant, id)
}

// ListCommissionRules returns a page of the tenant's rules, newest first, and the total count.
func (s *Store) ListCommissionRules(ctx context.Context, tenant string, f referral.CommissionRuleFilter) ([]referral.CommissionRule, int, error) {
	const where = ` FROM commission_rules WHERE tenant_id = $1 AND deleted_at IS NULL
		AND ($2::boolean IS NULL OR active = $2) AND ($3::text IS NULL OR event_type = $3)`
	const q = `SELECT ` + commissionRuleCols + where + ` ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5`
	const count = `SELECT count(*)` + where
	var (
		out   []referral.CommissionRule
		total int
	)
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []storedCommissionRule
		if err := tx.SelectContext(ctx, &rows, q, tenant, f.Active, f.EventType, f.Limit, f.Offset); err != nil {
			return fmt.Errorf("list commission rules: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, tenant, f.Active, f.EventType); err != nil {
			return fmt.Errorf("count commission rules: %w", err)
		}
		var err error
		out, err = domainAll(rows)
		return err
	})
	return out, total, err
}

// ReplaceCommissionRule overwrites every writable field of rule r.ID with r's and returns it.
// Errors: NOT_FOUND.
func (s *Store) ReplaceCommissionRule(ctx context.Context, r referral.CommissionRule) (referral.CommissionRule, error) {
	const q = `
		UPDATE commission_rules SET name = $3, event_type = $4, event_filter = $5,
		    commission_field = $6, use_tier_rate = $7, custom_rate = $8, currency_id = $9,
		    active = $10, updated_at = $11
		WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
		RETURNING ` + commissionRuleCols
	filter, rate, err := commissionRuleArgs(r)
	if err != nil {
		return referral.CommissionRule{}, err
	}
	var out referral.CommissionRule
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedCommissionRule
		if err := tx.GetContext(ctx, &row, q, r.TenantID, r.ID, r.Name, r.EventType, filter,
			r.CommissionField, r.UseTierRate, rate, r.CurrencyID, r.Active, s.now()); err != nil {
			if isNoRows(err) {
				return referral.NotFound("commission rule")
			}
			return fmt.Errorf("replace commission rule: %w", err)
		}
		out, err = row.domain()
		return err
	})
	return out, err
}

// DeleteCommissionRule hides a rule from every read; commission rows that name it keep naming
// it. Errors: NOT_FOUND.
func (s *Store) DeleteCommissionRule(ctx context.Context, tenant string, id uuid.UUID) error {
	const q = `UPDATE commission_rules SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, q, tenant, id, s.now())
		if err != nil {
			return fmt.Errorf("delete commission rule: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete commission rule: %w", err)
		} else if n == 0 {
			return referral.NotFound("commission rule")
		}
		return nil
	})
}
