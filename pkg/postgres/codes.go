package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// generateAttempts bounds the retries of a generated code that collided with a taken one. With
// 32^8 possible codes a second collision in a row is already improbable.
const generateAttempts = 8

// storedCode is a referral_codes row.
type storedCode struct {
	ID          uuid.UUID  `db:"id"`
	TenantID    string     `db:"tenant_id"`
	Code        string     `db:"code"`
	OwnerUserID *string    `db:"owner_user_id"`
	CampaignID  *uuid.UUID `db:"campaign_id"`
	UsageLimit  *int       `db:"usage_limit"`
	Uses        int        `db:"uses"`
	Active      bool       `db:"active"`
	ExpiresAt   *time.Time `db:"expires_at"`
	Source      string     `db:"source"`
	Generated   bool       `db:"generated"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

const codeCols = `id, tenant_id, code, owner_user_id, campaign_id, usage_limit, uses, active,
	expires_at, source, generated, created_at, updated_at`

func (r storedCode) domain() referral.Code {
	return referral.Code{
		ID: r.ID, TenantID: r.TenantID, Code: r.Code, OwnerUserID: r.OwnerUserID,
		CampaignID: r.CampaignID, UsageLimit: r.UsageLimit, Uses: r.Uses, Active: r.Active,
		ExpiresAt: utcTimePtr(r.ExpiresAt), Source: r.Source, Generated: r.Generated,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// insertCode inserts c. An empty c.Code is generated (and retried on collision); an explicit
// code that is taken answers CODE_TAKEN.
func (s *Store) insertCode(ctx context.Context, tx *sqlx.Tx, c referral.Code) (referral.Code, error) {
	// ON CONFLICT keeps the transaction usable after a collision, so a generated code can be
	// retried without a savepoint.
	const q = `
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, campaign_id, usage_limit,
		    active, expires_at, source, generated, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
		ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO NOTHING
		RETURNING ` + codeCols
	generated := c.Code == ""
	now := s.now()
	for range generateAttempts {
		code := c.Code
		if generated {
			var err error
			if code, err = referral.GenerateCode(); err != nil {
				return referral.Code{}, err
			}
		}
		var row storedCode
		err := tx.GetContext(ctx, &row, q, uuid.New(), c.TenantID, code, c.OwnerUserID, c.CampaignID,
			c.UsageLimit, c.Active, c.ExpiresAt, c.Source, generated, now)
		switch {
		case err == nil:
			return row.domain(), nil
		case !isNoRows(err):
			return referral.Code{}, translate("insert code", err)
		case !generated:
			return referral.Code{}, referral.Errorf(referral.ECodeTaken, "code is already taken")
		}
	}
	return referral.Code{}, errors.New("insert code: no free generated code after retries")
}

// CreatePlayerCode creates a code owned by player (SPEC §4.2). An empty code asks for a
// generated one: when the player already owns an active generated code, that code is returned
// unchanged instead. Errors: CODE_TAKEN, CODE_LIMIT_REACHED.
func (s *Store) CreatePlayerCode(ctx context.Context, tenant, player, code string, usageLimit *int) (referral.Code, error) {
	const existing = `
		SELECT ` + codeCols + ` FROM referral_codes
		WHERE tenant_id = $1 AND owner_user_id = $2 AND source = 'player' AND generated AND active
		  AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $3)
		ORDER BY created_at, id LIMIT 1`
	const count = `
		SELECT count(*) FROM referral_codes
		WHERE tenant_id = $1 AND owner_user_id = $2 AND source = 'player' AND active AND deleted_at IS NULL`
	var out referral.Code
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The per-owner advisory lock serialises one player's code creations, so the cap of
		// referral.MaxPlayerCodes and the single generated code hold under concurrent requests.
		key := lockKey("code-owner", tenant, player)
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(key, 10)+")"); err != nil {
			return fmt.Errorf("lock code owner: %w", err)
		}
		if code == "" {
			var row storedCode
			err := tx.GetContext(ctx, &row, existing, tenant, player, s.now())
			if err == nil {
				out = row.domain()
				return nil
			}
			if !isNoRows(err) {
				return fmt.Errorf("find generated code: %w", err)
			}
		}
		var n int
		if err := tx.GetContext(ctx, &n, count, tenant, player); err != nil {
			return fmt.Errorf("count player codes: %w", err)
		}
		if n >= referral.MaxPlayerCodes {
			return referral.Errorf(referral.ECodeLimitReached, "a player may own at most %d active codes", referral.MaxPlayerCodes)
		}
		var err error
		out, err = s.insertCode(ctx, tx, referral.Code{TenantID: tenant, Code: code, OwnerUserID: &player,
			UsageLimit: usageLimit, Active: true, Source: referral.CodeSourcePlayer})
		return err
	})
	return out, err
}

// CreateAdminCode creates a promo code from c (c.Code empty: generated). Its campaign, when set,
// must be a live campaign of the tenant. Errors: CODE_TAKEN, VALIDATION_FAILED (campaign_id).
func (s *Store) CreateAdminCode(ctx context.Context, c referral.Code) (referral.Code, error) {
	c.Source = referral.CodeSourceAdmin
	var out referral.Code
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := checkCodeCampaign(ctx, tx, c.TenantID, c.CampaignID); err != nil {
			return err
		}
		var err error
		out, err = s.insertCode(ctx, tx, c)
		return err
	})
	return out, err
}

// checkCodeCampaign answers VALIDATION_FAILED for campaign_id unless id is nil or names a live
// campaign of the tenant. It takes a share lock so the campaign cannot be deleted meanwhile.
func checkCodeCampaign(ctx context.Context, tx *sqlx.Tx, tenant string, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	const q = `SELECT true FROM campaigns WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR SHARE`
	var ok bool
	if err := tx.GetContext(ctx, &ok, q, tenant, *id); err != nil {
		if isNoRows(err) {
			return referral.Invalid("campaign_id", "no such campaign")
		}
		return fmt.Errorf("check campaign: %w", err)
	}
	return nil
}

// GetCode returns a live code of the tenant. Errors: NOT_FOUND.
func (s *Store) GetCode(ctx context.Context, tenant string, id uuid.UUID) (referral.Code, error) {
	var out referral.Code
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = codeByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// codeByID loads a live code, locking it FOR UPDATE when lock is set.
func codeByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool) (referral.Code, error) {
	q := `SELECT ` + codeCols + ` FROM referral_codes WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	if lock {
		q += ` FOR UPDATE`
	}
	var row storedCode
	if err := tx.GetContext(ctx, &row, q, tenant, id); err != nil {
		if isNoRows(err) {
			return referral.Code{}, referral.NotFound("code")
		}
		return referral.Code{}, fmt.Errorf("get code: %w", err)
	}
	return row.domain(), nil
}

