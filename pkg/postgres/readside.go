package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// The read side: the sources the Query Gateway's projector and its read-through fallback load
// read models from. Every function takes a sqlx.QueryerContext so that the projector can run a
// whole round inside one REPEATABLE READ snapshot (ReadSnapshot) while the fallback uses the pool.
// Functions that load per-user data take a batch of users and return a map keyed by user id.

// ReadChange is one distinct (tenant, entity, id) named by the change log in a catch-up window.
type ReadChange struct {
	TenantID string
	Entity   string
	EntityID string
}

// ReadWindow is what one catch-up round read from the change log.
type ReadWindow struct {
	// Changes are the distinct entities changed in the window.
	Changes []ReadChange
	// Rows is the number of change rows in the window.
	Rows int
	// MaxSeq is the highest seq in the window (0 when empty).
	MaxSeq int64
	// Age is how long ago the window's oldest change was recorded (0 when empty).
	Age time.Duration
}

// ReadSnapshot begins a REPEATABLE READ, read-only transaction and returns it with its snapshot
// (pg_snapshot text "xmin:xmax:xip,…") and the snapshot's xmin. The rows the transaction sees
// are exactly those of the transactions the snapshot shows as completed.
func ReadSnapshot(ctx context.Context, db *sqlx.DB) (*sqlx.Tx, string, uint64, error) {
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, "", 0, fmt.Errorf("begin snapshot: %w", err)
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

// ReadChangeWindow returns, deduplicated, the changes visible to q (a ReadSnapshot transaction)
// whose transactions had not completed in the earlier snapshot prev: exactly the changes that
// committed between the two snapshots. Transactions below prev's xmin had completed in prev, so
// only xid ≥ xmin(prev) is scanned.
func ReadChangeWindow(ctx context.Context, q sqlx.QueryerContext, prev string) (ReadWindow, error) {
	const q1 = `
		SELECT tenant_id, entity, entity_id, count(*) AS n, max(seq) AS max_seq,
		    extract(epoch FROM clock_timestamp() - min(changed_at))::float8 AS age
		FROM changes
		WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)
		GROUP BY tenant_id, entity, entity_id`
	var rows []struct {
		TenantID string  `db:"tenant_id"`
		Entity   string  `db:"entity"`
		EntityID string  `db:"entity_id"`
		N        int     `db:"n"`
		MaxSeq   int64   `db:"max_seq"`
		Age      float64 `db:"age"`
	}
	var w ReadWindow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, prev); err != nil {
		return w, fmt.Errorf("read changes: %w", err)
	}
	for _, r := range rows {
		w.Changes = append(w.Changes, ReadChange{TenantID: r.TenantID, Entity: r.Entity, EntityID: r.EntityID})
		w.Rows += r.N
		w.MaxSeq = max(w.MaxSeq, r.MaxSeq)
		w.Age = max(w.Age, time.Duration(r.Age*float64(time.Second)))
	}
	return w, nil
}

// ReadMaxSeq returns the highest change seq (0 for an empty log).
func ReadMaxSeq(ctx context.Context, q sqlx.QueryerContext) (int64, error) {
	var n int64
	if err := sqlx.GetContext(ctx, q, &n, `SELECT coalesce(max(seq), 0) FROM changes`); err != nil {
		return 0, fmt.Errorf("max seq: %w", err)
	}
	return n, nil
}

