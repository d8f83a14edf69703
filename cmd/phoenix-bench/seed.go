package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// CodeRef is a seeded referral code.
type CodeRef struct {
	ID    uuid.UUID
	Code  string
	Owner string
}

// TenantData is what the workloads need to know about one seeded tenant.
type TenantData struct {
	ID         string
	Players    int
	HotPlayers []string  // players who own a code and refer others
	HotCodes   []CodeRef // their codes (unlimited)
	AffUsers   []string  // affiliates' user ids
	AffIDs     []uuid.UUID
	EventUsers []string // referees of affiliates at depth ≥ 3 (a 3-level commission walk)
	Campaign   uuid.UUID
}

// TreeData is the hierarchy tenant: one tree whose first child's subtree is the one moved.
type TreeData struct {
	Tenant string
	Root   uuid.UUID
	Mover  uuid.UUID // root of the moved subtree (MoveNodes nodes)
	Other  uuid.UUID // root of the rest
	Deep   uuid.UUID // a deepest node (cycle check target)
	Inner  []uuid.UUID
	InnerU []string
	MaxDep int
	Nodes  int
}

// Dataset is the whole seeded data set.
type Dataset struct {
	Tenants []*TenantData
	Tree    TreeData
}

// Main is the main tenant.
func (d *Dataset) Main() *TenantData { return d.Tenants[0] }

type copier struct {
	ctx  context.Context
	stmt *sqlx.Stmt
	rows int
}

func (c *copier) row(vals ...any) error {
	c.rows++
	_, err := c.stmt.ExecContext(c.ctx, vals...)
	return err
}

// copyInto streams rows into table through COPY.
func copyInto(ctx context.Context, tx *sqlx.Tx, table string, cols []string, fill func(c *copier) error) (int, error) {
	stmt, err := tx.PreparexContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	c := &copier{ctx: ctx, stmt: stmt}
	if err := fill(c); err != nil {
		stmt.Close()
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	return c.rows, stmt.Close()
}

func uuidArray(ids []uuid.UUID) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(id.String())
	}
	sb.WriteByte('}')
	return sb.String()
}

// seed writes the data set with COPY, triggers off (no change-log rows: the Query Gateway starts
// afterwards and builds its read models from the tables).
func (b *Bench) seed(ctx context.Context) error {
	t0 := time.Now()
	b.data = &Dataset{}
	for i := range b.cfg.Tenants {
		p, a, h := b.cfg.Players, b.cfg.Affiliates, b.cfg.History
		if i > 0 {
			p, a, h = max(p/10, 100), max(a/10, 20), h/10
		}
		td, counts, err := b.seedTenant(ctx, fmt.Sprintf("bench-t%d", i), p, a, h)
		if err != nil {
			return err
		}
		b.data.Tenants = append(b.data.Tenants, td)
		b.logf("seeded tenant %s: %s", td.ID, counts)
		if i == 0 {
			b.seedInfo = append(b.seedInfo, fmt.Sprintf("Main tenant `%s`: %s.", td.ID, counts))
		}
	}
	if b.cfg.Tenants > 1 {
		b.seedInfo = append(b.seedInfo, fmt.Sprintf("%d more tenants with a tenth of the main tenant's players, affiliates and events each.", b.cfg.Tenants-1))
	}
	if err := b.seedTree(ctx); err != nil {
		return err
	}
	tr := b.data.Tree
	b.seedInfo = append(b.seedInfo, fmt.Sprintf("Hierarchy tenant `%s`: one tree of %d affiliates, depth up to %d; the moved subtree has %d nodes.",
		tr.Tenant, tr.Nodes, tr.MaxDep, b.cfg.MoveNodes))
	if _, err := b.db.ExecContext(ctx, "ANALYZE"); err != nil {
		return err
	}
	b.seedInfo = append(b.seedInfo, fmt.Sprintf("Seeding took %.1f s (COPY, triggers off).", time.Since(t0).Seconds()))
	b.logf("seed done in %.1fs", time.Since(t0).Seconds())
	return nil
}

