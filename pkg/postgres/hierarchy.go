package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// lockHierarchy serialises the tenant's hierarchy changes (moves and deletions) until the
// transaction ends. Each change reads the paths it rewrites after taking the lock, so two moves
// that would together close a cycle (A under B and B under A at once) run one after the other
// and the second sees the first and fails.
func lockHierarchy(ctx context.Context, tx *sqlx.Tx, tenant string) error {
	const q = `SELECT pg_advisory_xact_lock(hashtext('hierarchy:' || $1))`
	if _, err := tx.ExecContext(ctx, q, tenant); err != nil {
		return fmt.Errorf("lock hierarchy: %w", err)
	}
	return nil
}

// SetUpline moves affiliate id under parent (nil: it becomes a root), taking its whole downline
// along, and returns the affiliate. The cycle check reads the parent's path only, so it costs
// O(depth); the downline's paths are rewritten by one UPDATE.
// Errors: NOT_FOUND (the affiliate or the parent), HIERARCHY_CYCLE.
func (s *Store) SetUpline(ctx context.Context, tenant string, id uuid.UUID, parent *uuid.UUID) (referral.Affiliate, error) {
	var out referral.Affiliate
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := lockHierarchy(ctx, tx, tenant); err != nil {
			return err
		}
		// Paths change only under the hierarchy lock, so they are read unlocked; the rows are
		// locked (lockSubtree) only when they are rewritten.
		path, err := affiliatePath(ctx, tx, tenant, id, "affiliate")
		if err != nil {
			return err
		}
		prefix := []uuid.UUID{}
		if parent != nil {
			parentPath, err := affiliatePath(ctx, tx, tenant, *parent, "parent affiliate")
			if err != nil {
				return err
			}
			if err := referral.CheckUpline(id, *parent, parentPath); err != nil {
				return err
			}
			prefix = referral.AncestorsUnder(parent, parentPath)
		}
		if !slices.Equal(prefix, path) {
			if err := lockSubtree(ctx, tx, tenant, id); err != nil {
				return err
			}
			if err := s.rewritePaths(ctx, tx, tenant, id, parent, len(path), prefix); err != nil {
				return err
			}
		}
		if out, err = s.affiliateByID(ctx, tx, tenant, id, false, "affiliate"); err != nil {
			return err
		}
		if slices.Equal(prefix, path) {
			return nil
		}
		return publish(ctx, tx, tenant, out.UpdatedAt, outbox.Message{Type: outbox.AffiliateUpdated, Data: apishape.NewAffiliate(out)})
	})
	return out, err
}

