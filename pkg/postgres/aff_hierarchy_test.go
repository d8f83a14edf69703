package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func affStore(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	return postgres.NewStore(pgtest.DB(t)), pgtest.Tenant(t)
}

func affCreate(t testing.TB, s *postgres.Store, tenant, user string) referral.Affiliate {
	t.Helper()
	a, err := s.CreateAffiliate(context.Background(), referral.Affiliate{TenantID: tenant, UserID: user, Status: referral.AffiliateActive})
	if err != nil {
		t.Fatalf("create affiliate %s: %v", user, err)
	}
	return a
}

// affConsistent asserts every live affiliate's path equals its live parent's path plus the
// parent (a root's is empty). Paths are finite, so parent pointers then form no cycle.
func affConsistent(t testing.TB, db *sqlx.DB, tenant string) {
	t.Helper()
	const q = `
		SELECT count(*) FROM affiliates c LEFT JOIN affiliates p ON p.id = c.parent_affiliate_id
		WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND NOT coalesce(
		    (c.parent_affiliate_id IS NULL AND c.ancestors = '{}')
		    OR (p.deleted_at IS NULL AND p.tenant_id = c.tenant_id AND c.ancestors = p.ancestors || p.id), false)`
	var bad int
	if err := db.GetContext(context.Background(), &bad, q, tenant); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d affiliates of %s have a path inconsistent with their parent", bad, tenant)
	}
}

func TestAffConcurrentOppositeMoves(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	for i := range 50 {
		a := affCreate(t, s, tenant, fmt.Sprintf("race_a%d", i))
		b := affCreate(t, s, tenant, fmt.Sprintf("race_b%d", i))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, mv := range [][2]uuid.UUID{{a.ID, b.ID}, {b.ID, a.ID}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				parent := mv[1]
				_, errs[j] = s.SetUpline(ctx, tenant, mv[0], &parent)
			}()
		}
		close(start)
		wg.Wait()
		ok, cycles := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case referral.ErrorCode(err) == referral.EHierarchyCycle:
				cycles++
			default:
				t.Fatalf("round %d: unexpected error %v", i, err)
			}
		}
		if ok != 1 || cycles != 1 {
			t.Fatalf("round %d: %d moves succeeded, %d cycles (want 1 and 1)", i, ok, cycles)
		}
	}
	affConsistent(t, pgtest.DB(t), tenant)
}

