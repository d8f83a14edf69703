package projector

import (
	"context"
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