// rewritePaths hangs affiliate id (whose path had oldLen entries) under parent with the new
// path prefix, and rewrites its downline's paths to match.
func (s *Store) rewritePaths(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, parent *uuid.UUID, oldLen int, prefix []uuid.UUID) error {
	const node = `UPDATE affiliates SET parent_affiliate_id = $3, ancestors = $4::uuid[], updated_at = $5 WHERE tenant_id = $1 AND id = $2`
	// Descendants' paths are old prefix (oldLen entries), the node, then the path below it: the
	// prefix is swapped for the new one. Descendants of a tenant's node are the tenant's own.
	const subtree = `
		UPDATE affiliates SET ancestors = $2::uuid[] || ancestors[$3::int + 1:]
		WHERE ancestors @> ARRAY[$1]::uuid[] AND deleted_at IS NULL`
	now := s.now()
	if _, err := tx.ExecContext(ctx, node, tenant, id, parent, uuidArray(prefix), now); err != nil {
		return fmt.Errorf("move affiliate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, subtree, id, uuidArray(prefix), oldLen); err != nil {
		return fmt.Errorf("move downline: %w", err)
	}
	return nil
}

// affiliatePath returns the path (ancestors, root first) of a live affiliate of the tenant.
// Errors: NOT_FOUND naming what.
func affiliatePath(ctx context.Context, q sqlx.QueryerContext, tenant string, id uuid.UUID, what string) ([]uuid.UUID, error) {
	const sel = `SELECT ancestors::text[] FROM affiliates WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`
	var raw pq.StringArray
	if err := sqlx.GetContext(ctx, q, &raw, sel, tenant, id); err != nil {
		if isNoRows(err) {
			return nil, referral.NotFound(what)
		}
		return nil, fmt.Errorf("get affiliate path: %w", err)
	}
	return parsePath(id, raw)
}

// uuidArray renders ids as a PostgreSQL array parameter (cast with ::uuid[]).
func uuidArray(ids []uuid.UUID) pq.StringArray {
	out := make(pq.StringArray, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// Downline returns a page of the affiliates under affiliate id down to f.Depth levels, each with
// its level and effective tier, ordered by level, created_at and id, and the total count.
// Errors: NOT_FOUND.
func (s *Store) Downline(ctx context.Context, tenant string, id uuid.UUID, f referral.DownlineFilter) ([]referral.DownlineMember, int, error) {
	var (
		out   []referral.DownlineMember
		total int
	)
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		var err error
		out, total, err = downline(ctx, tx, tenant, id, f, true)
		return err
	})
	return out, total, err
}

// downline reads a page of the downline of live affiliate id (NOT_FOUND otherwise) through q,
// with the members' effective tiers when tiered. Run it in a snapshot: it reads several times.
func downline(ctx context.Context, q sqlx.QueryerContext, tenant string, id uuid.UUID, f referral.DownlineFilter, tiered bool) ([]referral.DownlineMember, int, error) {
	// Direct children come straight from the (parent_affiliate_id, created_at, id) index.
	// Deeper reads find the subtree with the GIN index; level is the path length difference.
	// Either way one scan yields the page and the total. The inner subquery (OFFSET 0 keeps the
	// planner from flattening it) projects narrow tuples at the scan, so the window count and the
	// sort never carry the paths; full rows (with converted_referrals) are read for the page only.
	const children = `
		WITH page AS (
		    SELECT s.*, count(*) OVER () AS total FROM (
		        SELECT a.id, 1 AS level, a.created_at FROM affiliates a
		        WHERE a.parent_affiliate_id = $1 AND a.deleted_at IS NULL OFFSET 0) s
		    ORDER BY s.created_at, s.id LIMIT $2 OFFSET $3)
		SELECT ` + affiliateCountedCols + `, p.level, p.total FROM page p JOIN affiliates a ON a.id = p.id
		ORDER BY p.created_at, p.id`
	const childCount = `SELECT count(*) FROM affiliates WHERE parent_affiliate_id = $1 AND deleted_at IS NULL`
	const deep = `
		WITH page AS (
		    SELECT s.*, count(*) OVER () AS total FROM (
		        SELECT a.id, cardinality(a.ancestors) - $2::int AS level, a.created_at FROM affiliates a
		        WHERE a.ancestors @> ARRAY[$1]::uuid[] AND a.deleted_at IS NULL
		          AND cardinality(a.ancestors) <= $2::int + $3::int OFFSET 0) s
		    ORDER BY s.level, s.created_at, s.id LIMIT $4 OFFSET $5)
		SELECT ` + affiliateCountedCols + `, p.level, p.total FROM page p JOIN affiliates a ON a.id = p.id
		ORDER BY p.level, p.created_at, p.id`
	const deepCount = `
		SELECT count(*) FROM affiliates
		WHERE ancestors @> ARRAY[$1]::uuid[] AND deleted_at IS NULL AND cardinality(ancestors) <= $2::int + $3::int`
	path, err := affiliatePath(ctx, q, tenant, id, "affiliate")
	if err != nil {
		return nil, 0, err
	}
	var rows []storedAffiliate
	k := len(path)
	if f.Depth <= 1 {
		err = sqlx.SelectContext(ctx, q, &rows, children, id, f.Limit, f.Offset)
	} else {
		err = sqlx.SelectContext(ctx, q, &rows, deep, id, k, f.Depth, f.Limit, f.Offset)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list downline: %w", err)
	}
	var total int
	switch {
	case len(rows) > 0:
		total = rows[0].Total
	case f.Offset == 0:
		total = 0
	default: // a page past the end carries no total: count apart
		if f.Depth <= 1 {
			err = sqlx.GetContext(ctx, q, &total, childCount, id)
		} else {
			err = sqlx.GetContext(ctx, q, &total, deepCount, id, k, f.Depth)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("count downline: %w", err)
		}
	}
	var tiers []referral.Tier
	if tiered {
		if tiers, err = loadTiers(ctx, q, tenant); err != nil {
			return nil, 0, err
		}
	}
	out := make([]referral.DownlineMember, 0, len(rows))
	for _, r := range rows {
		m, err := r.domain(tiers)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, referral.DownlineMember{Affiliate: m, Level: r.Level})
	}
	return out, total, nil
}

