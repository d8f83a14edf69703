package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// payloadSnapshot returns the current snapshot: the changes committed after it form a window.
func payloadSnapshot(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var snap string
	if err := db.Get(&snap, `SELECT pg_current_snapshot()::text`); err != nil {
		t.Fatal(err)
	}
	return snap
}

// payloadWindow reads the change window since prev, as a catch-up round does.
func payloadWindow(t *testing.T, db *sqlx.DB, prev string) []postgres.Change {
	t.Helper()
	ctx := context.Background()
	tx, _, _, err := postgres.OpenSnapshot(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	w, err := postgres.NewSource(tx).ChangeWindow(ctx, prev)
	if err != nil {
		t.Fatal(err)
	}
	return w.Changes
}

// payloadRows returns "op old" of each change row of an entity, in order.
func payloadRows(t *testing.T, db *sqlx.DB, entity, id, column string) []string {
	t.Helper()
	var rows []string
	q := `SELECT op || ' ' || coalesce(` + column + `, '-') FROM changes WHERE entity = $1 AND entity_id = $2 ORDER BY seq`
	if err := db.Select(&rows, q, entity, id); err != nil {
		t.Fatal(err)
	}
	return rows
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// TestChangeCarriesOldOwner: moving a code to another owner records the previous owner in the
// change, an update that keeps the owner records none, a delete records the owner it had; the
// change window hands each previous owner to the reader.
func TestChangeCarriesOldOwner(t *testing.T) {
	db := pgtest.DB(t)
	s := postgres.NewStore(db)
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	prev := payloadSnapshot(t, db)
	alice, bob := "alice", "bob"
	c, err := s.CreateAdminCode(ctx, referral.Code{TenantID: tenant, Code: "MOVE1", OwnerUserID: &alice, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	c.OwnerUserID = &bob
	if c, err = s.ReplaceCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Active = false // the owner stays bob
	if _, err = s.ReplaceCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCode(ctx, tenant, c.ID); err != nil { // a soft delete: an update
		t.Fatal(err)
	}
	db.MustExec(`DELETE FROM referral_codes WHERE id = $1`, c.ID)
	sameRows(t, "code changes", payloadRows(t, db, "code", c.ID.String(), "old_owner"),
		[]string{"insert -", "update alice", "update -", "update -", "delete bob"})

	var got []string
	for _, ch := range payloadWindow(t, db, prev) {
		if ch.TenantID == tenant && ch.Entity == "code" && ch.EntityID == c.ID.String() {
			got = append(got, deref(ch.OldOwner))
			if ch.OldParent != nil {
				t.Errorf("a code's change carries an old parent %q", *ch.OldParent)
			}
		}
	}
	sameSet(t, "window's previous owners of the code", got, "-", "alice", "bob")
}

// TestChangeCarriesOldParent: moving an affiliate records its previous parent in its change,
// while its downline (whose paths the move rewrote) and an update that keeps the parent record
// none; a delete records the parent it had.
func TestChangeCarriesOldParent(t *testing.T) {
	db := pgtest.DB(t)
	s := postgres.NewStore(db)
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	root1, root2 := affCreate(t, s, tenant, "root1"), affCreate(t, s, tenant, "root2")
	node, child := affCreate(t, s, tenant, "node"), affCreate(t, s, tenant, "child")
	for _, m := range [][2]referral.Affiliate{{node, root1}, {child, node}} {
		if _, err := s.SetUpline(ctx, tenant, m[0].ID, &m[1].ID); err != nil {
			t.Fatal(err)
		}
	}
	prev := payloadSnapshot(t, db)
	if _, err := s.SetUpline(ctx, tenant, node.ID, &root2.ID); err != nil {
		t.Fatal(err)
	}
	db.MustExec(`UPDATE affiliates SET status = 'suspended' WHERE id = $1`, node.ID)
	db.MustExec(`DELETE FROM affiliates WHERE id = $1`, child.ID)

	sameRows(t, "node changes", payloadRows(t, db, "affiliate", node.ID.String(), "old_parent"),
		[]string{"insert -", "update -", "update " + root1.ID.String(), "update -"})
	sameRows(t, "child changes", payloadRows(t, db, "affiliate", child.ID.String(), "old_parent"),
		[]string{"insert -", "update -", "update -", "delete " + node.ID.String()})

	got := map[string][]string{}
	for _, ch := range payloadWindow(t, db, prev) {
		if ch.TenantID == tenant && ch.Entity == "affiliate" {
			got[ch.EntityID] = append(got[ch.EntityID], deref(ch.OldParent))
			if ch.OldOwner != nil {
				t.Errorf("an affiliate's change carries an old owner %q", *ch.OldOwner)
			}
		}
	}
	// Both moved in the window: the node with its parent, the child with its path.
	sameSet(t, "window's previous parents of the moved node", got[node.ID.String()], "-", root1.ID.String())
	sameSet(t, "window's previous parents of the deleted child", got[child.ID.String()], "-", node.ID.String())
}

// sameSet fails unless got holds exactly the distinct values want.
func sameSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	set := map[string]bool{}
	for _, g := range got {
		set[g] = true
	}
	ok := len(set) == len(want)
	for _, w := range want {
		ok = ok && set[w]
	}
	if !ok {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// TestSubtreeMoveOneTriggerRun: moving a node with a 10,000-affiliate downline records one
// change per rewritten row, the previous parent on the moved node only, and runs the change
// trigger once per statement (two statements: the node and its downline), not once per row.
func TestSubtreeMoveOneTriggerRun(t *testing.T) {
	const downline = 10_000
	ctx := context.Background()
	u := pgtest.NewDatabase(t)
	setup, err := sqlx.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	// Function call counts, for this database's new sessions.
	setup.MustExec(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET track_functions = ''pl''', current_database()); END $$`)
	tenant := pgtest.Tenant(t)
	root1, root2, node := payloadSeedSubtree(t, setup, tenant, downline)
	var before int64
	if err := setup.Get(&before, `SELECT max(seq) FROM changes`); err != nil {
		t.Fatal(err)
	}

	db, err := postgres.Open(ctx, u, "pgtest", 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.NewStore(db).SetUpline(ctx, tenant, node, &root2); err != nil {
		t.Fatal(err)
	}
	db.Close() // a session's function statistics are reported when it ends

	var rows []struct {
		OldParent *string `db:"old_parent"`
		N         int     `db:"n"`
	}
	if err := setup.Select(&rows, `SELECT old_parent, count(*) AS n FROM changes
		WHERE seq > $1 AND entity = 'affiliate' AND op = 'update' GROUP BY old_parent ORDER BY old_parent NULLS FIRST`, before); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].OldParent != nil || rows[0].N != downline || rows[1].N != 1 || deref(rows[1].OldParent) != root1.String() {
		t.Fatalf("changes of the move = %+v, want %d without a previous parent and 1 naming %s", rows, downline, root1)
	}
	var calls int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := setup.Get(&calls, `SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'record_affiliate_updates'`)
		if err != nil {
			t.Fatal(err)
		}
		if calls > 0 || time.Now().After(deadline) {
			break
		}
		setup.MustExec(`SELECT pg_stat_clear_snapshot()`)
	}
	if calls != 2 {
		t.Errorf("the change trigger ran %d times for a %d-row move, want 2 (once per statement)", calls, downline+1)
	}
}

// payloadSeedSubtree seeds two roots and a node under the first with a downline of n direct
// children, and returns the roots' and the node's ids.
func payloadSeedSubtree(tb testing.TB, db *sqlx.DB, tenant string, n int) (root1, root2, node uuid.UUID) {
	tb.Helper()
	root1, root2, node = uuid.New(), uuid.New(), uuid.New()
	db.MustExec(`
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'A' || i, 'u' || i, true, 'affiliate', now(), now()
		FROM generate_series(1, $2::int + 3) i`, tenant, n)
	// u1, u2: roots; u3: the node; the others: the node's children.
	db.MustExec(`
		INSERT INTO affiliates (id, tenant_id, user_id, affiliate_code, code_id, status, parent_affiliate_id, ancestors, created_at, updated_at)
		SELECT CASE n WHEN 1 THEN $2::uuid WHEN 2 THEN $3::uuid WHEN 3 THEN $4::uuid ELSE gen_random_uuid() END,
		       $1, owner_user_id, code, id, 'active',
		       CASE WHEN n = 3 THEN $2::uuid WHEN n > 3 THEN $4::uuid END,
		       CASE WHEN n = 3 THEN ARRAY[$2::uuid] WHEN n > 3 THEN ARRAY[$2::uuid, $4::uuid] ELSE '{}' END,
		       now(), now()
		FROM (SELECT *, substr(code, 2)::int AS n FROM referral_codes WHERE tenant_id = $1) c`,
		tenant, root1, root2, node)
	return root1, root2, node
}

// BenchmarkSubtreeMoveChangeTrigger: moving a node with a 10,000-affiliate downline back and
// forth between two roots, under the change triggers of migration 00005 (the old parent joined
// from the transition tables) and, as the baseline in the same run, under those before it.
// Reports the median move of each and their ratio.
func BenchmarkSubtreeMoveChangeTrigger(b *testing.B) {
	const downline = 10_000
	ctx := context.Background()
	type side struct {
		store              *postgres.Store
		tenant             string
		root1, root2, node uuid.UUID
		samples            []time.Duration
	}
	open := func(version int64) *side {
		db, err := sqlx.Open("postgres", pgtest.EmptyDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		if err := postgres.MigrateTo(ctx, db.DB, version); err != nil {
			b.Fatal(err)
		}
		s := &side{store: postgres.NewStore(db), tenant: pgtest.Tenant(b)}
		s.root1, s.root2, s.node = payloadSeedSubtree(b, db, s.tenant, downline)
		db.MustExec(`ANALYZE`)
		return s
	}
	before, after := open(4), open(5)
	b.ResetTimer()
	for i := range b.N {
		for _, s := range []*side{before, after} {
			to := s.root2
			if i%2 == 1 {
				to = s.root1
			}
			t0 := time.Now()
			if _, err := s.store.SetUpline(ctx, s.tenant, s.node, &to); err != nil {
				b.Fatal(err)
			}
			s.samples = append(s.samples, time.Since(t0))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	m0, m1 := median(before.samples), median(after.samples)
	b.ReportMetric(float64(m0)/float64(time.Millisecond), "before_ms/move")
	b.ReportMetric(float64(m1)/float64(time.Millisecond), "after_ms/move")
	b.ReportMetric(float64(m1)/float64(m0), "after/before")
}
