package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestSourceDownlineAgreesWithStore checks that the read side's downline is the Admin Gateway's
// (both run one query) but for the effective tier, which the read side leaves to the reader, and
// that a node gone since the caller found it has an empty downline there, not NOT_FOUND.
func TestSourceDownlineAgreesWithStore(t *testing.T) {
	db := pgtest.DB(t)
	s, tenant := postgres.NewStore(db), pgtest.Tenant(t)
	ctx := context.Background()
	// root ─ c1 ─ g1 ─ gg
	//      │    └ g2
	//      └ c2
	root := affCreate(t, s, tenant, "src_root")
	place := func(user string, parent referral.Affiliate) referral.Affiliate {
		a := affCreate(t, s, tenant, user)
		if _, err := s.SetUpline(ctx, tenant, a.ID, &parent.ID); err != nil {
			t.Fatal(err)
		}
		return a
	}
	c1 := place("src_c1", root)
	place("src_c2", root)
	g1 := place("src_g1", c1)
	place("src_g2", c1)
	leaf := place("src_gg", g1)
	src := postgres.NewSource(db)
	for _, tt := range []struct {
		f     referral.DownlineFilter
		total int
	}{
		{referral.DownlineFilter{Depth: 1, Limit: 50}, 2}, {referral.DownlineFilter{Depth: 1, Limit: 2, Offset: 1}, 2},
		{referral.DownlineFilter{Depth: 2, Limit: 3}, 4}, {referral.DownlineFilter{Depth: 50, Limit: 2, Offset: 4}, 5},
		{referral.DownlineFilter{Depth: 50, Limit: 10, Offset: 100}, 5},
	} {
		f := tt.f
		want, wantTotal, err := s.Downline(ctx, tenant, root.ID, f)
		if err != nil || wantTotal != tt.total {
			t.Fatalf("%+v: store total %d, error %v; want total %d", f, wantTotal, err, tt.total)
		}
		got, total, err := src.Downline(ctx, tenant, root.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			want[i].TierID = nil
		}
		if total != wantTotal || !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: source %d %+v, store %d %+v", f, total, got, wantTotal, want)
		}
	}
	if err := s.DeleteAffiliate(ctx, tenant, leaf.ID); err != nil {
		t.Fatal(err)
	}
	f := referral.DownlineFilter{Depth: 1, Limit: 10}
	if _, _, err := s.Downline(ctx, tenant, leaf.ID, f); referral.ErrorCode(err) != referral.ENotFound {
		t.Fatalf("store, deleted node: %v, want NOT_FOUND", err)
	}
	if got, total, err := src.Downline(ctx, tenant, leaf.ID, f); err != nil || total != 0 || len(got) != 0 {
		t.Fatalf("source, deleted node: %v %d %v, want an empty page", got, total, err)
	}
}

// TestSourceLeaderboardAgreesWithStore checks that both gateways' leaderboards rank alike: the
// Store's is the Source's cut to its limit.
func TestSourceLeaderboardAgreesWithStore(t *testing.T) {
	db := pgtest.DB(t)
	s, tenant := postgres.NewStore(db), pgtest.Tenant(t)
	ctx := context.Background()
	for owner, referees := range map[string]int{"lb_b": 2, "lb_a": 2, "lb_c": 1} {
		code := strings.ToUpper("LB" + owner[3:] + "CODE")
		if _, err := s.CreatePlayerCode(ctx, tenant, owner, code, nil); err != nil {
			t.Fatal(err)
		}
		for i := range referees {
			if _, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("%s_ref%d", owner, i), code, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := postgres.NewSource(db).Leaderboard(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []referral.LeaderboardEntry{{Rank: 1, UserID: "lb_a", Total: 2}, {Rank: 2, UserID: "lb_b", Total: 2},
		{Rank: 3, UserID: "lb_c", Total: 1}}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("source leaderboard %+v, want %+v", all, want)
	}
	top, err := s.Leaderboard(ctx, tenant, referral.PeriodAll, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(top, want[:2]) {
		t.Fatalf("store leaderboard %+v, want %+v", top, want[:2])
	}
}

// TestInSnapshotIsReadOnly checks that the read-through snapshot is a read-only transaction.
func TestInSnapshotIsReadOnly(t *testing.T) {
	db := pgtest.DB(t)
	err := postgres.InSnapshot(context.Background(), db, func(q sqlx.QueryerContext) error {
		var level string
		if err := sqlx.GetContext(context.Background(), q, &level, `SHOW transaction_isolation`); err != nil {
			return err
		}
		if level != "repeatable read" {
			t.Errorf("isolation %q, want repeatable read", level)
		}
		rows, err := q.QueryxContext(context.Background(), `CREATE TEMPORARY TABLE snapshot_write (x int)`)
		if err == nil {
			rows.Close()
		}
		return err
	})
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Fatalf("write in the snapshot: %v, want read_only_sql_transaction (25006)", err)
	}
}

// TestSourceOwnersUsesPrimaryKey checks that the owners of changed entities are found by primary
// key probes (no sequential scan of the table, whatever its size), that a soft-deleted row is
// still found, and that an id that is no uuid names nothing instead of failing the round.
func TestSourceOwnersUsesPrimaryKey(t *testing.T) {
	db := pgtest.DB(t)
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	const ins = `INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at, deleted_at)
		SELECT gen_random_uuid(), $1, 'OWN' || i, 'u' || i, true, 'player', now(), now(), CASE WHEN i = 2 THEN now() END
		FROM generate_series(1, 50) i`
	if _, err := db.ExecContext(ctx, ins, tenant); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := db.SelectContext(ctx, &ids, `SELECT id::text FROM referral_codes WHERE tenant_id = $1 AND code IN ('OWN1', 'OWN2') ORDER BY code`, tenant); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// With sequential scans priced out, a query that cannot use the primary key still scans.
	if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	// The session's counters may still hold earlier statements' scans: compare before and after.
	scans := func() (seq, idx int) {
		t.Helper()
		if err := tx.QueryRowxContext(ctx, `SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0)
			FROM pg_stat_xact_user_tables WHERE relname = 'referral_codes'`).Scan(&seq, &idx); err != nil {
			t.Fatal(err)
		}
		return seq, idx
	}
	seq0, idx0 := scans()
	got, err := postgres.NewSource(tx).Owners(ctx, tenant, "code", append(ids, "not-a-uuid"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]postgres.Owner{
		ids[0]: {Users: []string{"u1"}, Codes: []string{"OWN1"}},
		ids[1]: {Users: []string{"u2"}, Codes: []string{"OWN2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("owners %+v, want %+v", got, want)
	}
	seq, idx := scans()
	if seq, idx = seq-seq0, idx-idx0; seq != 0 || idx == 0 {
		t.Fatalf("owner lookup: %d sequential scans, %d index scans; want 0 and at least 1", seq, idx)
	}
}
