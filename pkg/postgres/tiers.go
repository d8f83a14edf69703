package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// storedTier is an affiliate_tiers row. The rate is read as text so it comes back exactly.
type storedTier struct {
	ID                uuid.UUID `db:"id"`
	TenantID          string    `db:"tenant_id"`
	Name              string    `db:"name"`
	CommissionRate    string    `db:"commission_rate"`
	MinReferrals      int64     `db:"min_referrals"`
	MinRefereeRevenue int64     `db:"min_referee_revenue"`
	Priority          int       `db:"priority"`
	CreatedAt         time.Time `db:"created_at"`
	UpdatedAt         time.Time `db:"updated_at"`
}

const tierCols = `id, tenant_id, name, commission_rate::text AS commission_rate, min_referrals,
	min_referee_revenue, priority, created_at, updated_at`

// tierOrder is the ladder's order: the preference order of referral.EffectiveTier.
const tierOrder = ` ORDER BY priority DESC, commission_rate DESC, created_at, id`

func (r storedTier) domain() (referral.Tier, error) {
	rate, err := referral.ParseRate(r.CommissionRate)
	if err != nil {
		return referral.Tier{}, fmt.Errorf("tier %s: stored rate %q: %w", r.ID, r.CommissionRate, err)
	}
	return referral.Tier{ID: r.ID, TenantID: r.TenantID, Name: r.Name, CommissionRate: rate,
		MinReferrals: r.MinReferrals, MinRefereeRevenue: r.MinRefereeRevenue, Priority: r.Priority,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// loadTiers returns every live tier of the tenant in ladder order. It runs on q, so callers
// may use it inside their own transaction.
func loadTiers(ctx context.Context, q sqlx.QueryerContext, tenant string) ([]referral.Tier, error) {
	const sel = `SELECT ` + tierCols + ` FROM affiliate_tiers WHERE tenant_id = $1 AND deleted_at IS NULL` + tierOrder
	var rows []storedTier
	if err := sqlx.SelectContext(ctx, q, &rows, sel, tenant); err != nil {
		return nil, fmt.Errorf("load tiers: %w", err)
	}
	return domainAll(rows)
}

// CreateTier stores a new tier built from t (its id and timestamps are assigned) and returns it.
func (s *Store) CreateTier(ctx context.Context, t referral.Tier) (referral.Tier, error) {
	const q = `
		INSERT INTO affiliate_tiers (id, tenant_id, name, commission_rate, min_referrals,
		    min_referee_revenue, priority, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		RETURNING ` + tierCols
	var out referral.Tier
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedTier
		if err := tx.GetContext(ctx, &row, q, uuid.New(), t.TenantID, t.Name, t.CommissionRate.String(),
			t.MinReferrals, t.MinRefereeRevenue, t.Priority, s.now()); err != nil {
			return fmt.Errorf("insert tier: %w", err)
		}
		var err error
		out, err = row.domain()
		return err
	})
	return out, err
}

// GetTier returns a live tier of the tenant. Errors: NOT_FOUND.
func (s *Store) GetTier(ctx context.Context, tenant string, id uuid.UUID) (referral.Tier, error) {
	const q = `SELECT ` + tierCols + ` FROM affiliate_tiers WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	return getRow[storedTier, referral.Tier](ctx, s.db, "tier", q, tenant, id)
}

// ListTiers returns a page of the tenant's tiers in ladder order (priority descending) and the
// total count.
func (s *Store) ListTiers(ctx context.Context, tenant string, f referral.TierFilter) ([]referral.Tier, int, error) {
	const where = ` FROM affiliate_tiers WHERE tenant_id = $1 AND deleted_at IS NULL`
	const q = `SELECT ` + tierCols + where + tierOrder + ` LIMIT $2 OFFSET $3`
	const count = `SELECT count(*)` + where
	var (
		out   []referral.Tier
		total int
	)
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []storedTier
		if err := tx.SelectContext(ctx, &rows, q, tenant, f.Limit, f.Offset); err != nil {
			return fmt.Errorf("list tiers: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, tenant); err != nil {
			return fmt.Errorf("count tiers: %w", err)
		}
		var err error
		out, err = domainAll(rows)
		return err
	})
	return out, total, err
}

// ReplaceTier overwrites every writable field of tier t.ID with t's and returns it.
// Errors: NOT_FOUND.
func (s *Store) ReplaceTier(ctx context.Context, t referral.Tier) (referral.Tier, error) {
	const q = `
		UPDATE affiliate_tiers SET name = $3, commission_rate = $4, min_referrals = $5,
		    min_referee_revenue = $6, priority = $7, updated_at = $8
		WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
		RETURNING ` + tierCols
	var out referral.Tier
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedTier
		if err := tx.GetContext(ctx, &row, q, t.TenantID, t.ID, t.Name, t.CommissionRate.String(),
			t.MinReferrals, t.MinRefereeRevenue, t.Priority, s.now()); err != nil {
			if isNoRows(err) {
				return referral.NotFound("tier")
			}
			return fmt.Errorf("replace tier: %w", err)
		}
		var err error
		out, err = row.domain()
		return err
	})
	return out, err
}

// DeleteTier hides a tier from every read and clears every affiliate's tier_override_id that
// pins it, in one transaction. Commission rows that name the tier keep naming it.
// Errors: NOT_FOUND.
func (s *Store) DeleteTier(ctx context.Context, tenant string, id uuid.UUID) error {
	const del = `UPDATE affiliate_tiers SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	// Runs after the tier row is locked by del: an affiliate write that checked the tier with a
	// share lock has committed by then, so its override is seen and cleared here. The rows are
	// locked in id order first, the order event processing locks affiliates in, so the two
	// never wait on each other in a circle.
	const clear = `
		UPDATE affiliates a SET tier_override_id = NULL, updated_at = $3
		FROM (SELECT id FROM affiliates WHERE tenant_id = $1 AND tier_override_id = $2
		      ORDER BY id FOR NO KEY UPDATE) pinned
		WHERE a.id = pinned.id`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, del, tenant, id, now)
		if err != nil {
			return fmt.Errorf("delete tier: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete tier: %w", err)
		} else if n == 0 {
			return referral.NotFound("tier")
		}
		if _, err := tx.ExecContext(ctx, clear, tenant, id, now); err != nil {
			return fmt.Errorf("clear tier overrides: %w", err)
		}
		return nil
	})
}

// checkTierOverride answers VALIDATION_FAILED for tier_override_id unless id is nil or names a
// live tier of the tenant. The share lock keeps the tier from being deleted until the caller's
// transaction ends, so DeleteTier never misses the override being written.
func checkTierOverride(ctx context.Context, tx *sqlx.Tx, tenant string, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	const q = `SELECT id FROM affiliate_tiers WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR SHARE`
	var got uuid.UUID
	if err := tx.GetContext(ctx, &got, q, tenant, *id); err != nil {
		if isNoRows(err) {
			return referral.Invalid("tier_override_id", "must name a tier of the tenant")
		}
		return fmt.Errorf("check tier: %w", err)
	}
	return nil
}
