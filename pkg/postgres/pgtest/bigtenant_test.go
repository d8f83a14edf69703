package pgtest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestSeedBigTenant: the seeded tenant is one the domain accepts as its own — counters agree
// with the rows, the tree's paths agree with the parents, a new player can apply a seeded code
// and a deposit of a deep player's referee pays the direct affiliate and three levels above.
func TestSeedBigTenant(t *testing.T) {
	ctx := context.Background()
	db := pgtest.MustOpenDB(t)
	d, err := pgtest.SeedBigTenant(ctx, db, pgtest.BigTenant{Tenant: "big", Referrals: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if d.Referrers != 200 || d.MaxDepth != 5 {
		t.Fatalf("referrers %d, depth %d; want 200 and 5", d.Referrers, d.MaxDepth)
	}
	for table, want := range map[string]int{"referrals": 2000, "referral_codes": 200, "affiliates": 200,
		"campaign_qualifications": 900, "rewards": 1800} {
		var got int
		if err := db.GetContext(ctx, &got, `SELECT count(*) FROM `+table+` WHERE tenant_id = 'big'`); err != nil {
			t.Fatal(err)
		}
		if got != want || d.Rows[table] != want {
			t.Errorf("%s: %d rows in the table, %d reported; want %d", table, got, d.Rows[table], want)
		}
	}
	var bad int
	const usesMatch = `SELECT count(*) FROM referral_codes c
		WHERE c.tenant_id = 'big' AND c.uses <> (SELECT count(*) FROM referrals r WHERE r.code_id = c.id)`
	if err := db.GetContext(ctx, &bad, usesMatch); err != nil || bad != 0 {
		t.Fatalf("codes whose uses differ from their referrals: %d (%v)", bad, err)
	}
	const pathsMatch = `SELECT count(*) FROM affiliates a WHERE a.tenant_id = 'big' AND (
		(a.parent_affiliate_id IS NULL) <> (cardinality(a.ancestors) = 0) OR
		a.ancestors[cardinality(a.ancestors)] IS DISTINCT FROM a.parent_affiliate_id OR
		a.ancestors <> coalesce((SELECT p.ancestors || p.id FROM affiliates p WHERE p.id = a.parent_affiliate_id), '{}'))`
	if err := db.GetContext(ctx, &bad, pathsMatch); err != nil || bad != 0 {
		t.Fatalf("affiliates whose path disagrees with their parent: %d (%v)", bad, err)
	}
	var changes int
	if err := db.GetContext(ctx, &changes, `SELECT count(*) FROM changes`); err != nil || changes != 0 {
		t.Fatalf("seeding recorded %d changes (%v), want none", changes, err)
	}

	s := postgres.NewStore(db)
	ref, _, err := s.ApplyCode(ctx, "big", "newcomer", d.Code(7), nil, nil)
	if err != nil || ref.ReferrerID == nil || *ref.ReferrerID != d.Referrer(7) {
		t.Fatalf("apply-code on a seeded code: %+v, %v", ref, err)
	}
	deep := d.DeepPlayers(1)
	if len(deep) != 1 {
		t.Fatal("no deep player")
	}
	out, err := s.ProcessEvent(ctx, referral.Event{TenantID: "big", EventID: "dep_1", Type: "deposit.completed",
		UserID: d.Player(deep[0]), OccurredAt: time.Now(), Payload: json.RawMessage(`{"amount": 5000}`)})
	if err != nil {
		t.Fatal(err)
	}
	levels := map[int]int64{}
	for _, c := range out.Commissions {
		levels[c.Level] = c.Amount
	}
	if want := map[int]int64{0: 500, 1: 250, 2: 150, 3: 50}; len(levels) != 4 || levels[0] != want[0] || levels[1] != want[1] ||
		levels[2] != want[2] || levels[3] != want[3] {
		t.Errorf("commissions by level %v, want %v", levels, want)
	}
	if len(out.Rewards) != 2 {
		t.Errorf("rewards %d, want 2 (the pending referral converts)", len(out.Rewards))
	}
}