func (b *Bench) seedTenant(ctx context.Context, tenant string, players, affiliates, history int) (*TenantData, string, error) {
	td := &TenantData{ID: tenant, Players: players}
	now := time.Now().UTC().Truncate(time.Microsecond)
	day := 24 * time.Hour
	tx, err := b.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, "", err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return nil, "", err
	}

	// Campaigns, tiers, the commission rule and the 3-level policy.
	c1, c2, c3 := uuid.New(), uuid.New(), uuid.New()
	td.Campaign = c1
	created := now.Add(-120 * day)
	_, err = copyInto(ctx, tx, "campaigns", []string{"id", "tenant_id", "name", "qualifying_event", "qualifying_filter",
		"referrer_rewards", "referee_rewards", "active", "starts_at", "ends_at", "created_at", "updated_at"}, func(c *copier) error {
		if err := c.row(c1, tenant, "Welcome deposit", "deposit.completed", `{"amount": {"gte": 1000}}`,
			`{"wallet": [{"currency_id": "points", "amount": 100}]}`, `{"wallet": [{"currency_id": "points", "amount": 50}]}`,
			true, nil, nil, created, created); err != nil {
			return err
		}
		if err := c.row(c2, tenant, "Instant promo", "referral.applied", nil,
			`{"wallet": []}`, `{"wallet": [{"currency_id": "points", "amount": 10}]}`,
			true, nil, nil, created, created); err != nil {
			return err
		}
		return c.row(c3, tenant, "Last summer", "deposit.completed", nil,
			`{"wallet": [{"currency_id": "points", "amount": 200}]}`, `{"wallet": []}`,
			false, created, created.Add(30*day), created, created)
	})
	if err != nil {
		return nil, "", err
	}
	bronze := uuid.New()
	_, err = copyInto(ctx, tx, "affiliate_tiers", []string{"id", "tenant_id", "name", "commission_rate", "min_referrals",
		"min_referee_revenue", "priority", "created_at", "updated_at"}, func(c *copier) error {
		if err := c.row(bronze, tenant, "Bronze", "0.100000", 0, 0, 1, created, created); err != nil {
			return err
		}
		if err := c.row(uuid.New(), tenant, "Silver", "0.150000", 20, 100000, 2, created, created); err != nil {
			return err
		}
		return c.row(uuid.New(), tenant, "Gold", "0.200000", 100, 1000000, 3, created, created)
	})
	if err != nil {
		return nil, "", err
	}
	rule := uuid.New()
	_, err = copyInto(ctx, tx, "commission_rules", []string{"id", "tenant_id", "name", "event_type", "event_filter",
		"commission_field", "use_tier_rate", "custom_rate", "currency_id", "active", "created_at", "updated_at"}, func(c *copier) error {
		return c.row(rule, tenant, "Deposit share", "deposit.completed", nil, "amount", true, nil, "EUR", true, created, created)
	})
	if err != nil {
		return nil, "", err
	}
	levelRates := []string{"0.050000", "0.030000", "0.010000"}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hierarchy_policies (tenant_id, max_depth, level_rates, active, updated_at)
		VALUES ($1, 3, $2::numeric(7,6)[], true, $3)`, tenant, "{"+strings.Join(levelRates, ",")+"}", created); err != nil {
		return nil, "", err
	}

	// Affiliates: a forest of binary trees of 8,191 nodes (depth 0–12).
	const treeSize = 8191
	affIDs := make([]uuid.UUID, affiliates)
	affCode := make([]uuid.UUID, affiliates)
	anc := make([][]uuid.UUID, affiliates)
	depth := make([]int, affiliates)
	pidx := make([]int, affiliates)
	uses := map[uuid.UUID]int{}
	for a := range affiliates {
		affIDs[a], affCode[a] = uuid.New(), uuid.New()
		pidx[a] = -1
		if j := a % treeSize; j > 0 {
			p := a - j + (j-1)/2
			pidx[a] = p
			anc[a] = append(append([]uuid.UUID{}, anc[p]...), affIDs[p])
			depth[a] = depth[p] + 1
		}
		td.AffUsers = append(td.AffUsers, fmt.Sprintf("aff%d", a))
	}
	td.AffIDs = affIDs
	hot := max(players/10, 1)
	playerCode := make([]uuid.UUID, hot)
	for i := range hot {
		playerCode[i] = uuid.New()
		td.HotPlayers = append(td.HotPlayers, fmt.Sprintf("p%d", i))
		td.HotCodes = append(td.HotCodes, CodeRef{ID: playerCode[i], Code: fmt.Sprintf("PLR%d", i), Owner: fmt.Sprintf("p%d", i)})
	}

	// Referrals: 90% of players were referred, a third by hot players and the rest by affiliates.
	type ref struct {
		id       uuid.UUID
		referee  int
		aff      int // -1: a hot player referred
		referrer string
		status   string
		at       time.Time
	}
	refs := make([]ref, 0, players)
	for i := hot; i < players; i++ {
		r := ref{id: uuid.New(), referee: i, aff: -1, at: now.Add(-time.Duration(i%90)*day - time.Duration(i%3600)*time.Second)}
		if i%3 == 0 || affiliates == 0 {
			r.referrer = fmt.Sprintf("p%d", i%hot)
			uses[playerCode[i%hot]]++
		} else {
			r.aff = i % affiliates
			r.referrer = fmt.Sprintf("aff%d", r.aff)
			uses[affCode[r.aff]]++
		}
		switch s := i % 20; {
		case s < 8:
			r.status = "converted"
		case s == 8:
			r.status = "verified"
		case s == 9:
			r.status = "rejected"
		default:
			r.status = "pending"
		}
		if r.aff >= 0 && depth[r.aff] >= 3 && r.status != "rejected" {
			td.EventUsers = append(td.EventUsers, fmt.Sprintf("p%d", i))
		}
		refs = append(refs, r)
	}

	// Codes: every affiliate's code and every hot player's code, with their uses.
	codeCols := []string{"id", "tenant_id", "code", "owner_user_id", "campaign_id", "usage_limit", "uses", "active",
		"expires_at", "source", "generated", "created_at", "updated_at"}
	nCodes, err := copyInto(ctx, tx, "referral_codes", codeCols, func(c *copier) error {
		for a := range affiliates {
			if err := c.row(affCode[a], tenant, fmt.Sprintf("AFF%d", a), fmt.Sprintf("aff%d", a), nil, nil, uses[affCode[a]],
				true, nil, "affiliate", false, created, created); err != nil {
				return err
			}
		}
		for i := range hot {
			if err := c.row(playerCode[i], tenant, fmt.Sprintf("PLR%d", i), fmt.Sprintf("p%d", i), nil, nil, uses[playerCode[i]],
				true, nil, "player", false, created, created); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}

	// History of events: deposits of affiliates' referees, with their commissions.
	revenue := make([]int64, affiliates)
	type comm struct {
		aff, level int
		user       string
		event      string
		base, amt  int64
		rate       string
		at         time.Time
	}
	var comms []comm
	var evRows [][]any
	var affRefs []ref
	for _, r := range refs {
		if r.aff >= 0 && r.status != "rejected" {
			affRefs = append(affRefs, r)
		}
	}
	for k := 0; k < history && len(affRefs) > 0; k++ {
		r := affRefs[k%len(affRefs)]
		ev := fmt.Sprintf("hist_%d", k)
		base := int64(1000 + k%5000)
		at := r.at.Add(time.Duration(1+k%48) * time.Hour)
		if at.After(now) {
			at = now
		}
		user := fmt.Sprintf("p%d", r.referee)
		evRows = append(evRows, []any{tenant, ev, "deposit.completed", user, at,
			fmt.Sprintf(`{"amount": %d, "currency": "EUR"}`, base), fmt.Sprintf(`{"event_id": %q, "status": "processed", "rewards": [], "commissions": []}`, ev), at})
		revenue[r.aff] += base
		comms = append(comms, comm{aff: r.aff, level: 0, user: user, event: ev, base: base, amt: base / 10, rate: "0.100000", at: at})
		idx := r.aff
		for d := 1; d <= 3 && pidx[idx] >= 0; d++ {
			idx = pidx[idx]
			rates := []int64{50000, 30000, 10000}
			comms = append(comms, comm{aff: idx, level: d, user: user, event: ev, base: base, amt: base * rates[d-1] / 1000000, rate: levelRates[d-1], at: at})
		}
	}
	nAff, err := copyInto(ctx, tx, "affiliates", []string{"id", "tenant_id", "user_id", "affiliate_code", "code_id", "status",
		"parent_affiliate_id", "ancestors", "tier_override_id", "referee_revenue", "created_at", "updated_at"}, func(c *copier) error {
		for a := range affiliates {
			var parent any
			if len(anc[a]) > 0 {
				parent = anc[a][len(anc[a])-1]
			}
			at := created.Add(time.Duration(a) * time.Millisecond)
			if err := c.row(affIDs[a], tenant, fmt.Sprintf("aff%d", a), fmt.Sprintf("AFF%d", a), affCode[a], "active",
				parent, uuidArray(anc[a]), nil, revenue[a], at, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	nRefs, err := copyInto(ctx, tx, "referrals", []string{"id", "tenant_id", "code_id", "code", "campaign_id", "referrer_id",
		"referee_id", "status", "metadata", "created_at", "updated_at", "converted_at", "verified_at", "rejected_at"}, func(c *copier) error {
		for _, r := range refs {
			codeID, code := affCode[max(r.aff, 0)], fmt.Sprintf("AFF%d", r.aff)
			if r.aff < 0 {
				h := r.referee % hot
				codeID, code = playerCode[h], fmt.Sprintf("PLR%d", h)
			}
			var camp, conv, ver, rej any
			if referral.Successful(r.status) {
				camp, conv = c1, r.at.Add(time.Hour)
			}
			if r.status == "verified" {
				ver = r.at.Add(2 * time.Hour)
			}
			if r.status == "rejected" {
				rej = r.at.Add(time.Hour)
			}
			if err := c.row(r.id, tenant, codeID, code, camp, r.referrer, fmt.Sprintf("p%d", r.referee), r.status,
				`{"source": "seed"}`, r.at, r.at, conv, ver, rej); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	// Conversions paid the welcome rewards.
	_, err = copyInto(ctx, tx, "campaign_qualifications", []string{"tenant_id", "campaign_id", "referral_id", "event_id", "created_at"}, func(c *copier) error {
		for _, r := range refs {
			if referral.Successful(r.status) {
				if err := c.row(tenant, c1, r.id, "conv_"+r.id.String(), r.at.Add(time.Hour)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	nRewards, err := copyInto(ctx, tx, "rewards", []string{"id", "tenant_id", "user_id", "role", "campaign_id", "referral_id",
		"event_id", "currency_id", "amount", "created_at"}, func(c *copier) error {
		for _, r := range refs {
			if referral.Successful(r.status) {
				at := r.at.Add(time.Hour)
				if err := c.row(uuid.New(), tenant, r.referrer, "referrer", c1, r.id, "conv_"+r.id.String(), "points", 100, at); err != nil {
					return err
				}
				if err := c.row(uuid.New(), tenant, fmt.Sprintf("p%d", r.referee), "referee", c1, r.id, "conv_"+r.id.String(), "points", 50, at); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	nEvents, err := copyInto(ctx, tx, "events", []string{"tenant_id", "event_id", "type", "user_id", "occurred_at", "payload", "outcome", "created_at"}, func(c *copier) error {
		for _, row := range evRows {
			if err := c.row(row...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	nComms, err := copyInto(ctx, tx, "commissions", []string{"id", "tenant_id", "affiliate_id", "user_id", "level", "source_user_id",
		"event_id", "rule_id", "tier_id", "rate", "base_amount", "amount", "currency_id", "created_at", "available_at"}, func(c *copier) error {
		for _, m := range comms {
			if m.amt <= 0 {
				continue
			}
			var tier any
			if m.level == 0 {
				tier = bronze
			}
			if err := c.row(uuid.New(), tenant, affIDs[m.aff], fmt.Sprintf("aff%d", m.aff), m.level, m.user, m.event, rule, tier,
				m.rate, m.base, m.amt, "EUR", m.at, referral.AvailableAt(m.at, referral.DefaultHoldDays, m.amt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if err := tx.Commit(); err != nil {
		return nil, "", err
	}
	counts := fmt.Sprintf("%d players, %d affiliates (binary trees, depth ≤ 12), %d codes, %d referrals, %d history events, %d rewards, %d commission rows, 3 campaigns, 3 tiers, 1 rule, a 3-level policy",
		players, nAff, nCodes, nRefs, nEvents, nRewards, nComms)
	return td, counts, nil
}

// seedTree writes the hierarchy tenant: root → mover subtree (ternary heap of MoveNodes nodes)
// and root → the rest (ternary heap).
func (b *Bench) seedTree(ctx context.Context) error {
	n, m := b.cfg.TreeNodes, b.cfg.MoveNodes
	tenant := "bench-tree"
	tr := TreeData{Tenant: tenant, Nodes: n}
	now := time.Now().UTC().Truncate(time.Microsecond).Add(-48 * time.Hour)
	ids := make([]uuid.UUID, n)
	codes := make([]uuid.UUID, n)
	parent := make([]int, n)
	depth := make([]int, n)
	for i := range n {
		ids[i], codes[i] = uuid.New(), uuid.New()
		switch {
		case i == 0:
			parent[i] = -1
		case i == 1 || i == m+1:
			parent[i] = 0
		case i <= m:
			parent[i] = 1 + (i-1-1)/3
		default:
			parent[i] = m + 1 + (i-m-1-1)/3
		}
		if parent[i] >= 0 {
			depth[i] = depth[parent[i]] + 1
		}
		if depth[i] > tr.MaxDep {
			tr.MaxDep, tr.Deep = depth[i], ids[i]
		}
	}
	tr.Root, tr.Mover, tr.Other = ids[0], ids[1], ids[m+1]
	for i := range min(n, 121) { // the top of both heaps: nodes with large downlines
		tr.Inner = append(tr.Inner, ids[i])
		tr.InnerU = append(tr.InnerU, fmt.Sprintf("t%d", i))
	}
	tx, err := b.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return err
	}
	_, err = copyInto(ctx, tx, "referral_codes", []string{"id", "tenant_id", "code", "owner_user_id", "usage_limit", "uses", "active",
		"source", "generated", "created_at", "updated_at"}, func(c *copier) error {
		for i := range n {
			if err := c.row(codes[i], tenant, fmt.Sprintf("TREE%d", i), fmt.Sprintf("t%d", i), nil, 0, true, "affiliate", false, now, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	anc := make([][]uuid.UUID, n)
	_, err = copyInto(ctx, tx, "affiliates", []string{"id", "tenant_id", "user_id", "affiliate_code", "code_id", "status",
		"parent_affiliate_id", "ancestors", "referee_revenue", "created_at", "updated_at"}, func(c *copier) error {
		for i := range n {
			var p any
			if parent[i] >= 0 {
				anc[i] = append(append([]uuid.UUID{}, anc[parent[i]]...), ids[parent[i]])
				p = ids[parent[i]]
			}
			at := now.Add(time.Duration(i) * time.Microsecond)
			if err := c.row(ids[i], tenant, fmt.Sprintf("t%d", i), fmt.Sprintf("TREE%d", i), codes[i], "active", p,
				uuidArray(anc[i]), 0, at, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	b.data.Tree = tr
	b.logf("seeded tenant %s: %d affiliates, depth ≤ %d", tenant, n, tr.MaxDep)
	return nil
}
