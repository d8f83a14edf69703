package projector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

func TestQryDistrust(t *testing.T) {
	now := time.Now()
	good := cache.Position{DatabaseID: "db", Seq: 7, MarkAt: 123, SavedAt: now}
	ok := postgres.PositionCheck{MarkAt: 123, LastSeq: 9}
	for _, tt := range []struct {
		name string
		pos  cache.Position
		chk  postgres.PositionCheck
		want string // a word of the reason, "" when trusted
	}{
		{"trusted", good, ok, ""},
		{"empty log", cache.Position{DatabaseID: "db", SavedAt: now}, postgres.PositionCheck{}, ""},
		{"other database", cache.Position{DatabaseID: "other", Seq: 7, MarkAt: 123, SavedAt: now}, ok, "another database"},
		{"snapshot ahead", good, postgres.PositionCheck{Ahead: true, MarkAt: 123, LastSeq: 9}, "ahead"},
		{"seq ahead", good, postgres.PositionCheck{MarkAt: 0, LastSeq: 5}, "ahead"},
		{"truncated", good, postgres.PositionCheck{LastSeq: 9}, "truncated"},
		{"seq reused", good, postgres.PositionCheck{MarkAt: 456, LastSeq: 9}, "another"},
		{"stale", cache.Position{DatabaseID: "db", Seq: 7, MarkAt: 123, SavedAt: now.Add(-5 * 24 * time.Hour)}, ok, "older"},
	} {
		got := distrust(tt.pos, "db", tt.chk, now, 7*24*time.Hour)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: distrust %q, want a reason with %q", tt.name, got, tt.want)
		}
	}
}

// qryRebuilds runs rounds until caught up and returns how many rebuilds they made.
func qryRebuilds(t *testing.T, p *Projector) float64 {
	t.Helper()
	before := qryCount(p.metrics.Rebuilds)
	qryRound(t, p)
	return qryCount(p.metrics.Rebuilds) - before
}

// TestQryProjectorRestoredBackup: a database restored from a backup keeps phoenix_meta and the
// system identifier, but the saved position lies ahead of it — its snapshot is later than the
// database's, or its last applied seq was never handed out, or was handed out again to another
// change. Each counts as another database: the read models are rebuilt from what the database
// now holds, so rows that no longer exist are not served.
func TestQryProjectorRestoredBackup(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	qryInsertCampaign(t, p, "t1", "kept")
	qryInsertCampaign(t, p, "t1", "lost")
	if got := qryRebuilds(t, p); got != 1 {
		t.Fatalf("first rounds: %v rebuilds, want 1", got)
	}
	if got := qryRebuilds(t, p); got != 0 {
		t.Fatalf("a trusted position rebuilt %v times", got)
	}
	pos, _, err := p.cache.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// "Restore" a state without the second campaign: the row is gone without a change row.
	if _, err := p.db.Exec(`ALTER TABLE campaigns DISABLE TRIGGER USER; DELETE FROM campaigns WHERE name = 'lost';
		ALTER TABLE campaigns ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	var xmax uint64
	if err := p.db.Get(&xmax, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(*cache.Position)
	}{
		{"snapshot ahead", func(q *cache.Position) { q.Snapshot = fmt.Sprintf("%d:%d:", xmax+1000, xmax+1000) }},
		{"seq never handed out", func(q *cache.Position) { q.Seq += 1000 }},
		{"seq handed out again", func(q *cache.Position) { q.MarkAt-- }},
	} {
		q := pos
		tt.edit(&q)
		if _, err := p.cache.SavePosition(ctx, q, ""); err != nil {
			t.Fatal(err)
		}
		rdb.Set(ctx, cache.CampaignsKey("t1"), `[{"name":"lost"}]`, 0)
		if got := qryRebuilds(t, p); got != 1 {
			t.Fatalf("%s: %v rebuilds, want 1", tt.name, got)
		}
		if got := qryCampaigns(t, rdb, "t1"); strings.Contains(got, "lost") || !strings.Contains(got, "kept") {
			t.Fatalf("%s: campaigns %s after the rebuild", tt.name, got)
		}
		if pos, _, err = p.cache.Position(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQryProjectorTruncatedLog: truncating the change log (losing changes not yet applied) is
// detected and the read models are rebuilt, so the lost change is served; the projector's own
// pruning never looks like a truncation.
func TestQryProjectorTruncatedLog(t *testing.T) {
	p, rdb := qryProjector(t)
	qryInsertCampaign(t, p, "t1", "first")
	qryRound(t, p)
	qryInsertCampaign(t, p, "t1", "pending")
	if _, err := p.db.Exec(`TRUNCATE changes`); err != nil {
		t.Fatal(err)
	}
	if got := qryRebuilds(t, p); got != 1 {
		t.Fatalf("%v rebuilds after a truncation, want 1", got)
	}
	if got := qryCampaigns(t, rdb, "t1"); !strings.Contains(got, "pending") {
		t.Fatalf("the truncated change is not served: %s", got)
	}

	// Pruning everything old keeps the last applied row.
	qryInsertCampaign(t, p, "t1", "later")
	qryRound(t, p)
	p.Now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	p.prune(context.Background())
	p.Now = time.Now
	var n int
	if err := p.db.Get(&n, `SELECT count(*) FROM changes`); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d change rows after pruning, want the last applied one", n)
	}
	if got := qryRebuilds(t, p); got != 0 {
		t.Fatalf("pruning caused %v rebuilds", got)
	}
}

// TestQryProjectorOwnerMoveAfterWipe: a code given to another owner after Redis was wiped and
// rebuilt leaves the previous owner's list — the change row names the previous owner, so
// nothing depends on what Redis remembered before the wipe.
func TestQryProjectorOwnerMoveAfterWipe(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	if _, err := p.db.Exec(`INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		VALUES (gen_random_uuid(), 't1', 'MOVER', 'alice', true, 'player', now(), now())`); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	codes := func(user string) string {
		t.Helper()
		s, err := rdb.HGet(ctx, cache.UserKey("t1", user), cache.SectionCodes).Result()
		if err != nil {
			t.Fatalf("codes of %s: %v", user, err)
		}
		return s
	}
	if !strings.Contains(codes("alice"), "MOVER") {
		t.Fatalf("alice's codes %s", codes("alice"))
	}
	rdb.FlushAll(ctx)
	if got := qryRebuilds(t, p); got != 1 {
		t.Fatalf("%v rebuilds after FLUSHALL, want 1", got)
	}
	if _, err := p.db.Exec(`UPDATE referral_codes SET owner_user_id = 'bob' WHERE code = 'MOVER'`); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	if strings.Contains(codes("alice"), "MOVER") || !strings.Contains(codes("bob"), "MOVER") {
		t.Fatalf("after the move: alice %s, bob %s", codes("alice"), codes("bob"))
	}
	// Deleting it takes it off bob's list.
	if _, err := p.db.Exec(`UPDATE referral_codes SET deleted_at = now() WHERE code = 'MOVER'`); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	if strings.Contains(codes("bob"), "MOVER") {
		t.Fatalf("after the delete: bob %s", codes("bob"))
	}
}
