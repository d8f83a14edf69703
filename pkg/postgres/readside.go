package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// The read side: what the Query Gateway's projector and its read-through fallback build read
// models from. Source reads through a sqlx.QueryerContext, so that the projector can run a whole
// round inside one REPEATABLE READ snapshot (OpenSnapshot) and the fallback a read of several
// documents inside another (InSnapshot), while single reads use the pool. Methods that load
// per-user data take a batch of users and return a map keyed by user id.

// Source reads the rows the read models are built from, through the queryer it was made over.
type Source struct{ q sqlx.QueryerContext }

// NewSource returns the Source reading through q: the pool, or a snapshot transaction.
func NewSource(q sqlx.QueryerContext) Source { return Source{q: q} }

// Change is one distinct (tenant, entity, id) named by the change log in a catch-up window,
// with what the change itself says about the documents it left behind (migration 00005): an
// entity that had several previous owners or parents in one window appears once for each.
type Change struct {
	TenantID string
	Entity   string
	EntityID string
	// OldOwner is a code's previous owner_user_id, when an update changed it or the code was
	// deleted; nil otherwise.
	OldOwner *string
	// OldParent is an affiliate's previous parent_affiliate_id, when an update changed it or the
	// affiliate was deleted; nil otherwise.
	OldParent *string
}

// ChangeWindow is what one catch-up round read from the change log.
type ChangeWindow struct {
	// Changes are the distinct entities changed in the window.
	Changes []Change
	// Rows is the number of change rows in the window.
	Rows int
	// MaxSeq is the highest seq in the window (0 when empty).
	MaxSeq int64
	// Age is how long ago the window's oldest change was recorded (0 when empty).
	Age time.Duration
}

// OpenSnapshot begins a REPEATABLE READ, read-only transaction and returns it with its snapshot
// (pg_snapshot text "xmin:xmax:xip,…") and the snapshot's xmin. The rows the transaction sees
// are exactly those of the transactions the snapshot shows as completed. The caller ends it; it
// does not run through transact because the projector writes Redis while holding it, so a
// round cannot simply run again.
func OpenSnapshot(ctx context.Context, db *sqlx.DB) (*sqlx.Tx, string, uint64, error) {
	tx, err := begin(ctx, db, txSnapshot)
	if err != nil {
		return nil, "", 0, fmt.Errorf("snapshot: %w", err)
	}
	var row struct {
		Snap string `db:"snap"`
		Xmin string `db:"xmin"`
	}
	const q = `SELECT pg_current_snapshot()::text AS snap, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`
	if err := tx.GetContext(ctx, &row, q); err != nil {
		tx.Rollback()
		return nil, "", 0, fmt.Errorf("snapshot: %w", err)
	}
	x, err := strconv.ParseUint(row.Xmin, 10, 64)
	if err != nil {
		tx.Rollback()
		return nil, "", 0, fmt.Errorf("snapshot xmin %q: %w", row.Xmin, err)
	}
	return tx, row.Snap, x, nil
}

// InSnapshot runs fn in a REPEATABLE READ, read-only transaction through transact, so every
// read fn makes through q sees one moment. fn must only read.
func InSnapshot(ctx context.Context, db *sqlx.DB, fn func(q sqlx.QueryerContext) error) error {
	return transact(ctx, db, txSnapshot, func(tx *sqlx.Tx) error { return fn(tx) })
}