func TestAffConcurrentThreeWayCycle(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	for i := range 20 {
		n := []referral.Affiliate{affCreate(t, s, tenant, fmt.Sprintf("tri_a%d", i)),
			affCreate(t, s, tenant, fmt.Sprintf("tri_b%d", i)), affCreate(t, s, tenant, fmt.Sprintf("tri_c%d", i))}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for j := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				parent := n[(j+1)%3].ID
				_, errs[j] = s.SetUpline(ctx, tenant, n[j].ID, &parent)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if referral.ErrorCode(err) != referral.EHierarchyCycle {
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if ok != 2 {
			t.Fatalf("round %d: %d of 3 moves succeeded, want 2", i, ok)
		}
	}
	affConsistent(t, pgtest.DB(t), tenant)
}

// TestAffConcurrentMovesAndDeletes runs random moves and deletions on one small tree from
// several goroutines; whatever interleaving happens, the tree stays consistent.
func TestAffConcurrentMovesAndDeletes(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	const n = 40
	ids := make([]uuid.UUID, n)
	for i := range n {
		ids[i] = affCreate(t, s, tenant, fmt.Sprintf("mix_%d", i)).ID
		if i > 0 {
			parent := ids[rand.IntN(i)]
			if _, err := s.SetUpline(ctx, tenant, ids[i], &parent); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 40 {
				node := ids[r.IntN(n)]
				var err error
				switch op := r.IntN(10); {
				case op == 0:
					err = s.DeleteAffiliate(ctx, tenant, node)
				case op == 1:
					_, err = s.SetUpline(ctx, tenant, node, nil)
				default:
					parent := ids[r.IntN(n)]
					_, err = s.SetUpline(ctx, tenant, node, &parent)
				}
				if code := referral.ErrorCode(err); err != nil && code != referral.EHierarchyCycle && code != referral.ENotFound {
					t.Errorf("operation failed: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	affConsistent(t, pgtest.DB(t), tenant)
}

func TestAffSetUplineRewritesDeepPaths(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	// chain c0 ─ c1 ─ … ─ c9 ; other root r
	var chain []referral.Affiliate
	for i := range 10 {
		a := affCreate(t, s, tenant, fmt.Sprintf("chain_%d", i))
		if i > 0 {
			p := chain[i-1].ID
			if _, err := s.SetUpline(ctx, tenant, a.ID, &p); err != nil {
				t.Fatal(err)
			}
		}
		chain = append(chain, a)
	}
	r := affCreate(t, s, tenant, "chain_root")
	before := map[uuid.UUID][]uuid.UUID{}
	for _, c := range chain[5:] {
		a, err := s.GetAffiliate(ctx, tenant, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		before[c.ID] = a.Ancestors
	}
	p := r.ID
	moved, err := s.SetUpline(ctx, tenant, chain[4].ID, &p)
	if err != nil {
		t.Fatal(err)
	}
	// The one UPDATE agrees with the pure rule for every descendant.
	for id, old := range before {
		a, err := s.GetAffiliate(ctx, tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := affRebase(old, 4, moved.Ancestors); !slices.Equal(a.Ancestors, want) {
			t.Fatalf("path of %s = %v, want %v", id, a.Ancestors, want)
		}
	}
	if len(moved.Ancestors) != 1 || moved.Ancestors[0] != r.ID || *moved.ParentAffiliateID != r.ID {
		t.Fatalf("moved %+v", moved)
	}
	affConsistent(t, pgtest.DB(t), tenant)
	members, total, err := s.Downline(ctx, tenant, r.ID, referral.DownlineFilter{Depth: 50, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if total != 6 || len(members) != 6 || members[5].ID != chain[9].ID || members[5].Level != 6 {
		t.Fatalf("downline total %d: %+v", total, members)
	}
	for i, m := range members {
		if lvl, ok := affLevel(r.ID, nil, m.Ancestors); !ok || lvl != m.Level || m.Level != i+1 {
			t.Fatalf("member %d level %d (rule says %d, %v)", i, m.Level, lvl, ok)
		}
	}
	// Depth limits the levels read.
	if _, total, err = s.Downline(ctx, tenant, r.ID, referral.DownlineFilter{Depth: 2, Limit: 100}); err != nil || total != 2 {
		t.Fatalf("depth 2: total %d, %v", total, err)
	}
	// Cycle through the deep chain.
	deep := chain[9].ID
	if _, err := s.SetUpline(ctx, tenant, r.ID, &deep); referral.ErrorCode(err) != referral.EHierarchyCycle {
		t.Fatalf("root under its deepest descendant: %v", err)
	}
}

func TestAffEngineHelpers(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	db := pgtest.DB(t)
	if a, err := s.AffLoadAffiliateByUser(ctx, tenant, "nobody"); err != nil || a != nil {
		t.Fatalf("non-affiliate: %v, %v", a, err)
	}
	created := affCreate(t, s, tenant, "helper_user")
	now := time.Now()
	for i, status := range []string{"converted", "verified", "pending", "rejected", "converted"} {
		codeID := uuid.New()
		if _, err := db.Exec(`INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
			VALUES ($1, $2, $3, 'helper_user', true, 'player', $4, $4)`, codeID, tenant, fmt.Sprintf("HELPER%d", i), now); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, created_at, updated_at)
			VALUES ($1, $2, $3, 'X', 'helper_user', $4, $5, $6, $6)`, uuid.New(), tenant, codeID, fmt.Sprintf("referee_%d", i), status, now); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.AffConvertedReferrals(ctx, tenant, "helper_user"); err != nil || n != 3 {
		t.Fatalf("converted = %d, %v; want 3", n, err)
	}
	a, err := s.AffLoadAffiliateByUser(ctx, tenant, "helper_user")
	if err != nil || a == nil || a.ID != created.ID || a.ConvertedReferrals != 3 || a.CodeID != created.CodeID {
		t.Fatalf("by user: %+v, %v", a, err)
	}
	if _, err := s.CreateTier(ctx, referral.Tier{TenantID: tenant, Name: "low", CommissionRate: 50000, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTier(ctx, referral.Tier{TenantID: tenant, Name: "high", CommissionRate: 123456, Priority: 9, MinReferrals: 3}); err != nil {
		t.Fatal(err)
	}
	tiers, err := s.AffLoadTiers(ctx, tenant)
	if err != nil || len(tiers) != 2 || tiers[0].Name != "high" || tiers[0].CommissionRate != 123456 {
		t.Fatalf("tiers %+v, %v", tiers, err)
	}
	if tier := referral.EffectiveTier(tiers, a.TierOverrideID, a.ConvertedReferrals, a.RefereeRevenue); tier == nil || tier.Name != "high" {
		t.Fatalf("effective tier %+v", tier)
	}
	if err := s.DeleteAffiliate(ctx, tenant, created.ID); err != nil {
		t.Fatal(err)
	}
	if a, err := s.AffLoadAffiliateByUser(ctx, tenant, "helper_user"); err != nil || a != nil {
		t.Fatalf("deleted affiliate still loaded: %+v, %v", a, err)
	}
}

// TestAffMoveSurvivesDeadlock locks two rows of a subtree, one and then the other once the move
// waits. The move locks its subtree in id order, so in the round where the locker goes against
// that order the two deadlock; PostgreSQL aborts one of them and the move, retried, still
// succeeds.
func TestAffMoveSurvivesDeadlock(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	db := pgtest.DB(t)
	deadlocks := func() int64 {
		var n int64
		if err := db.Get(&n, `SELECT coalesce(deadlocks, 0) FROM pg_stat_database WHERE datname = current_database()`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	root := affCreate(t, s, tenant, "dl_root")
	kids := []referral.Affiliate{affCreate(t, s, tenant, "dl_kid0"), affCreate(t, s, tenant, "dl_kid1")}
	for _, k := range kids {
		p := root.ID
		if _, err := s.SetUpline(ctx, tenant, k.ID, &p); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		first, second := kids[round], kids[1-round]
		target := affCreate(t, s, tenant, fmt.Sprintf("dl_target%d", round))
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		const lock = `SELECT id FROM affiliates WHERE id = $1 FOR NO KEY UPDATE`
		if _, err := tx.Exec(lock, first.ID); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			p := target.ID
			_, err := s.SetUpline(ctx, tenant, root.ID, &p)
			done <- err
		}()
		// Wait until the move is blocked on the first row, then take the second.
		pgtest.WaitForLock(t, db, "FOR NO KEY UPDATE) locked")
		_, lockErr := tx.Exec(lock, second.ID)
		if lockErr != nil {
			tx.Rollback()
		} else if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: move failed: %v (locker: %v)", round, err, lockErr)
		}
		affConsistent(t, db, tenant)
	}
	// One of the two rounds took the rows in the move's opposite order.
	deadline := time.Now().Add(3 * time.Second)
	for deadlocks() == before {
		if time.Now().After(deadline) {
			t.Fatal("no deadlock happened: the test did not exercise the retry")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAffConcurrentCreateSameUser(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "twin", Status: referral.AffiliatePending})
			errs <- err
		}()
	}
	ok := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case referral.ErrorCode(err) != referral.EAffiliateExists:
			t.Fatalf("unexpected error %v", err)
		}
	}
	var codes int
	if err := pgtest.DB(t).Get(&codes, `SELECT count(*) FROM referral_codes WHERE tenant_id = $1 AND owner_user_id = 'twin' AND deleted_at IS NULL`, tenant); err != nil {
		t.Fatal(err)
	}
	if ok != 1 || codes != 1 {
		t.Fatalf("%d creates succeeded and %d codes remain, want 1 and 1", ok, codes)
	}
}

// TestAffTierDeleteRacesOverride pins affiliates to a tier while the tier is deleted: no live
// affiliate may end up pinned to a deleted tier.
func TestAffTierDeleteRacesOverride(t *testing.T) {
	s, tenant := affStore(t)
	ctx := context.Background()
	a := affCreate(t, s, tenant, "pinned")
	for i := range 20 {
		tier, err := s.CreateTier(ctx, referral.Tier{TenantID: tenant, Name: fmt.Sprintf("t%d", i), CommissionRate: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			id := tier.ID
			_, err := s.ReplaceAffiliate(ctx, referral.Affiliate{TenantID: tenant, ID: a.ID, Status: referral.AffiliateActive, TierOverrideID: &id})
			if err != nil && referral.ErrorCode(err) != referral.EValidation {
				t.Errorf("replace: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := s.DeleteTier(ctx, tenant, tier.ID); err != nil {
				t.Errorf("delete tier: %v", err)
			}
		}()
		wg.Wait()
		got, err := s.GetAffiliate(ctx, tenant, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.TierOverrideID != nil {
			t.Fatalf("round %d: affiliate pinned to deleted tier %s", i, got.TierOverrideID)
		}
	}
}

// affRebase returns the ancestors of a descendant of a moved node after the move, as the path
// rewrite in SQL should leave them: the moved node's old ancestor prefix (oldPrefixLen entries)
// is replaced by newPrefix, the rest (the moved node and the path below it) is kept.
func affRebase(descendantAncestors []uuid.UUID, oldPrefixLen int, newPrefix []uuid.UUID) []uuid.UUID {
	return append(slices.Clone(newPrefix), descendantAncestors[oldPrefixLen:]...)
}

// affLevel returns how far below a node one of its descendants is (1 = a direct child), given
// both ancestor lists; ok is false when the second node is not in the first one's downline.
func affLevel(nodeID uuid.UUID, nodeAncestors, descendantAncestors []uuid.UUID) (level int, ok bool) {
	k := len(nodeAncestors)
	if len(descendantAncestors) <= k || descendantAncestors[k] != nodeID ||
		!slices.Equal(descendantAncestors[:k], nodeAncestors) {
		return 0, false
	}
	return len(descendantAncestors) - k, true
}
