package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// affiliateCodeAttempts bounds the retries of a generated affiliate code that collides.
const affiliateCodeAttempts = 8

// storedAffiliate is an affiliates row, with its converted-referral count when the query
// computes it (affiliateCountedCols) and, for downline reads, the level and the total.
type storedAffiliate struct {
	ID                 uuid.UUID      `db:"id"`
	TenantID           string         `db:"tenant_id"`
	UserID             string         `db:"user_id"`
	AffiliateCode      string         `db:"affiliate_code"`
	CodeID             uuid.UUID      `db:"code_id"`
	Status             string         `db:"status"`
	ParentAffiliateID  *uuid.UUID     `db:"parent_affiliate_id"`
	Ancestors          pq.StringArray `db:"ancestors"`
	TierOverrideID     *uuid.UUID     `db:"tier_override_id"`
	RefereeRevenue     int64          `db:"referee_revenue"`
	ConvertedReferrals int64          `db:"converted_referrals"`
	CreatedAt          time.Time      `db:"created_at"`
	UpdatedAt          time.Time      `db:"updated_at"`
	Level              int            `db:"level"` // downline reads only
	Total              int            `db:"total"` // downline reads only
}

// affiliateCols selects an affiliate aliased a.
const affiliateCols = `a.id, a.tenant_id, a.user_id, a.affiliate_code, a.code_id, a.status,
	a.parent_affiliate_id, a.ancestors::text[] AS ancestors, a.tier_override_id, a.referee_revenue,
	a.created_at, a.updated_at`

// affiliateCountedCols is affiliateCols with converted_referrals, which follows SPEC §5.4: the
// user's referrals that are converted or verified now (a later rejection stops counting).
const affiliateCountedCols = affiliateCols + `,
	(SELECT count(*) FROM referrals r WHERE r.tenant_id = a.tenant_id AND r.referrer_id = a.user_id
	    AND phoenix_successful(r.status)) AS converted_referrals`