// ChangeWindow returns, deduplicated by entity and previous owner or parent, the changes
// visible to the Source (an OpenSnapshot transaction) whose transactions had not completed in
// the earlier snapshot prev: exactly the changes that committed between the two snapshots. Transactions below prev's xmin had
// completed in prev, so only xid ≥ xmin(prev) is scanned.
func (s Source) ChangeWindow(ctx context.Context, prev string) (ChangeWindow, error) {
	const q1 = `
		SELECT tenant_id, entity, entity_id, old_owner, old_parent, count(*) AS n, max(seq) AS max_seq,
		    extract(epoch FROM clock_timestamp() - min(changed_at))::float8 AS age
		FROM changes
		WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)
		GROUP BY tenant_id, entity, entity_id, old_owner, old_parent`
	var rows []struct {
		TenantID  string  `db:"tenant_id"`
		Entity    string  `db:"entity"`
		EntityID  string  `db:"entity_id"`
		OldOwner  *string `db:"old_owner"`
		OldParent *string `db:"old_parent"`
		N         int     `db:"n"`
		MaxSeq    int64   `db:"max_seq"`
		Age       float64 `db:"age"`
	}
	var w ChangeWindow
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, prev); err != nil {
		return w, fmt.Errorf("read changes: %w", err)
	}
	for _, r := range rows {
		w.Changes = append(w.Changes, Change{TenantID: r.TenantID, Entity: r.Entity, EntityID: r.EntityID,
			OldOwner: r.OldOwner, OldParent: r.OldParent})
		w.Rows += r.N
		w.MaxSeq = max(w.MaxSeq, r.MaxSeq)
		w.Age = max(w.Age, time.Duration(r.Age*float64(time.Second)))
	}
	return w, nil
}

// MaxSeq returns the highest change seq (0 for an empty log).
func (s Source) MaxSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := sqlx.GetContext(ctx, s.q, &n, `SELECT coalesce(max(seq), 0) FROM changes`); err != nil {
		return 0, fmt.Errorf("max seq: %w", err)
	}
	return n, nil
}

// PruneChanges deletes changes recorded before before whose transactions had completed in the
// snapshot snap (so a reader positioned at snap has applied them), and returns how many it
// deleted.
func PruneChanges(ctx context.Context, db *sqlx.DB, before time.Time, snap string) (int64, error) {
	const q = `DELETE FROM changes WHERE changed_at < $1 AND pg_visible_in_snapshot(xid, $2::pg_snapshot)`
	var n int64
	err := transact(ctx, db, txPrivate, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, q, before, snap)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune changes: %w", err)
	}
	return n, nil
}

// TenantUsers returns, per tenant, every user id that owns any projected per-user data
// (codes, referrals on either side, rewards, affiliates, commissions), deleted rows included.
func (s Source) TenantUsers(ctx context.Context) (map[string][]string, error) {
	const q1 = `
		SELECT tenant_id, owner_user_id AS user_id FROM referral_codes WHERE owner_user_id IS NOT NULL
		UNION SELECT tenant_id, referee_id FROM referrals
		UNION SELECT tenant_id, referrer_id FROM referrals WHERE referrer_id IS NOT NULL
		UNION SELECT tenant_id, user_id FROM rewards
		UNION SELECT tenant_id, user_id FROM affiliates
		UNION SELECT tenant_id, user_id FROM commissions`
	var rows []struct {
		TenantID string `db:"tenant_id"`
		UserID   string `db:"user_id"`
	}
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1); err != nil {
		return nil, fmt.Errorf("tenant users: %w", err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.TenantID] = append(out[r.TenantID], r.UserID)
	}
	return out, nil
}

// Tenants returns every tenant that has any projected tenant-wide data.
func (s Source) Tenants(ctx context.Context) ([]string, error) {
	const q1 = `
		SELECT tenant_id FROM campaigns UNION SELECT tenant_id FROM affiliate_tiers
		UNION SELECT tenant_id FROM referral_codes UNION SELECT tenant_id FROM referrals
		UNION SELECT tenant_id FROM affiliates`
	var out []string
	if err := sqlx.SelectContext(ctx, s.q, &out, q1); err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	return out, nil
}

// Owner is what one entity row touches: the users whose per-user read models hold it and, for
// codes and affiliates, its code string.
type Owner struct {
	Users []string
	Codes []string
}