// storedPolicy is a hierarchy_policies row; rates are read as text to stay exact.
type storedPolicy struct {
	TenantID   string         `db:"tenant_id"`
	MaxDepth   int            `db:"max_depth"`
	LevelRates pq.StringArray `db:"level_rates"`
	Active     bool           `db:"active"`
	UpdatedAt  time.Time      `db:"updated_at"`
}

const policyCols = `tenant_id, max_depth, level_rates::text[] AS level_rates, active, updated_at`

func (r storedPolicy) domain() (referral.HierarchyPolicy, error) {
	rates := make([]referral.Rate, 0, len(r.LevelRates))
	for _, s := range r.LevelRates {
		v, err := referral.ParseRate(s)
		if err != nil {
			return referral.HierarchyPolicy{}, fmt.Errorf("hierarchy policy: stored rate %q: %w", s, err)
		}
		rates = append(rates, v)
	}
	return referral.HierarchyPolicy{TenantID: r.TenantID, MaxDepth: r.MaxDepth, LevelRates: rates,
		Active: r.Active, UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// GetHierarchyPolicy returns the tenant's hierarchy policy. Errors: NOT_FOUND (never set).
func (s *Store) GetHierarchyPolicy(ctx context.Context, tenant string) (referral.HierarchyPolicy, error) {
	const q = `SELECT ` + policyCols + ` FROM hierarchy_policies WHERE tenant_id = $1`
	var out referral.HierarchyPolicy
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var row storedPolicy
		if err := tx.GetContext(ctx, &row, q, tenant); err != nil {
			if isNoRows(err) {
				return referral.NotFound("hierarchy policy")
			}
			return fmt.Errorf("get hierarchy policy: %w", err)
		}
		var err error
		out, err = row.domain()
		return err
	})
	return out, err
}

// PutHierarchyPolicy creates or replaces the tenant's hierarchy policy and returns it.
// Errors: VALIDATION_FAILED.
func (s *Store) PutHierarchyPolicy(ctx context.Context, p referral.HierarchyPolicy) (referral.HierarchyPolicy, error) {
	const q = `
		INSERT INTO hierarchy_policies (tenant_id, max_depth, level_rates, active, updated_at)
		VALUES ($1, $2, $3::numeric[], $4, $5)
		ON CONFLICT (tenant_id) DO UPDATE SET max_depth = EXCLUDED.max_depth,
		    level_rates = EXCLUDED.level_rates, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at
		RETURNING ` + policyCols
	if err := p.Validate(); err != nil {
		return referral.HierarchyPolicy{}, err
	}
	rates := make(pq.StringArray, 0, len(p.LevelRates))
	for _, r := range p.LevelRates {
		rates = append(rates, r.String())
	}
	var out referral.HierarchyPolicy
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedPolicy
		if err := tx.GetContext(ctx, &row, q, p.TenantID, p.MaxDepth, rates, p.Active, s.now()); err != nil {
			return fmt.Errorf("put hierarchy policy: %w", err)
		}
		var err error
		out, err = row.domain()
		return err
	})
	return out, err
}
