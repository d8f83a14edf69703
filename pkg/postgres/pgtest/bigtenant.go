package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// BigTenant describes a tenant SeedBigTenant writes: Referrals players, each referred once by
// one of Referrers affiliates. The affiliates form one tree (node i hangs under (i-1)/Fanout),
// each owns an unlimited referral code, and the tenant has one deposit campaign, three tiers,
// one commission rule and an active 3-level hierarchy policy, as a real promotion would.
type BigTenant struct {
	Tenant    string
	Referrals int
	// Referrers is the number of referring affiliates (default Referrals/10, at least 1).
	Referrers int
	// Fanout is the tree's branching factor (default 3: 100,000 nodes are 11 levels deep).
	Fanout int
}

// BigTenantData is what SeedBigTenant wrote, with the ids a workload needs to address it.
type BigTenantData struct {
	BigTenant
	Campaign uuid.UUID
	// MaxDepth is the depth of the tree's deepest node (the root is at depth 0).
	MaxDepth int
	// Rows counts the rows written per table.
	Rows   map[string]int
	Took   time.Duration
	prefix [7]byte
}

// Seeded row kinds, the byte after the prefix in a seeded id.
const (
	bigAffiliate byte = iota + 1
	bigCode
	bigReferral
	bigReward
)

// id is the seeded row's id: the run's random prefix, the kind and the index, shaped as a
// version-4 UUID. Ids are computed rather than kept, so seeding a million rows holds none.
func (d *BigTenantData) id(kind byte, i int) uuid.UUID {
	var u uuid.UUID
	copy(u[:7], d.prefix[:])
	u[7] = kind
	binary.BigEndian.PutUint64(u[8:], uint64(i))
	u[6] = (u[6] & 0x0f) | 0x40 // version 4
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant (i stays far below 2^62)
	return u
}

// AffiliateID is the id of affiliate i (0 ≤ i < Referrers).
func (d *BigTenantData) AffiliateID(i int) uuid.UUID { return d.id(bigAffiliate, i) }

// CodeID is the id of affiliate i's referral code.
func (d *BigTenantData) CodeID(i int) uuid.UUID { return d.id(bigCode, i) }

// ReferralID is the id of player i's referral.
func (d *BigTenantData) ReferralID(i int) uuid.UUID { return d.id(bigReferral, i) }

// Referrer is affiliate i's user id; it owns the code Code(i).
func (d *BigTenantData) Referrer(i int) string { return fmt.Sprintf("aff%d", i) }

// Code is affiliate i's referral code.
func (d *BigTenantData) Code(i int) string { return fmt.Sprintf("AFF%d", i) }

// Player is the user id of the i-th referred player (0 ≤ i < Referrals).
func (d *BigTenantData) Player(i int) string { return fmt.Sprintf("p%d", i) }

// ReferrerOf is the index of the affiliate that referred player i.
func (d *BigTenantData) ReferrerOf(i int) int { return i % d.Referrers }

// Parent is the index of affiliate i's parent (-1 for the root).
func (d *BigTenantData) Parent(i int) int {
	if i == 0 {
		return -1
	}
	return (i - 1) / d.Fanout
}

// Depth is affiliate i's depth in the tree.
func (d *BigTenantData) Depth(i int) int {
	n := 0
	for i > 0 {
		i, n = d.Parent(i), n+1
	}
	return n
}

// Status is the seeded status of player i's referral: 40% converted, 5% verified, 5% rejected,
// 50% pending.
func (d *BigTenantData) Status(i int) string {
	switch s := i % 20; {
	case s < 8:
		return "converted"
	case s == 8:
		return "verified"
	case s == 9:
		return "rejected"
	default:
		return "pending"
	}
}

// DeepPlayers returns the indexes of up to n players with a pending referral whose referrer is
// at depth ≥ 3, so that a deposit of theirs converts the referral and pays commissions on 3
// levels above the direct affiliate.
func (d *BigTenantData) DeepPlayers(n int) []int {
	var out []int
	for i := 0; i < d.Referrals && len(out) < n; i++ {
		if d.Status(i) == "pending" && d.Depth(d.ReferrerOf(i)) >= 3 {
			out = append(out, i)
		}
	}
	return out
}