// Owners returns, per entity id, the users whose per-user read models the entity's current
// row touches (for referrals both sides; for rewards and commissions the beneficiary; for codes
// the owner; for affiliates the user) and the code strings of codes and affiliates. Rows that no
// longer exist are absent from the map; soft-deleted rows are present.
func (s Source) Owners(ctx context.Context, tenant, entity string, ids []string) (map[string]Owner, error) {
	var q1 string
	switch entity {
	case "code":
		q1 = `SELECT id::text AS id, coalesce(owner_user_id, '') AS a, code AS b FROM referral_codes WHERE tenant_id = $1 AND id::text = ANY($2)`
	case "referral":
		q1 = `SELECT id::text AS id, coalesce(referrer_id, '') AS a, referee_id AS b FROM referrals WHERE tenant_id = $1 AND id::text = ANY($2)`
	case "reward":
		q1 = `SELECT id::text AS id, user_id AS a, '' AS b FROM rewards WHERE tenant_id = $1 AND id::text = ANY($2)`
	case "commission":
		q1 = `SELECT id::text AS id, user_id AS a, '' AS b FROM commissions WHERE tenant_id = $1 AND id::text = ANY($2)`
	case "affiliate":
		q1 = `SELECT id::text AS id, user_id AS a, affiliate_code AS b FROM affiliates WHERE tenant_id = $1 AND id::text = ANY($2)`
	default:
		return map[string]Owner{}, nil
	}
	var rows []struct {
		ID string `db:"id"`
		A  string `db:"a"`
		B  string `db:"b"`
	}
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("owners of %s: %w", entity, err)
	}
	out := make(map[string]Owner, len(rows))
	for _, r := range rows {
		var o Owner
		if r.A != "" {
			o.Users = append(o.Users, r.A)
		}
		switch entity {
		case "code", "affiliate":
			o.Codes = []string{r.B}
		case "referral":
			o.Users = append(o.Users, r.B)
		}
		out[r.ID] = o
	}
	return out, nil
}

// Campaigns returns the tenant's live campaigns (active or not), newest first.
func (s Source) Campaigns(ctx context.Context, tenant string) ([]referral.Campaign, error) {
	const q1 = `SELECT ` + campaignCols + ` FROM campaigns WHERE tenant_id = $1 AND deleted_at IS NULL
		ORDER BY created_at DESC, id DESC`
	var rows []storedCampaign
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant); err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	return domainAll(rows)
}

// Tiers returns the tenant's live tiers in ladder order.
func (s Source) Tiers(ctx context.Context, tenant string) ([]referral.Tier, error) {
	return loadTiers(ctx, s.q, tenant)
}

// CodesByString returns the tenant's live codes among codes (normalised strings), keyed by code.
func (s Source) CodesByString(ctx context.Context, tenant string, codes []string) (map[string]referral.Code, error) {
	q1 := `SELECT ` + codeCols + ` FROM referral_codes
		WHERE tenant_id = $1 AND code = ANY($2) AND deleted_at IS NULL`
	var rows []storedCode
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(codes)); err != nil {
		return nil, fmt.Errorf("read codes: %w", err)
	}
	out := make(map[string]referral.Code, len(rows))
	for _, r := range rows {
		out[r.Code] = r.domain()
	}
	return out, nil
}

// UserCodes returns each user's live codes, newest first.
func (s Source) UserCodes(ctx context.Context, tenant string, users []string) (map[string][]referral.Code, error) {
	q1 := `SELECT ` + codeCols + ` FROM referral_codes
		WHERE tenant_id = $1 AND owner_user_id = ANY($2) AND deleted_at IS NULL
		ORDER BY created_at DESC, id DESC`
	var rows []storedCode
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read user codes: %w", err)
	}
	out := make(map[string][]referral.Code, len(users))
	for _, r := range rows {
		out[*r.OwnerUserID] = append(out[*r.OwnerUserID], r.domain())
	}
	return out, nil
}

// RefereeReferrals returns, for each user that was referred, the referral that referred it.
func (s Source) RefereeReferrals(ctx context.Context, tenant string, users []string) (map[string]referral.Referral, error) {
	q1 := `SELECT ` + referralCols + ` FROM referrals WHERE tenant_id = $1 AND referee_id = ANY($2)`
	var rows []storedReferral
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read referee referrals: %w", err)
	}
	out := make(map[string]referral.Referral, len(rows))
	for _, r := range rows {
		out[r.RefereeID] = r.domain()
	}
	return out, nil
}