// domain converts the row; TierID is the effective tier among tiers (nil tiers: left nil).
func (r storedAffiliate) domain(tiers []referral.Tier) (referral.Affiliate, error) {
	anc, err := parsePath(r.ID, r.Ancestors)
	if err != nil {
		return referral.Affiliate{}, err
	}
	a := referral.Affiliate{ID: r.ID, TenantID: r.TenantID, UserID: r.UserID,
		AffiliateCode: r.AffiliateCode, CodeID: r.CodeID, Status: r.Status,
		ParentAffiliateID: r.ParentAffiliateID, Ancestors: anc,
		TierOverrideID: r.TierOverrideID, ConvertedReferrals: r.ConvertedReferrals,
		RefereeRevenue: r.RefereeRevenue, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if tiers != nil {
		if t := referral.EffectiveTier(tiers, a.TierOverrideID, a.ConvertedReferrals, a.RefereeRevenue); t != nil {
			id := t.ID
			a.TierID = &id
		}
	}
	return a, nil
}

// parsePath parses the stored path (ancestors as text) of affiliate id.
func parsePath(id uuid.UUID, raw []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, 0, len(raw))
	for _, s := range raw {
		a, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("affiliate %s: ancestor %q: %w", id, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// affiliatesOf converts rows, deriving each effective tier from tiers.
func affiliatesOf(rows []storedAffiliate, tiers []referral.Tier) ([]referral.Affiliate, error) {
	out := make([]referral.Affiliate, 0, len(rows))
	for _, r := range rows {
		a, err := r.domain(tiers)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// convertedReferrals counts the tenant's referrals made by userID that are converted or
// verified (SPEC §5.4). It runs on q, so callers may use it inside their own transaction.
func (s *Store) convertedReferrals(ctx context.Context, q sqlx.QueryerContext, tenant, userID string) (int64, error) {
	const sel = `SELECT count(*) FROM referrals WHERE tenant_id = $1 AND referrer_id = $2 AND phoenix_successful(status)`
	var n int64
	if err := sqlx.GetContext(ctx, q, &n, sel, tenant, userID); err != nil {
		return 0, fmt.Errorf("count converted referrals: %w", err)
	}
	return n, nil
}

// loadAffiliateByUser returns the live affiliate of userID in the tenant with its counters
// (converted_referrals counted now, referee_revenue as stored), or nil when the user is not an
// affiliate. TierID is left nil: the effective tier depends on counters an event may be about to
// change, so callers derive it with referral.EffectiveTier over loadTiers. It runs on q, so
// callers may use it inside their own transaction.
func (s *Store) loadAffiliateByUser(ctx context.Context, q sqlx.QueryerContext, tenant, userID string) (*referral.Affiliate, error) {
	const sel = `SELECT ` + affiliateCountedCols + ` FROM affiliates a
		WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.deleted_at IS NULL`
	var row storedAffiliate
	if err := sqlx.GetContext(ctx, q, &row, sel, tenant, userID); err != nil {
		if isNoRows(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("load affiliate by user: %w", err)
	}
	a, err := row.domain(nil)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// affiliateByID loads a live affiliate of the tenant with its effective tier. With lock the row
// is locked FOR NO KEY UPDATE (its key never changes, so commission inserts referencing it are not
// blocked). Errors: NOT_FOUND naming what.
func (s *Store) affiliateByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool, what string) (referral.Affiliate, error) {
	q := `SELECT ` + affiliateCountedCols + ` FROM affiliates a WHERE a.tenant_id = $1 AND a.id = $2 AND a.deleted_at IS NULL`
	if lock {
		q += ` FOR NO KEY UPDATE OF a`
	}
	var row storedAffiliate
	if err := tx.GetContext(ctx, &row, q, tenant, id); err != nil {
		if isNoRows(err) {
			return referral.Affiliate{}, referral.NotFound(what)
		}
		return referral.Affiliate{}, fmt.Errorf("get affiliate: %w", err)
	}
	tiers, err := loadTiers(ctx, tx, tenant)
	if err != nil {
		return referral.Affiliate{}, err
	}
	return row.domain(tiers)
}

// CreateAffiliate makes in.UserID an affiliate of in.TenantID with in.Status and
// in.TierOverrideID. Its code (in.AffiliateCode, already normalised; empty: generated) is
// registered in the same transaction as an unlimited, active referral code owned by the user,
// so players attach to the affiliate with apply-code. The new affiliate is a root.
// Errors: AFFILIATE_EXISTS, CODE_TAKEN, VALIDATION_FAILED (tier_override_id).
func (s *Store) CreateAffiliate(ctx context.Context, in referral.Affiliate) (referral.Affiliate, error) {
	const exists = `SELECT EXISTS (SELECT 1 FROM affiliates WHERE tenant_id = $1 AND user_id = $2 AND deleted_at IS NULL)`
	const insert = `
		INSERT INTO affiliates (id, tenant_id, user_id, affiliate_code, code_id, status,
		    parent_affiliate_id, ancestors, tier_override_id, referee_revenue, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULL, '{}', $7, 0, $8, $8)`
	var out referral.Affiliate
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var taken bool
		if err := tx.GetContext(ctx, &taken, exists, in.TenantID, in.UserID); err != nil {
			return fmt.Errorf("check affiliate: %w", err)
		}
		if taken {
			return referral.Errorf(referral.EAffiliateExists, "user is already an affiliate")
		}
		if err := checkTierOverride(ctx, tx, in.TenantID, in.TierOverrideID); err != nil {
			return err
		}
		now := s.now()
		codeID, code, err := insertAffiliateCode(ctx, tx, in.TenantID, in.UserID, in.AffiliateCode, now)
		if err != nil {
			return err
		}
		id := uuid.New()
		if _, err := tx.ExecContext(ctx, insert, id, in.TenantID, in.UserID, code, codeID, in.Status,
			in.TierOverrideID, now); err != nil {
			return translate("insert affiliate", err)
		}
		if out, err = s.affiliateByID(ctx, tx, in.TenantID, id, false, "affiliate"); err != nil {
			return err
		}
		return publish(ctx, tx, in.TenantID, now, outbox.Message{Type: outbox.AffiliateCreated, Data: apishape.NewAffiliate(out)})
	})
	return out, err
}

// insertAffiliateCode registers an affiliate's referral code: code when given (CODE_TAKEN when
// a live code of the tenant has it), else a generated one retried on collision.
func insertAffiliateCode(ctx context.Context, tx *sqlx.Tx, tenant, owner, code string, now time.Time) (uuid.UUID, string, error) {
	// ON CONFLICT keeps the transaction usable after a collision, so a generated code can be
	// retried without a savepoint.
	const q = `
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, campaign_id, usage_limit,
		    active, expires_at, source, generated, created_at, updated_at)
		VALUES ($1, $2, $3, $4, NULL, NULL, true, NULL, 'affiliate', $5, $6, $6)
		ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO NOTHING
		RETURNING id`
	generated := code == ""
	for range affiliateCodeAttempts {
		c := code
		if generated {
			var err error
			if c, err = referral.GenerateCode(); err != nil {
				return uuid.Nil, "", err
			}
		}
		var id uuid.UUID
		err := tx.GetContext(ctx, &id, q, uuid.New(), tenant, c, owner, generated, now)
		switch {
		case err == nil:
			return id, c, nil
		case !isNoRows(err):
			return uuid.Nil, "", translate("insert affiliate code", err)
		case !generated:
			return uuid.Nil, "", referral.Errorf(referral.ECodeTaken, "code is already taken")
		}
	}
	return uuid.Nil, "", errors.New("insert affiliate code: no free generated code after retries")
}

// GetAffiliate returns a live affiliate of the tenant with its current counters and effective
// tier. Errors: NOT_FOUND.
func (s *Store) GetAffiliate(ctx context.Context, tenant string, id uuid.UUID) (referral.Affiliate, error) {
	var out referral.Affiliate
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = s.affiliateByID(ctx, tx, tenant, id, false, "affiliate")
		return err
	})
	return out, err
}

// ListAffiliates returns a page of the tenant's affiliates, newest first, and the total count.
func (s *Store) ListAffiliates(ctx context.Context, tenant string, f referral.AffiliateFilter) ([]referral.Affiliate, int, error) {
	where := []string{"a.tenant_id = $1", "a.deleted_at IS NULL"}
	args := []any{tenant}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Status != nil {
		add("a.status = ?", *f.Status)
	}
	if f.ParentID != nil {
		add("a.parent_affiliate_id = ?", *f.ParentID)
	}
	if f.UserID != nil {
		add("a.user_id = ?", *f.UserID)
	}
	cond := strings.Join(where, " AND ")
	n := len(args)
	// The page is cut first so converted_referrals is counted for its rows only.
	q := `WITH page AS (
		    SELECT a.* FROM affiliates a WHERE ` + cond + `
		    ORDER BY a.created_at DESC, a.id DESC LIMIT $` + strconv.Itoa(n+1) + ` OFFSET $` + strconv.Itoa(n+2) + `)
		SELECT ` + affiliateCountedCols + ` FROM page a ORDER BY a.created_at DESC, a.id DESC`
	count := `SELECT count(*) FROM affiliates a WHERE ` + cond
	var (
		out   []referral.Affiliate
		total int
	)
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		var rows []storedAffiliate
		if err := tx.SelectContext(ctx, &rows, q, append(args, f.Limit, f.Offset)...); err != nil {
			return fmt.Errorf("list affiliates: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, args...); err != nil {
			return fmt.Errorf("count affiliates: %w", err)
		}
		tiers, err := loadTiers(ctx, tx, tenant)
		if err != nil {
			return err
		}
		out, err = affiliatesOf(rows, tiers)
		return err
	})
	return out, total, err
}

// ReplaceAffiliate sets the writable fields of affiliate in.ID (status, tier override) from in.
// in.UserID and in.AffiliateCode, when not empty, must equal the stored values: neither changes
// after creation. The parent is not touched (see SetUpline). Errors: NOT_FOUND,
// VALIDATION_FAILED (user_id, affiliate_code, tier_override_id).
func (s *Store) ReplaceAffiliate(ctx context.Context, in referral.Affiliate) (referral.Affiliate, error) {
	const q = `UPDATE affiliates SET status = $3, tier_override_id = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`
	var out referral.Affiliate
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The tier is share-locked before the affiliate row so this never waits on DeleteTier
		// while holding a row DeleteTier is about to update.
		if err := checkTierOverride(ctx, tx, in.TenantID, in.TierOverrideID); err != nil {
			return err
		}
		cur, err := s.affiliateByID(ctx, tx, in.TenantID, in.ID, true, "affiliate")
		if err != nil {
			return err
		}
		fe := referral.FieldErrors{}
		if in.UserID != "" && in.UserID != cur.UserID {
			fe.Add("user_id", "cannot change after creation")
		}
		if in.AffiliateCode != "" && in.AffiliateCode != cur.AffiliateCode {
			fe.Add("affiliate_code", "cannot change after creation")
		}
		if err := fe.Err(); err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, q, in.TenantID, in.ID, in.Status, in.TierOverrideID, now); err != nil {
			return fmt.Errorf("replace affiliate: %w", err)
		}
		if out, err = s.affiliateByID(ctx, tx, in.TenantID, in.ID, false, "affiliate"); err != nil {
			return err
		}
		if in.Status == cur.Status && equalIDs(in.TierOverrideID, cur.TierOverrideID) {
			return nil // nothing the affiliate shows changed but its updated_at: nothing to publish
		}
		msgs := []outbox.Message{{Type: outbox.AffiliateUpdated, Data: apishape.NewAffiliate(out)}}
		if !equalIDs(cur.TierID, out.TierID) {
			msgs = append(msgs, outbox.Message{Type: outbox.AffiliateTierChanged, Data: apishape.NewTierChange(out, cur.TierID)})
		}
		return publish(ctx, tx, in.TenantID, now, msgs...)
	})
	return out, err
}