// ReadPruneChanges deletes changes recorded before before whose transactions had completed in
// the snapshot snap (so a reader positioned at snap has applied them), and returns how many it
// deleted.
func ReadPruneChanges(ctx context.Context, db *sqlx.DB, before time.Time, snap string) (int64, error) {
	const q = `DELETE FROM changes WHERE changed_at < $1 AND pg_visible_in_snapshot(xid, $2::pg_snapshot)`
	res, err := db.ExecContext(ctx, q, before, snap)
	if err != nil {
		return 0, fmt.Errorf("prune changes: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ReadTenantUsers returns, per tenant, every user id that owns any projected per-user data
// (codes, referrals on either side, rewards, affiliates, commissions), deleted rows included.
func ReadTenantUsers(ctx context.Context, q sqlx.QueryerContext) (map[string][]string, error) {
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
	if err := sqlx.SelectContext(ctx, q, &rows, q1); err != nil {
		return nil, fmt.Errorf("tenant users: %w", err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.TenantID] = append(out[r.TenantID], r.UserID)
	}
	return out, nil
}

// ReadTenants returns every tenant that has any projected tenant-wide data.
func ReadTenants(ctx context.Context, q sqlx.QueryerContext) ([]string, error) {
	const q1 = `
		SELECT tenant_id FROM campaigns UNION SELECT tenant_id FROM affiliate_tiers
		UNION SELECT tenant_id FROM referral_codes UNION SELECT tenant_id FROM referrals
		UNION SELECT tenant_id FROM affiliates`
	var out []string
	if err := sqlx.SelectContext(ctx, q, &out, q1); err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	return out, nil
}

// ReadOwner is what one entity row touches: the users whose per-user read models hold it and,
// for codes and affiliates, its code string.
type ReadOwner struct {
	Users []string
	Codes []string
}

// ReadOwners returns, per entity id, the users whose per-user read models the entity's current
// row touches (for referrals both sides; for rewards and commissions the beneficiary; for codes
// the owner; for affiliates the user) and the code strings of codes and affiliates. Rows that no
// longer exist are absent from the map; soft-deleted rows are present.
func ReadOwners(ctx context.Context, q sqlx.QueryerContext, tenant, entity string, ids []string) (map[string]ReadOwner, error) {
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
		return map[string]ReadOwner{}, nil
	}
	var rows []struct {
		ID string `db:"id"`
		A  string `db:"a"`
		B  string `db:"b"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(ids)); err != nil {
		return nil, fmt.Errorf("owners of %s: %w", entity, err)
	}
	out := make(map[string]ReadOwner, len(rows))
	for _, r := range rows {
		var o ReadOwner
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

// readCampaignRow is a campaigns row as the read side loads it.
type readCampaignRow struct {
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
	CreatedAt        time.Time  `db:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
}

// readWalletDoc is the stored rewards object of a campaign.
type readWalletDoc struct {
	Wallet []struct {
		CurrencyID string `json:"currency_id"`
		Amount     int64  `json:"amount"`
	} `json:"wallet"`
}

func readWallets(raw []byte) ([]referral.Wallet, error) {
	var d readWalletDoc
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("decode stored rewards: %w", err)
		}
	}
	out := make([]referral.Wallet, 0, len(d.Wallet))
	for _, w := range d.Wallet {
		out = append(out, referral.Wallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	return out, nil
}

// ReadCampaigns returns the tenant's live campaigns (active or not), newest first.
func ReadCampaigns(ctx context.Context, q sqlx.QueryerContext, tenant string) ([]referral.Campaign, error) {
	const q1 = `
		SELECT id, tenant_id, name, qualifying_event, qualifying_filter, referrer_rewards,
		    referee_rewards, active, starts_at, ends_at, created_at, updated_at
		FROM campaigns WHERE tenant_id = $1 AND deleted_at IS NULL
		ORDER BY created_at DESC, id DESC`
	var rows []readCampaignRow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant); err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	out := make([]referral.Campaign, 0, len(rows))
	for _, r := range rows {
		referrer, err := readWallets(r.ReferrerRewards)
		if err != nil {
			return nil, err
		}
		referee, err := readWallets(r.RefereeRewards)
		if err != nil {
			return nil, err
		}
		out = append(out, referral.Campaign{ID: r.ID, TenantID: r.TenantID, Name: r.Name,
			QualifyingEvent: r.QualifyingEvent, ReferrerRewards: referrer, RefereeRewards: referee,
			Active: r.Active, StartsAt: utcTimePtr(r.StartsAt), EndsAt: utcTimePtr(r.EndsAt),
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// readTierRow is an affiliate_tiers row.
type readTierRow struct {
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

// ReadTiers returns the tenant's live tiers ordered by priority descending (then commission rate
// descending, then oldest first).
func ReadTiers(ctx context.Context, q sqlx.QueryerContext, tenant string) ([]referral.Tier, error) {
	const q1 = `
		SELECT id, tenant_id, name, commission_rate::text AS commission_rate, min_referrals,
		    min_referee_revenue, priority, created_at, updated_at
		FROM affiliate_tiers WHERE tenant_id = $1 AND deleted_at IS NULL
		ORDER BY priority DESC, commission_rate DESC, created_at, id`
	var rows []readTierRow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant); err != nil {
		return nil, fmt.Errorf("read tiers: %w", err)
	}
	out := make([]referral.Tier, 0, len(rows))
	for _, r := range rows {
		rate, err := referral.ParseRate(r.CommissionRate)
		if err != nil {
			return nil, fmt.Errorf("tier %s rate %q: %w", r.ID, r.CommissionRate, err)
		}
		out = append(out, referral.Tier{ID: r.ID, TenantID: r.TenantID, Name: r.Name,
			CommissionRate: rate, MinReferrals: r.MinReferrals, MinRefereeRevenue: r.MinRefereeRevenue,
			Priority: r.Priority, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// ReadCodesByString returns the tenant's live codes among codes (normalised strings), keyed by code.
func ReadCodesByString(ctx context.Context, q sqlx.QueryerContext, tenant string, codes []string) (map[string]referral.Code, error) {
	q1 := `SELECT ` + codeCols + ` FROM referral_codes
		WHERE tenant_id = $1 AND code = ANY($2) AND deleted_at IS NULL`
	var rows []storedCode
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(codes)); err != nil {
		return nil, fmt.Errorf("read codes: %w", err)
	}
	out := make(map[string]referral.Code, len(rows))
	for _, r := range rows {
		out[r.Code] = r.domain()
	}
	return out, nil
}

// ReadUserCodes returns each user's live codes, newest first.
func ReadUserCodes(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string) (map[string][]referral.Code, error) {
	q1 := `SELECT ` + codeCols + ` FROM referral_codes
		WHERE tenant_id = $1 AND owner_user_id = ANY($2) AND deleted_at IS NULL
		ORDER BY created_at DESC, id DESC`
	var rows []storedCode
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read user codes: %w", err)
	}
	out := make(map[string][]referral.Code, len(users))
	for _, r := range rows {
		out[*r.OwnerUserID] = append(out[*r.OwnerUserID], r.domain())
	}
	return out, nil
}

// ReadRefereeReferrals returns, for each user that was referred, the referral that referred it.
func ReadRefereeReferrals(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string) (map[string]referral.Referral, error) {
	q1 := `SELECT ` + referralCols + ` FROM referrals WHERE tenant_id = $1 AND referee_id = ANY($2)`
	var rows []storedReferral
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read referee referrals: %w", err)
	}
	out := make(map[string]referral.Referral, len(rows))
	for _, r := range rows {
		out[r.RefereeID] = r.domain()
	}
	return out, nil
}

// ReadReferrerReferrals returns the referrals each user made, newest first.
func ReadReferrerReferrals(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string) (map[string][]referral.Referral, error) {
	q1 := `SELECT ` + referralCols + ` FROM referrals WHERE tenant_id = $1 AND referrer_id = ANY($2)
		ORDER BY created_at DESC, id DESC`
	var rows []storedReferral
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read referrer referrals: %w", err)
	}
	out := make(map[string][]referral.Referral, len(users))
	for _, r := range rows {
		out[*r.ReferrerID] = append(out[*r.ReferrerID], r.domain())
	}
	return out, nil
}

// ReadUserRewards returns each user's reward ledger rows, newest first.
func ReadUserRewards(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string) (map[string][]referral.Reward, error) {
	const q1 = `
		SELECT id, tenant_id, user_id, role, campaign_id, referral_id, event_id, currency_id, amount, created_at
		FROM rewards WHERE tenant_id = $1 AND user_id = ANY($2)
		ORDER BY created_at DESC, id DESC`
	var rows []ledgerRewardRow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read rewards: %w", err)
	}
	out := make(map[string][]referral.Reward, len(users))
	for _, r := range rows {
		out[r.UserID] = append(out[r.UserID], r.domain())
	}
	return out, nil
}

// ReadUserCommissions returns the commission rows each user earned, newest first.
func ReadUserCommissions(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string) (map[string][]referral.Commission, error) {
	const q1 = `
		SELECT id, tenant_id, affiliate_id, user_id, level, source_user_id, event_id, rule_id, tier_id,
		    rate::text AS rate, base_amount, amount, currency_id, created_at
		FROM commissions WHERE tenant_id = $1 AND user_id = ANY($2)
		ORDER BY created_at DESC, id DESC`
	var rows []ledgerCommissionRow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
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

// readAffiliateRow is an affiliates row with its converted-referral count.
type readAffiliateRow struct {
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
	Level              int            `db:"level"`
}

func (r readAffiliateRow) affiliate() (referral.Affiliate, error) {
	anc := make([]uuid.UUID, 0, len(r.Ancestors))
	for _, s := range r.Ancestors {
		id, err := uuid.Parse(s)
		if err != nil {
			return referral.Affiliate{}, fmt.Errorf("affiliate %s ancestors: %w", r.ID, err)
		}
		anc = append(anc, id)
	}
	return referral.Affiliate{ID: r.ID, TenantID: r.TenantID, UserID: r.UserID,
		AffiliateCode: r.AffiliateCode, CodeID: r.CodeID, Status: r.Status,
		ParentAffiliateID: r.ParentAffiliateID, Ancestors: anc, TierOverrideID: r.TierOverrideID,
		ConvertedReferrals: r.ConvertedReferrals, RefereeRevenue: r.RefereeRevenue,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// readAffiliateCols selects an affiliate a with its converted referrals (§5.4).
const readAffiliateCols = `a.id, a.tenant_id, a.user_id, a.affiliate_code, a.code_id, a.status,
	a.parent_affiliate_id, a.ancestors::text[] AS ancestors, a.tier_override_id, a.referee_revenue,
	(SELECT count(*) FROM referrals r WHERE r.tenant_id = a.tenant_id AND r.referrer_id = a.user_id
	    AND phoenix_successful(r.status)) AS converted_referrals,
	a.created_at, a.updated_at`

// ReadUserAffiliates returns each user's live affiliate (without its effective tier, which
// depends on the tier ladder and is derived on read).
func ReadUserAffiliates(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string) (map[string]referral.Affiliate, error) {
	q1 := `SELECT ` + readAffiliateCols + `, 0 AS level FROM affiliates a
		WHERE a.tenant_id = $1 AND a.user_id = ANY($2) AND a.deleted_at IS NULL`
	var rows []readAffiliateRow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, pq.StringArray(users)); err != nil {
		return nil, fmt.Errorf("read affiliates: %w", err)
	}
	out := make(map[string]referral.Affiliate, len(rows))
	for _, r := range rows {
		a, err := r.affiliate()
		if err != nil {
			return nil, err
		}
		out[a.UserID] = a
	}
	return out, nil
}

// ReadDownlineItem is an affiliate under a node, with its distance from it (1 = direct child).
type ReadDownlineItem struct {
	Affiliate referral.Affiliate
	Level     int
}

// ReadDownline returns one page of the affiliates under node down to depth levels, ordered by
// level, created_at and id, and how many there are in all.
func ReadDownline(ctx context.Context, q sqlx.QueryerContext, tenant string, node uuid.UUID, depth, limit, offset int) ([]ReadDownlineItem, int, error) {
	// The node's depth is the length of its own ancestors; a descendant's level is the
	// difference.
	const where = `
		FROM affiliates a, (SELECT cardinality(ancestors) AS d FROM affiliates
		                    WHERE id = $2 AND tenant_id = $1) n
		WHERE a.tenant_id = $1 AND a.deleted_at IS NULL AND a.ancestors @> ARRAY[$2::uuid]
		  AND cardinality(a.ancestors) - n.d <= $3`
	var total int
	if err := sqlx.GetContext(ctx, q, &total, `SELECT count(*) `+where, tenant, node, depth); err != nil {
		return nil, 0, fmt.Errorf("downline count: %w", err)
	}
	q1 := `SELECT ` + readAffiliateCols + `, cardinality(a.ancestors) - n.d AS level ` + where + `
		ORDER BY level, a.created_at, a.id LIMIT $4 OFFSET $5`
	var rows []readAffiliateRow
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, node, depth, limit, offset); err != nil {
		return nil, 0, fmt.Errorf("downline: %w", err)
	}
	out := make([]ReadDownlineItem, 0, len(rows))
	for _, r := range rows {
		a, err := r.affiliate()
		if err != nil {
			return nil, 0, err
		}
		out = append(out, ReadDownlineItem{Affiliate: a, Level: r.Level})
	}
	return out, total, nil
}

// ReadDownlineSize returns how many live affiliates are under node at any depth.
func ReadDownlineSize(ctx context.Context, q sqlx.QueryerContext, tenant string, node uuid.UUID) (int, error) {
	const q1 = `SELECT count(*) FROM affiliates WHERE tenant_id = $1 AND deleted_at IS NULL AND ancestors @> ARRAY[$2::uuid]`
	var n int
	if err := sqlx.GetContext(ctx, q, &n, q1, tenant, node); err != nil {
		return 0, fmt.Errorf("downline size: %w", err)
	}
	return n, nil
}

// ReadLeaderRow is one referrer's counts for a leaderboard.
type ReadLeaderRow struct {
	UserID     string
	Successful int
	Total      int
}

// ReadLeaderboard returns every referrer with at least one referral created at or after since
// (nil: all time), ordered by successful desc, total desc, user id asc.
func ReadLeaderboard(ctx context.Context, q sqlx.QueryerContext, tenant string, since *time.Time) ([]ReadLeaderRow, error) {
	const q1 = `
		SELECT referrer_id, count(*) FILTER (WHERE phoenix_successful(status)) AS successful,
		    count(*) AS total
		FROM referrals
		WHERE tenant_id = $1 AND referrer_id IS NOT NULL AND ($2::timestamptz IS NULL OR created_at >= $2)
		GROUP BY referrer_id
		ORDER BY successful DESC, total DESC, referrer_id COLLATE "C"`
	var rows []struct {
		UserID     string `db:"referrer_id"`
		Successful int    `db:"successful"`
		Total      int    `db:"total"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, q1, tenant, since); err != nil {
		return nil, fmt.Errorf("leaderboard: %w", err)
	}
	out := make([]ReadLeaderRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, ReadLeaderRow{UserID: r.UserID, Successful: r.Successful, Total: r.Total})
	}
	return out, nil
}