// ReferrerReferrals returns the referrals each user made, newest first.
func (s Source) ReferrerReferrals(ctx context.Context, tenant string, users []string) (map[string][]referral.Referral, error) {
	q1 := `SELECT ` + referralCols + ` FROM referrals WHERE tenant_id = $1 AND referrer_id = ANY($2)
		ORDER BY created_at DESC, id DESC`
	var rows []storedReferral
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read referrer referrals: %w", err)
	}
	out := make(map[string][]referral.Referral, len(users))
	for _, r := range rows {
		out[*r.ReferrerID] = append(out[*r.ReferrerID], r.domain())
	}
	return out, nil
}

// UserRewards returns each user's reward ledger rows, newest first.
func (s Source) UserRewards(ctx context.Context, tenant string, users []string) (map[string][]referral.Reward, error) {
	const q1 = `SELECT ` + rewardCols + ` FROM rewards WHERE tenant_id = $1 AND user_id = ANY($2)
		ORDER BY created_at DESC, id DESC`
	var rows []ledgerRewardRow
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read rewards: %w", err)
	}
	out := make(map[string][]referral.Reward, len(users))
	for _, r := range rows {
		out[r.UserID] = append(out[r.UserID], r.domain())
	}
	return out, nil
}

// UserCommissions returns the commission rows each user earned, newest first.
func (s Source) UserCommissions(ctx context.Context, tenant string, users []string) (map[string][]referral.Commission, error) {
	const q1 = `SELECT ` + commissionCols + ` FROM commissions WHERE tenant_id = $1 AND user_id = ANY($2)
		ORDER BY created_at DESC, id DESC`
	var rows []ledgerCommissionRow
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read commissions: %w", err)
	}
	out := make(map[string][]referral.Commission, len(users))
	for _, r := range rows {
		c, err := r.domain()
		if err != nil {
			return nil, err
		}
		out[r.UserID] = append(out[r.UserID], c)
	}
	return out, nil
}

// UserAffiliates returns each user's live affiliate (without its effective tier, which
// depends on the tier ladder and is derived on read).
func (s Source) UserAffiliates(ctx context.Context, tenant string, users []string) (map[string]referral.Affiliate, error) {
	const q1 = `SELECT ` + affiliateCountedCols + ` FROM affiliates a
		WHERE a.tenant_id = $1 AND a.user_id = ANY($2) AND a.deleted_at IS NULL`
	var rows []storedAffiliate
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read affiliates: %w", err)
	}
	out := make(map[string]referral.Affiliate, len(rows))
	for _, r := range rows {
		a, err := r.domain(nil)
		if err != nil {
			return nil, err
		}
		out[a.UserID] = a
	}
	return out, nil
}

// Downline returns one page of the live affiliates under node down to f.Depth levels (without
// their effective tiers, derived on read), ordered by level, created_at and id, and how many
// there are in all. A node that is gone has an empty downline.
func (s Source) Downline(ctx context.Context, tenant string, node uuid.UUID, f referral.DownlineFilter) ([]referral.DownlineMember, int, error) {
	out, total, err := downline(ctx, s.q, tenant, node, f, false)
	if referral.ErrorCode(err) == referral.ENotFound {
		return []referral.DownlineMember{}, 0, nil
	}
	return out, total, err
}

// DownlineSize returns how many live affiliates are under node at any depth.
func (s Source) DownlineSize(ctx context.Context, tenant string, node uuid.UUID) (int, error) {
	const q1 = `SELECT count(*) FROM affiliates WHERE tenant_id = $1 AND deleted_at IS NULL AND ancestors @> ARRAY[$2::uuid]`
	var n int
	if err := sqlx.GetContext(ctx, s.q, &n, q1, tenant, node); err != nil {
		return 0, fmt.Errorf("downline size: %w", err)
	}
	return n, nil
}

// Leaderboard returns every referrer with at least one referral created at or after since
// (nil: all time), ordered and ranked as ReferralService.Leaderboard ranks them.
func (s Source) Leaderboard(ctx context.Context, tenant string, since *time.Time) ([]referral.LeaderboardEntry, error) {
	return leaderboard(ctx, s.q, tenant, since, nil)
}