// SeedBigTenant writes the tenant t describes with COPY, in one transaction with triggers off
// (session_replication_role = replica: no change-log rows, no foreign-key checks), then
// ANALYZEs the tables, since autovacuum may be off. A million referrals take about a minute.
func SeedBigTenant(ctx context.Context, db *sqlx.DB, t BigTenant) (*BigTenantData, error) {
	start := time.Now()
	if t.Referrers <= 0 {
		t.Referrers = max(t.Referrals/10, 1)
	}
	if t.Fanout <= 0 {
		t.Fanout = 3
	}
	d := &BigTenantData{BigTenant: t, Campaign: uuid.New(), Rows: map[string]int{}}
	rand.Read(d.prefix[:])
	d.MaxDepth = d.Depth(t.Referrers - 1)
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	created := now.Add(-120 * 24 * time.Hour)
	if err := d.seedRules(ctx, tx, created); err != nil {
		return nil, err
	}
	for _, step := range []struct {
		table string
		cols  []string
		fill  func(row func(...any) error) error
	}{
		{"referral_codes", []string{"id", "tenant_id", "code", "owner_user_id", "usage_limit", "uses", "active",
			"source", "generated", "created_at", "updated_at"}, func(row func(...any) error) error {
			for a := range t.Referrers {
				uses := t.Referrals / t.Referrers
				if a < t.Referrals%t.Referrers {
					uses++
				}
				if err := row(d.CodeID(a), t.Tenant, d.Code(a), d.Referrer(a), nil, uses, true, "affiliate", false, created, created); err != nil {
					return err
				}
			}
			return nil
		}},
		{"affiliates", []string{"id", "tenant_id", "user_id", "affiliate_code", "code_id", "status",
			"parent_affiliate_id", "ancestors", "created_at", "updated_at"}, func(row func(...any) error) error {
			for a := range t.Referrers {
				var parent any
				if p := d.Parent(a); p >= 0 {
					parent = d.AffiliateID(p)
				}
				at := created.Add(time.Duration(a) * time.Millisecond)
				if err := row(d.AffiliateID(a), t.Tenant, d.Referrer(a), d.Code(a), d.CodeID(a), "active",
					parent, d.ancestors(a), at, at); err != nil {
					return err
				}
			}
			return nil
		}},
		{"referrals", []string{"id", "tenant_id", "code_id", "code", "campaign_id", "referrer_id", "referee_id",
			"status", "metadata", "created_at", "updated_at", "converted_at", "verified_at", "rejected_at"}, func(row func(...any) error) error {
			for i := range t.Referrals {
				at := d.createdAt(i, now)
				var camp, conv, ver, rej any
				switch d.Status(i) {
				case "converted":
					camp, conv = d.Campaign, at.Add(time.Hour)
				case "verified":
					camp, conv, ver = d.Campaign, at.Add(time.Hour), at.Add(2*time.Hour)
				case "rejected":
					rej = at.Add(time.Hour)
				}
				r := d.ReferrerOf(i)
				if err := row(d.ReferralID(i), t.Tenant, d.CodeID(r), d.Code(r), camp, d.Referrer(r), d.Player(i),
					d.Status(i), `{"source": "seed"}`, at, at, conv, ver, rej); err != nil {
					return err
				}
			}
			return nil
		}},
		{"campaign_qualifications", []string{"tenant_id", "campaign_id", "referral_id", "event_id", "created_at"}, func(row func(...any) error) error {
			for i := range t.Referrals {
				if d.successful(i) {
					if err := row(t.Tenant, d.Campaign, d.ReferralID(i), fmt.Sprintf("seed_dep_%d", i), d.createdAt(i, now).Add(time.Hour)); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"rewards", []string{"id", "tenant_id", "user_id", "role", "campaign_id", "referral_id", "event_id",
			"currency_id", "amount", "created_at"}, func(row func(...any) error) error {
			for i := range t.Referrals {
				if !d.successful(i) {
					continue
				}
				at, ev, ref := d.createdAt(i, now).Add(time.Hour), fmt.Sprintf("seed_dep_%d", i), d.ReferralID(i)
				if err := row(d.id(bigReward, 2*i), t.Tenant, d.Referrer(d.ReferrerOf(i)), "referrer", d.Campaign, ref, ev, "points", 100, at); err != nil {
					return err
				}
				if err := row(d.id(bigReward, 2*i+1), t.Tenant, d.Player(i), "referee", d.Campaign, ref, ev, "points", 50, at); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		n, err := copyRows(ctx, tx, step.table, step.cols, step.fill)
		if err != nil {
			return nil, err
		}
		d.Rows[step.table] = n
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE campaigns, affiliate_tiers, commission_rules, hierarchy_policies,
		referral_codes, affiliates, referrals, campaign_qualifications, rewards`); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	d.Took = time.Since(start)
	return d, nil
}

// seedRules writes the campaign, the tier ladder, the commission rule and the hierarchy policy.
func (d *BigTenantData) seedRules(ctx context.Context, tx *sqlx.Tx, at time.Time) error {
	t := d.Tenant
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO campaigns (id, tenant_id, name, qualifying_event, qualifying_filter, referrer_rewards, referee_rewards,
			active, created_at, updated_at) VALUES ($1, $2, 'Welcome deposit', 'deposit.completed', '{"amount": {"gte": 1000}}',
			'{"wallet": [{"currency_id": "points", "amount": 100}]}', '{"wallet": [{"currency_id": "points", "amount": 50}]}', true, $3, $3)`,
			[]any{d.Campaign, t, at}},
		{`INSERT INTO affiliate_tiers (id, tenant_id, name, commission_rate, min_referrals, min_referee_revenue, priority, created_at, updated_at)
			VALUES (gen_random_uuid(), $1, 'Bronze', 0.1, 0, 0, 1, $2, $2), (gen_random_uuid(), $1, 'Silver', 0.15, 20, 100000, 2, $2, $2),
			(gen_random_uuid(), $1, 'Gold', 0.2, 100, 1000000, 3, $2, $2)`, []any{t, at}},
		{`INSERT INTO commission_rules (id, tenant_id, name, event_type, commission_field, use_tier_rate, currency_id, active, created_at, updated_at)
			VALUES (gen_random_uuid(), $1, 'Deposit share', 'deposit.completed', 'amount', true, 'EUR', true, $2, $2)`, []any{t, at}},
		{`INSERT INTO hierarchy_policies (tenant_id, max_depth, level_rates, active, updated_at)
			VALUES ($1, 3, '{0.05,0.03,0.01}', true, $2)`, []any{t, at}},
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
			return fmt.Errorf("seed %s rules: %w", t, err)
		}
	}
	return nil
}

func (d *BigTenantData) successful(i int) bool {
	s := d.Status(i)
	return s == "converted" || s == "verified"
}

// createdAt spreads the referrals over the last 90 days.
func (d *BigTenantData) createdAt(i int, now time.Time) time.Time {
	return now.Add(-time.Duration(i%90)*24*time.Hour - time.Duration(i%86400)*time.Second - time.Minute)
}

// ancestors is affiliate i's materialised path (root first) as a PostgreSQL array literal.
func (d *BigTenantData) ancestors(i int) string {
	var ids []string
	for p := d.Parent(i); p >= 0; p = d.Parent(p) {
		ids = append(ids, d.AffiliateID(p).String())
	}
	for l, r := 0, len(ids)-1; l < r; l, r = l+1, r-1 {
		ids[l], ids[r] = ids[r], ids[l]
	}
	return "{" + strings.Join(ids, ",") + "}"
}

// copyRows streams the rows fill produces into table through COPY and returns how many.
func copyRows(ctx context.Context, tx *sqlx.Tx, table string, cols []string, fill func(row func(...any) error) error) (int, error) {
	stmt, err := tx.PreparexContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	defer stmt.Close()
	n := 0
	err = fill(func(vals ...any) error {
		n++
		_, err := stmt.ExecContext(ctx, vals...)
		return err
	})
	if err == nil {
		_, err = stmt.ExecContext(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	return n, nil
}
