package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// TenantRows is the number of change rows per tenant.
	TenantRows map[string]int
	// Last is the last entity of the window in ChangeKey order.
	Last ChangeKey
}

// TopTenants returns the rows of the n tenants with the most rows in the window.
func (w ChangeWindow) TopTenants(n int) map[string]int {
	names := make([]string, 0, len(w.TenantRows))
	for t := range w.TenantRows {
		names = append(names, t)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(w.TenantRows[b], w.TenantRows[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	out := make(map[string]int, min(n, len(names)))
	for _, t := range names[:min(n, len(names))] {
		out[t] = w.TenantRows[t]
	}
	return out
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

// ChangeWindow returns, deduplicated by entity and previous owner or parent, the changes visible
// to the Source (an OpenSnapshot transaction) whose transactions had not completed in the earlier
// snapshot prev: exactly the changes that committed between the two snapshots. Transactions
// below prev's xmin had completed in prev, so only xid ≥ xmin(prev) is scanned.
func (s Source) ChangeWindow(ctx context.Context, prev string) (ChangeWindow, error) {
	w, _, err := s.ChangeChunk(ctx, prev, "", ChangeKey{}, 0)
	return w, err
}

// ChangeKey orders the entities of a window: tenant, entity, id.
type ChangeKey struct{ TenantID, Entity, EntityID string }

// ChangeChunk is ChangeWindow restricted to the transactions the snapshot upto shows as completed
// ("" = the Source's own snapshot) and to at most limit entities (0 = all) ordered after after:
// the bounded part of a long catch-up. more reports that entities remain after the chunk's last
// (Last).
func (s Source) ChangeChunk(ctx context.Context, prev, upto string, after ChangeKey, limit int) (w ChangeWindow, more bool, err error) {
	const q1 = `
		SELECT tenant_id, entity, entity_id,
		    array_remove(array_agg(DISTINCT old_owner), NULL) AS old_owners,
		    array_remove(array_agg(DISTINCT old_parent), NULL) AS old_parents,
		    count(*) AS n, max(seq) AS max_seq,
		    extract(epoch FROM clock_timestamp() - min(changed_at))::float8 AS age
		FROM changes
		WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)
		  AND pg_visible_in_snapshot(xid, coalesce($2::pg_snapshot, pg_current_snapshot()))
		  AND (tenant_id, entity, entity_id) > ($3, $4, $5)
		GROUP BY tenant_id, entity, entity_id
		ORDER BY tenant_id, entity, entity_id
		LIMIT $6`
	var rows []struct {
		TenantID   string         `db:"tenant_id"`
		Entity     string         `db:"entity"`
		EntityID   string         `db:"entity_id"`
		OldOwners  pq.StringArray `db:"old_owners"`
		OldParents pq.StringArray `db:"old_parents"`
		N          int            `db:"n"`
		MaxSeq     int64          `db:"max_seq"`
		Age        float64        `db:"age"`
	}
	var bound, lim any
	if upto != "" {
		bound = upto
	}
	if limit > 0 {
		lim = limit + 1
	}
	w.TenantRows = map[string]int{}
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, prev, bound, after.TenantID, after.Entity, after.EntityID, lim); err != nil {
		return w, false, fmt.Errorf("read changes: %w", err)
	}
	if limit > 0 && len(rows) > limit {
		rows, more = rows[:limit], true
	}
	for _, r := range rows {
		// One change per previous owner and per previous parent, and one that only says the
		// entity changed.
		c := Change{TenantID: r.TenantID, Entity: r.Entity, EntityID: r.EntityID}
		w.Changes = append(w.Changes, c)
		for _, o := range r.OldOwners {
			c := c
			c.OldOwner = &o
			w.Changes = append(w.Changes, c)
		}
		for _, o := range r.OldParents {
			c := c
			c.OldParent = &o
			w.Changes = append(w.Changes, c)
		}
		w.Rows += r.N
		w.TenantRows[r.TenantID] += r.N
		w.MaxSeq = max(w.MaxSeq, r.MaxSeq)
		w.Age = max(w.Age, time.Duration(r.Age*float64(time.Second)))
		w.Last = ChangeKey{r.TenantID, r.Entity, r.EntityID}
	}
	return w, more, nil
}

// Backlog is what the change log holds that a reader positioned at a snapshot has not applied.
type Backlog struct {
	// Rows is the number of committed change rows not yet applied.
	Rows int
	// Age is how long ago the oldest of them was recorded (0 when none).
	Age time.Duration
	// Tenants is the number of rows per tenant, for the top tenants only (at most top).
	Tenants map[string]int
}

// Backlog returns the committed changes whose transactions had not completed in the snapshot
// prev, with the top tenants by pending rows. It reads through the Source's queryer (the pool:
// it is asked while rounds fail, to keep the gauges moving).
func (s Source) Backlog(ctx context.Context, prev string, top int) (Backlog, error) {
	const q1 = `
		SELECT tenant_id, count(*) AS n, extract(epoch FROM clock_timestamp() - min(changed_at))::float8 AS age
		FROM changes
		WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)
		GROUP BY tenant_id ORDER BY n DESC, tenant_id`
	var rows []struct {
		TenantID string  `db:"tenant_id"`
		N        int     `db:"n"`
		Age      float64 `db:"age"`
	}
	b := Backlog{Tenants: map[string]int{}}
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, prev); err != nil {
		return b, fmt.Errorf("read backlog: %w", err)
	}
	for i, r := range rows {
		b.Rows += r.N
		b.Age = max(b.Age, time.Duration(r.Age*float64(time.Second)))
		if i < top {
			b.Tenants[r.TenantID] = r.N
		}
	}
	return b, nil
}

// Identity names the database a reader's position belongs to (SPEC §7): the random id of
// phoenix_meta, the cluster's system_identifier and its current timeline, "uuid/sysid/timeline".
// A restored copy of the cluster keeps phoenix_meta and the system identifier, a promoted
// standby or a point-in-time recovery moves to a new timeline; PositionCheck catches the copy
// that neither changes.
func (s Source) Identity(ctx context.Context) (string, error) {
	const q1 = `SELECT m.database_id::text || '/' || c.system_identifier::text || '/' || k.timeline_id::text
		FROM phoenix_meta m, pg_control_system() c, pg_control_checkpoint() k`
	var id string
	if err := sqlx.GetContext(ctx, s.q, &id, q1); err != nil {
		return "", fmt.Errorf("database identity: %w", err)
	}
	return id, nil
}

// PositionCheck is what the change log says about a saved position.
type PositionCheck struct {
	// Ahead reports that the position's snapshot lies ahead of the database's current one: it
	// was taken of a later state than this database has reached (a restored backup).
	Ahead bool
	// MarkAt is when the change row the position last applied (its seq) was recorded, in Unix
	// µs; 0 when the row is not in the log.
	MarkAt int64
	// LastSeq is the last seq the change log has handed out (0 before any).
	LastSeq int64
}

// CheckPosition looks at a saved position's snapshot and last applied seq against the change
// log the Source sees.
func (s Source) CheckPosition(ctx context.Context, snap string, seq int64) (PositionCheck, error) {
	const q1 = `SELECT
		    pg_snapshot_xmax($1::pg_snapshot) > pg_snapshot_xmax(pg_current_snapshot()) AS ahead,
		    coalesce((SELECT (extract(epoch FROM changed_at) * 1000000)::bigint FROM changes WHERE seq = $2), 0) AS mark_at,
		    coalesce((SELECT last_value FROM changes_seq_seq WHERE is_called), 0) AS last_seq`
	var row struct {
		Ahead   bool  `db:"ahead"`
		MarkAt  int64 `db:"mark_at"`
		LastSeq int64 `db:"last_seq"`
	}
	if err := sqlx.GetContext(ctx, s.q, &row, q1, snap, seq); err != nil {
		return PositionCheck{}, fmt.Errorf("check position: %w", err)
	}
	return PositionCheck{Ahead: row.Ahead, MarkAt: row.MarkAt, LastSeq: row.LastSeq}, nil
}

// MarkAt returns when the change row seq was recorded, in Unix µs (0 when it is not in the log).
func (s Source) MarkAt(ctx context.Context, seq int64) (int64, error) {
	const q1 = `SELECT coalesce((SELECT (extract(epoch FROM changed_at) * 1000000)::bigint FROM changes WHERE seq = $1), 0)`
	var at int64
	if err := sqlx.GetContext(ctx, s.q, &at, q1, seq); err != nil {
		return 0, fmt.Errorf("change mark: %w", err)
	}
	return at, nil
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
// snapshot snap (so a reader positioned at snap has applied them), except the row keep (the
// reader's last applied seq, whose presence tells it the log was not truncated), and returns how
// many it deleted.
func PruneChanges(ctx context.Context, db *sqlx.DB, before time.Time, snap string, keep int64) (int64, error) {
	const q = `DELETE FROM changes WHERE changed_at < $1 AND pg_visible_in_snapshot(xid, $2::pg_snapshot) AND seq <> $3`
	var n int64
	err := transact(ctx, db, txPrivate, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, q, before, snap, keep)
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

// StreamTenantUsers calls fn with every user id that owns any projected per-user data (codes,
// referrals on either side, rewards, affiliates, commissions; deleted rows included), in order
// of tenant and user, at most chunk users at a time and one tenant per call. The Source must be
// a transaction (OpenSnapshot): the ids come from a server-side cursor, so memory holds one
// chunk whatever the database's size.
func (s Source) StreamTenantUsers(ctx context.Context, chunk int, fn func(tenant string, users []string) error) error {
	const declare = `
		DECLARE phoenix_tenant_users NO SCROLL CURSOR FOR
		SELECT tenant_id, owner_user_id AS user_id FROM referral_codes WHERE owner_user_id IS NOT NULL
		UNION SELECT tenant_id, referee_id FROM referrals
		UNION SELECT tenant_id, referrer_id FROM referrals WHERE referrer_id IS NOT NULL
		UNION SELECT tenant_id, user_id FROM rewards
		UNION SELECT tenant_id, user_id FROM affiliates
		UNION SELECT tenant_id, user_id FROM commissions
		ORDER BY 1, 2`
	rows, err := s.q.QueryContext(ctx, declare)
	if err != nil {
		return fmt.Errorf("tenant users: %w", err)
	}
	rows.Close()
	defer func() {
		if r, err := s.q.QueryContext(context.WithoutCancel(ctx), `CLOSE phoenix_tenant_users`); err == nil {
			r.Close()
		}
	}()
	for {
		var part []struct {
			TenantID string `db:"tenant_id"`
			UserID   string `db:"user_id"`
		}
		if err := sqlx.SelectContext(ctx, s.q, &part, `FETCH `+strconv.Itoa(chunk)+` FROM phoenix_tenant_users`); err != nil {
			return fmt.Errorf("tenant users: %w", err)
		}
		if len(part) == 0 {
			return nil
		}
		for i := 0; i < len(part); {
			j := i
			users := []string{}
			for ; j < len(part) && part[j].TenantID == part[i].TenantID; j++ {
				users = append(users, part[j].UserID)
			}
			if err := fn(part[i].TenantID, users); err != nil {
				return err
			}
			i = j
		}
	}
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
	// Referrer is a referral's referrer ("" for other entities, or a referral without one).
	Referrer string
}

// Owners returns, per entity id, the users whose per-user read models the entity's current
// row touches (for referrals both sides; for rewards and commissions the beneficiary; for codes
// the owner; for affiliates the user) and the code strings of codes and affiliates. Rows that no
// longer exist are absent from the map; soft-deleted rows are present. Ids are matched as uuids
// against the primary key (an id that is no uuid names no row), so each costs one index probe.
func (s Source) Owners(ctx context.Context, tenant, entity string, ids []string) (map[string]Owner, error) {
	keys := make(pq.StringArray, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			keys = append(keys, u.String())
		}
	}
	var q1 string
	switch entity {
	case "code":
		q1 = `SELECT id::text AS id, coalesce(owner_user_id, '') AS a, code AS b FROM referral_codes WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	case "referral":
		q1 = `SELECT id::text AS id, coalesce(referrer_id, '') AS a, referee_id AS b FROM referrals WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	case "reward":
		q1 = `SELECT id::text AS id, user_id AS a, '' AS b FROM rewards WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	case "commission":
		q1 = `SELECT id::text AS id, user_id AS a, '' AS b FROM commissions WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	case "affiliate":
		q1 = `SELECT id::text AS id, user_id AS a, affiliate_code AS b FROM affiliates WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	default:
		return map[string]Owner{}, nil
	}
	var rows []struct {
		ID string `db:"id"`
		A  string `db:"a"`
		B  string `db:"b"`
	}
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, keys); err != nil {
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
			o.Referrer = r.A
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

// ReferralsByID returns the tenant's referrals with the given ids (ids that are no uuid name
// none), found by primary key.
func (s Source) ReferralsByID(ctx context.Context, tenant string, ids []string) ([]referral.Referral, error) {
	keys := make(pq.StringArray, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			keys = append(keys, u.String())
		}
	}
	q1 := `SELECT ` + referralCols + ` FROM referrals WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	var rows []storedReferral
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, keys); err != nil {
		return nil, fmt.Errorf("read referrals: %w", err)
	}
	out := make([]referral.Referral, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.domain())
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

// RewardsByID returns the tenant's rewards with the given ids (ids that are no uuid name none),
// found by primary key.
func (s Source) RewardsByID(ctx context.Context, tenant string, ids []string) ([]referral.Reward, error) {
	keys := make(pq.StringArray, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			keys = append(keys, u.String())
		}
	}
	const q1 = `SELECT ` + rewardCols + ` FROM rewards WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	var rows []ledgerRewardRow
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, keys); err != nil {
		return nil, fmt.Errorf("read rewards: %w", err)
	}
	out := make([]referral.Reward, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.domain())
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

// CommissionsByID returns the tenant's commissions with the given ids (ids that are no uuid name
// none), found by primary key.
func (s Source) CommissionsByID(ctx context.Context, tenant string, ids []string) ([]referral.Commission, error) {
	keys := make(pq.StringArray, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			keys = append(keys, u.String())
		}
	}
	const q1 = `SELECT ` + commissionCols + ` FROM commissions WHERE tenant_id = $1 AND id = ANY($2::uuid[])`
	var rows []ledgerCommissionRow
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, keys); err != nil {
		return nil, fmt.Errorf("read commissions: %w", err)
	}
	out := make([]referral.Commission, 0, len(rows))
	for _, r := range rows {
		c, err := r.domain()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
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

// ReferrerCounts returns, for each of users that made any referral, its successful and total
// referral counts over referrals created at or after each of since (nil: all time), in the order
// of since, so a referrer's leaderboard rows are recomputed from its own referrals (an index
// range of the referrer), never from the tenant's.
func (s Source) ReferrerCounts(ctx context.Context, tenant string, users []string, since []*time.Time) (map[string][]referral.LeaderboardEntry, error) {
	const q1 = `
		SELECT r.referrer_id AS user_id, p.i,
		       count(*) FILTER (WHERE phoenix_successful(r.status)) AS successful, count(*) AS total
		FROM referrals r JOIN unnest($3::timestamptz[]) WITH ORDINALITY AS p(since, i) ON r.created_at >= p.since
		WHERE r.tenant_id = $1 AND r.referrer_id = ANY($2)
		GROUP BY r.referrer_id, p.i`
	bounds := make(pq.StringArray, len(since))
	for i, t := range since {
		bounds[i] = "-infinity"
		if t != nil {
			bounds[i] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	var rows []struct {
		UserID     string `db:"user_id"`
		I          int    `db:"i"`
		Successful int64  `db:"successful"`
		Total      int64  `db:"total"`
	}
	if err := sqlx.SelectContext(ctx, s.q, &rows, q1, tenant, pq.StringArray(users), bounds); err != nil {
		return nil, fmt.Errorf("referrer counts: %w", err)
	}
	out := map[string][]referral.LeaderboardEntry{}
	for _, r := range rows {
		e := out[r.UserID]
		if e == nil {
			e = make([]referral.LeaderboardEntry, len(since))
			out[r.UserID] = e
		}
		e[r.I-1] = referral.LeaderboardEntry{UserID: r.UserID, Successful: r.Successful, Total: r.Total}
	}
	return out, nil
}

// ReferrersCreatedBetween returns the referrers with a referral created in [from, to): those
// whose counts over a period changed when its start moved from from to to.
func (s Source) ReferrersCreatedBetween(ctx context.Context, tenant string, from, to time.Time) ([]string, error) {
	const q1 = `SELECT DISTINCT referrer_id FROM referrals
		WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 AND referrer_id IS NOT NULL`
	var out []string
	if err := sqlx.SelectContext(ctx, s.q, &out, q1, tenant, from, to); err != nil {
		return nil, fmt.Errorf("referrers between: %w", err)
	}
	return out, nil
}

// SampleUsers returns up to n of the tenant's referrers and code owners from after a starting
// point (a random string: the sample moves around the tenant), wrapping to the beginning,
// along the referrer and owner indexes — the cost is n, not the tenant.
func (s Source) SampleUsers(ctx context.Context, tenant, from string, n int) ([]string, error) {
	const q1 = `
		(SELECT DISTINCT referrer_id FROM (SELECT referrer_id FROM referrals
		    WHERE tenant_id = $1 AND referrer_id >= $2 ORDER BY referrer_id LIMIT $3) r)
		UNION
		(SELECT DISTINCT owner_user_id FROM (SELECT owner_user_id FROM referral_codes
		    WHERE tenant_id = $1 AND deleted_at IS NULL AND owner_user_id >= $2 ORDER BY owner_user_id LIMIT $3) c)`
	var out []string
	for _, start := range []string{from, ""} {
		var part []string
		if err := sqlx.SelectContext(ctx, s.q, &part, q1, tenant, start, n); err != nil {
			return nil, fmt.Errorf("sample users: %w", err)
		}
		for _, u := range part {
			if !slices.Contains(out, u) && len(out) < n {
				out = append(out, u)
			}
		}
		if len(out) >= n {
			break
		}
	}
	return out, nil
}

// Leaderboard returns every referrer with at least one referral created at or after since
// (nil: all time), ordered and ranked as ReferralService.Leaderboard ranks them.
func (s Source) Leaderboard(ctx context.Context, tenant string, since *time.Time) ([]referral.LeaderboardEntry, error) {
	return leaderboard(ctx, s.q, tenant, since, nil)
}