// ListCodes returns a page of the tenant's live codes, newest first, and the total count.
func (s *Store) ListCodes(ctx context.Context, tenant string, f referral.CodeFilter) ([]referral.Code, int, error) {
	const where = ` FROM referral_codes WHERE tenant_id = $1 AND deleted_at IS NULL
		AND ($2::text IS NULL OR owner_user_id = $2)
		AND ($3::uuid IS NULL OR campaign_id = $3)
		AND ($4::boolean IS NULL OR active = $4)`
	const q = `SELECT ` + codeCols + where + ` ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6`
	const count = `SELECT count(*)` + where
	var (
		out   []referral.Code
		total int
	)
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []storedCode
		if err := tx.SelectContext(ctx, &rows, q, tenant, f.OwnerUserID, f.CampaignID, f.Active, f.Limit, f.Offset); err != nil {
			return fmt.Errorf("list codes: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, tenant, f.OwnerUserID, f.CampaignID, f.Active); err != nil {
			return fmt.Errorf("count codes: %w", err)
		}
		out = make([]referral.Code, 0, len(rows))
		for _, r := range rows {
			out = append(out, r.domain())
		}
		return nil
	})
	return out, total, err
}

// ReplaceCode overwrites the writable fields of code c.ID with c's: usage limit, campaign,
// owner, expiry and active. The code string cannot change: an empty c.Code keeps it, another
// value answers VALIDATION_FAILED. An affiliate's code keeps its owner (a nil c.OwnerUserID
// keeps it, another owner answers VALIDATION_FAILED). Errors: NOT_FOUND, VALIDATION_FAILED
// (code, owner_user_id, usage_limit below uses, campaign_id).
func (s *Store) ReplaceCode(ctx context.Context, c referral.Code) (referral.Code, error) {
	var out referral.Code
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		cur, err := codeByID(ctx, tx, c.TenantID, c.ID, true)
		if err != nil {
			return err
		}
		fe := referral.FieldErrors{}
		if c.Code != "" && c.Code != cur.Code {
			fe.Add("code", "cannot change after creation")
		}
		owner := c.OwnerUserID
		if cur.Source == referral.CodeSourceAffiliate {
			if owner != nil && (cur.OwnerUserID == nil || *owner != *cur.OwnerUserID) {
				fe.Add("owner_user_id", "an affiliate's code keeps its owner")
			}
			owner = cur.OwnerUserID
		}
		if c.UsageLimit != nil && *c.UsageLimit < cur.Uses {
			fe.Add("usage_limit", fmt.Sprintf("must not be below the current uses (%d)", cur.Uses))
		}
		if err := fe.Err(); err != nil {
			return err
		}
		if err := checkCodeCampaign(ctx, tx, c.TenantID, c.CampaignID); err != nil {
			return err
		}
		cur.OwnerUserID, cur.CampaignID, cur.UsageLimit = owner, c.CampaignID, c.UsageLimit
		cur.ExpiresAt, cur.Active = c.ExpiresAt, c.Active
		out, err = s.updateCode(ctx, tx, cur)
		return err
	})
	return out, err
}