// DeleteAffiliate hides an affiliate from every read and frees its user and code string: its
// children move up to its parent (the whole subtree's paths drop it), its referral code is
// deactivated and deleted, and referrals and ledger rows keep pointing at both.
// Errors: NOT_FOUND.
//
// Locks: the hierarchy, then the code (FOR UPDATE) before the affiliate, as apply-code takes
// them, then the affiliate and its subtree in id order, as event processing takes affiliates.
func (s *Store) DeleteAffiliate(ctx context.Context, tenant string, id uuid.UUID) error {
	const codeOf = `SELECT code_id FROM affiliates WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	const lockCode = `SELECT id FROM referral_codes WHERE id = $1 FOR UPDATE`
	const del = `UPDATE affiliates SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`
	// One statement re-parents the children and removes the node from every descendant's path
	// (the GIN index finds the subtree).
	const splice = `
		UPDATE affiliates SET
		    ancestors = array_remove(ancestors, $2),
		    parent_affiliate_id = CASE WHEN parent_affiliate_id = $2 THEN $3 ELSE parent_affiliate_id END,
		    updated_at = CASE WHEN parent_affiliate_id = $2 THEN $4 ELSE updated_at END
		WHERE tenant_id = $1 AND ancestors @> ARRAY[$2]::uuid[] AND deleted_at IS NULL`
	const code = `UPDATE referral_codes SET active = false, deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := lockHierarchy(ctx, tx, tenant); err != nil {
			return err
		}
		// Under the hierarchy lock no other deletion can remove the affiliate, and its code_id
		// never changes, so the unlocked read stays true.
		var codeID uuid.UUID
		if err := tx.GetContext(ctx, &codeID, codeOf, tenant, id); err != nil {
			if isNoRows(err) {
				return referral.NotFound("affiliate")
			}
			return fmt.Errorf("get affiliate code: %w", err)
		}
		if _, err := tx.ExecContext(ctx, lockCode, codeID); err != nil {
			return fmt.Errorf("lock affiliate code: %w", err)
		}
		if err := lockSubtree(ctx, tx, tenant, id); err != nil {
			return err
		}
		a, err := s.affiliateByID(ctx, tx, tenant, id, false, "affiliate")
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, del, tenant, id, now); err != nil {
			return fmt.Errorf("delete affiliate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, splice, tenant, id, a.ParentAffiliateID, now); err != nil {
			return fmt.Errorf("splice downline: %w", err)
		}
		if _, err := tx.ExecContext(ctx, code, tenant, codeID, now); err != nil {
			return fmt.Errorf("deactivate affiliate code: %w", err)
		}
		a.UpdatedAt = now
		return publish(ctx, tx, tenant, now, outbox.Message{Type: outbox.AffiliateDeleted, Data: apishape.NewAffiliate(a)})
	})
}

// equalIDs reports whether two optional ids are the same (both nil, or equal).
func equalIDs(a, b *uuid.UUID) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// lockSubtree locks a live affiliate of the tenant and its live descendants FOR NO KEY UPDATE in
// id order: the order event processing locks affiliates in, so a hierarchy change rewriting the
// subtree and an event batch paying some of its members never wait on each other in a circle.
func lockSubtree(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID) error {
	const q = `
		SELECT count(*) FROM (
		    SELECT id FROM affiliates
		    WHERE tenant_id = $1 AND (id = $2 OR ancestors @> ARRAY[$2]::uuid[]) AND deleted_at IS NULL
		    ORDER BY id FOR NO KEY UPDATE) locked`
	if _, err := tx.ExecContext(ctx, q, tenant, id); err != nil {
		return fmt.Errorf("lock subtree: %w", err)
	}
	return nil
}
