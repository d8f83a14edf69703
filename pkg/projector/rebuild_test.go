package projector

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// TestQryProjectorRebuildSwitch: a rebuild's documents are not served (the tenant has no epoch,
// so reads fall through to PostgreSQL) until a round finds the change log caught up; a write
// acknowledged after the rebuild's snapshot — mid-way through it — is in the documents the
// moment they are served, and a large backlog keeps the switch back until it is applied.
func TestQryProjectorRebuildSwitch(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	served := func() (string, bool) {
		t.Helper()
		b, ok, err := p.cache.Document(ctx, "t1", cache.CampaignsKey("t1"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b), ok
	}
	qryInsertCampaign(t, p, "t1", "before")
	if again, err := p.Round(ctx); err != nil || !again {
		t.Fatalf("rebuild round: again %v, %v", again, err)
	}
	if doc, ok := served(); ok || !strings.Contains(qryCampaigns(t, rdb, "t1"), "before") {
		t.Fatalf("right after the rebuild: served %v (%s), stored %s", ok, doc, qryCampaigns(t, rdb, "t1"))
	}
	// Written after the rebuild's snapshot, and more than one round may apply before the switch.
	qryInsertCampaign(t, p, "t1", "during")
	if _, err := p.db.Exec(`INSERT INTO campaigns (id, tenant_id, name, qualifying_event, referrer_rewards, referee_rewards,
		active, created_at, updated_at) SELECT gen_random_uuid(), 't2', 'bulk' || i, 'x', '{"wallet":[]}', '{"wallet":[]}',
		false, now(), now() FROM generate_series(1, $1) i`, switchBacklog); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := served(); ok {
		t.Fatal("served while the round behind the rebuild still had a large backlog")
	}
	qryRound(t, p)
	doc, ok := served()
	if !ok || !strings.Contains(doc, "before") || !strings.Contains(doc, "during") {
		t.Fatalf("after the switch: served %v: %s", ok, doc)
	}
	if pos, _, _ := p.cache.Position(ctx); pos.Building {
		t.Fatalf("position still building: %+v", pos)
	}
}

// TestQryProjectorSmallTenantsFirst: a round writes each tenant's documents as soon as they are
// built, the tenants with the fewest changes first, so a small tenant's writes are in Redis
// before a big tenant's are even computed.
func TestQryProjectorSmallTenantsFirst(t *testing.T) {
	p, _ := qryProjector(t)
	ctx := context.Background()
	qryRound(t, p)
	qryLeaderSeed(t, p, "big", 50, 2000)
	qryInsertCampaign(t, p, "small", "s")
	pos, _, err := p.cache.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	win, err := postgres.NewSource(tx).ChangeWindow(ctx, pos.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var bigBuilt bool
	err = p.plan(ctx, tx, win.Changes, win.TenantRows, func(b *cache.Batch) error {
		order = append(order, b.Tenant)
		if b.Tenant == "small" && bigBuilt {
			t.Error("the small tenant waited for the big one")
		}
		bigBuilt = bigBuilt || b.Tenant == "big"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "small,big" {
		t.Fatalf("write order %v, want small first", order)
	}
}

// TestQryProjectorBoundedRounds: a backlog larger than MaxChanges is applied in rounds of at
// most MaxChanges entities, chunk by chunk towards the first round's snapshot, and nothing is
// skipped: not a change committed during the catch-up, not one of a transaction that was open
// when the catch-up began and commits in the middle of it. Another tenant's write made during
// the catch-up is applied by the next round, not after the backlog.
func TestQryProjectorBoundedRounds(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	p.cfg.MaxChanges = 10
	qryRound(t, p)
	late, err := p.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	const code = `INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		SELECT gen_random_uuid(), 't1', $1 || i, $1 || i, true, 'player', now(), now() FROM generate_series(1, $2) i`
	if _, err := late.Exec(code, "late", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.db.Exec(code, "bulk", 35); err != nil {
		t.Fatal(err)
	}
	has := func(user string) bool {
		return rdb.HExists(ctx, cache.UserKey("t1", user), cache.SectionCodes).Val()
	}
	projected := func() (n int) {
		for i := 1; i <= 35; i++ {
			if has(fmt.Sprintf("bulk%d", i)) {
				n++
			}
		}
		return n
	}
	applied := qryCount(p.metrics.Applied)
	for round := 1; ; round++ {
		again, err := p.Round(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := qryCount(p.metrics.Applied)
		if n-applied > 20 {
			t.Fatalf("round %d applied %v changes, want at most 10 of the backlog and 10 fresh ones", round, n-applied)
		}
		applied = n
		if round == 1 {
			pos, _, _ := p.cache.Position(ctx)
			if pos.Target == "" || projected() != 10 {
				t.Fatalf("after the first round: target %q, %d of 35 projected", pos.Target, projected())
			}
			// Committed during the catch-up: one after the target, one that was open at it, and
			// another tenant's.
			if _, err := p.db.Exec(code, "during", 1); err != nil {
				t.Fatal(err)
			}
			if err := late.Commit(); err != nil {
				t.Fatal(err)
			}
			qryInsertCampaign(t, p, "small", "fresh")
		}
		if round == 2 && !strings.Contains(qryCampaigns(t, rdb, "small"), "fresh") {
			t.Fatal("another tenant's write waited for the catch-up")
		}
		if round == 2 && projected() == 35 {
			t.Fatal("the catch-up was over by round 2: the test shows nothing")
		}
		if !again {
			break
		}
		if round > 20 {
			t.Fatal("the catch-up never ended")
		}
	}
	if got := projected(); got != 35 || !has("during1") || !has("late1") {
		t.Fatalf("after the catch-up: %d of 35, during %v, late %v", got, has("during1"), has("late1"))
	}
	if pos, _, _ := p.cache.Position(ctx); pos.Target != "" {
		t.Fatalf("position still catching up: %+v", pos)
	}
}