// PatchCode changes the fields p sets. Errors: NOT_FOUND, VALIDATION_FAILED (usage_limit below
// uses, campaign_id).
func (s *Store) PatchCode(ctx context.Context, tenant string, id uuid.UUID, p referral.CodePatch) (referral.Code, error) {
	var out referral.Code
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		cur, err := codeByID(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if p.SetUsageLimit {
			if p.UsageLimit != nil && *p.UsageLimit < cur.Uses {
				return referral.Invalid("usage_limit", fmt.Sprintf("must not be below the current uses (%d)", cur.Uses))
			}
			cur.UsageLimit = p.UsageLimit
		}
		if p.Active != nil {
			cur.Active = *p.Active
		}
		if p.SetExpiresAt {
			cur.ExpiresAt = p.ExpiresAt
		}
		if p.SetCampaignID {
			if err := checkCodeCampaign(ctx, tx, tenant, p.CampaignID); err != nil {
				return err
			}
			cur.CampaignID = p.CampaignID
		}
		out, err = s.updateCode(ctx, tx, cur)
		return err
	})
	return out, err
}

// updateCode writes the mutable fields of c (locked by the caller).
func (s *Store) updateCode(ctx context.Context, tx *sqlx.Tx, c referral.Code) (referral.Code, error) {
	const q = `
		UPDATE referral_codes SET owner_user_id = $3, campaign_id = $4, usage_limit = $5,
		    active = $6, expires_at = $7, updated_at = $8
		WHERE tenant_id = $1 AND id = $2
		RETURNING ` + codeCols
	var row storedCode
	if err := tx.GetContext(ctx, &row, q, c.TenantID, c.ID, c.OwnerUserID, c.CampaignID,
		c.UsageLimit, c.Active, c.ExpiresAt, s.now()); err != nil {
		if pqCode(err) == pqCheckViolation {
			return referral.Code{}, referral.Invalid("usage_limit", "must not be below the current uses")
		}
		return referral.Code{}, fmt.Errorf("update code: %w", err)
	}
	return row.domain(), nil
}

// DeleteCode hides a code from every read and frees its string; referrals made with it keep
// pointing at it. An affiliate's code goes with its affiliate only. Errors: NOT_FOUND,
// INVALID_TRANSITION (an affiliate's code).
func (s *Store) DeleteCode(ctx context.Context, tenant string, id uuid.UUID) error {
	const q = `UPDATE referral_codes SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		cur, err := codeByID(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if cur.Source == referral.CodeSourceAffiliate {
			return referral.Errorf(referral.EInvalidTransition, "an affiliate's code is removed with its affiliate; deactivate it instead")
		}
		if _, err := tx.ExecContext(ctx, q, tenant, id, s.now()); err != nil {
			return fmt.Errorf("delete code: %w", err)
		}
		return nil
	})
}

// CodeClaims returns a live code, a page of the referrals made with it (newest first) and their
// total count. Errors: NOT_FOUND.
func (s *Store) CodeClaims(ctx context.Context, tenant string, id uuid.UUID, limit, offset int) (referral.Code, []referral.CodeClaim, int, error) {
	const q = `SELECT ` + referralCols + ` FROM referrals WHERE code_id = $1 AND tenant_id = $2
		ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`
	const count = `SELECT count(*) FROM referrals WHERE code_id = $1 AND tenant_id = $2`
	var (
		code   referral.Code
		claims []referral.CodeClaim
		total  int
	)
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if code, err = codeByID(ctx, tx, tenant, id, false); err != nil {
			return err
		}
		var rows []storedReferral
		if err := tx.SelectContext(ctx, &rows, q, id, tenant, limit, offset); err != nil {
			return fmt.Errorf("list claims: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, id, tenant); err != nil {
			return fmt.Errorf("count claims: %w", err)
		}
		claims = make([]referral.CodeClaim, 0, len(rows))
		for _, r := range rows {
			claims = append(claims, referral.CodeClaim{ReferralID: r.ID, RefereeID: r.RefereeID, Status: r.Status, ClaimedAt: r.CreatedAt.UTC()})
		}
		return nil
	})
	return code, claims, total, err
}
