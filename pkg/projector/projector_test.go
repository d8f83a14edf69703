package projector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// qryCount reads a counter.
func qryCount(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

func qryInsertCampaign(t *testing.T, p *Projector, tenant, name string) {
	const q = `INSERT INTO campaigns (id, tenant_id, name, qualifying_event, referrer_rewards, referee_rewards,
		active, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, 'x', '{"wallet":[]}', '{"wallet":[]}', true, now(), now())`
	if _, err := p.db.Exec(q, tenant, name); err != nil {
		t.Fatal(err)
	}
}

func qryRound(t *testing.T, p *Projector) {
	t.Helper()
	for again := true; again; {
		var err error
		if again, err = p.Round(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func qryCampaigns(t *testing.T, rdb *redis.Client, tenant string) string {
	t.Helper()
	s, _ := rdb.Get(context.Background(), cache.CampaignsKey(tenant)).Result()
	return s
}

// TestQryProjectorRounds: the first round rebuilds; later rounds apply exactly the transactions
// that committed in between, including one that commits after a later-numbered one; a stale
// position, a position from another database and a wiped Redis each cause a rebuild.
func TestQryProjectorRounds(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	qryInsertCampaign(t, p, "t1", "first")
	qryRound(t, p)
	if got := qryCount(p.metrics.Rebuilds); got != 1 {
		t.Fatalf("rebuilds %v, want 1", got)
	}
	if !strings.Contains(qryCampaigns(t, rdb, "t1"), "first") {
		t.Fatal("rebuild did not project the campaign")
	}

	// Out of order: A writes first, B writes and commits, a round runs, then A commits.
	txA, err := p.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback()
	if _, err := txA.Exec(`INSERT INTO campaigns (id, tenant_id, name, qualifying_event, referrer_rewards,
		referee_rewards, active, created_at, updated_at) VALUES (gen_random_uuid(), 't1', 'A', 'x',
		'{"wallet":[]}', '{"wallet":[]}', true, now(), now())`); err != nil {
		t.Fatal(err)
	}
	qryInsertCampaign(t, p, "t1", "B")
	qryRound(t, p)
	if got := qryCampaigns(t, rdb, "t1"); !strings.Contains(got, `"B"`) || strings.Contains(got, `"A"`) {
		t.Fatalf("after B: %s", got)
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	if got := qryCampaigns(t, rdb, "t1"); !strings.Contains(got, `"A"`) || !strings.Contains(got, `"B"`) {
		t.Fatalf("after A: %s", got)
	}
	if got := qryCount(p.metrics.Applied); got != 2 {
		t.Fatalf("applied %v change rows, want 2", got)
	}

	// A position older than half the retention is not trusted.
	p.Now = func() time.Time { return time.Now().Add(4 * 24 * time.Hour) }
	qryRound(t, p)
	if got := qryCount(p.metrics.Rebuilds); got != 2 {
		t.Fatalf("rebuilds %v after a stale position, want 2", got)
	}
	p.Now = time.Now

	// A position from another database: everything of the other database is discarded.
	pos, _, err := p.cache.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pos.DatabaseID = "00000000-0000-0000-0000-000000000000"
	if _, err := p.cache.SavePosition(ctx, pos, ""); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, cache.CampaignsKey("other-db-tenant"), "[]", 0)
	qryRound(t, p)
	if got := qryCount(p.metrics.Rebuilds); got != 3 {
		t.Fatalf("rebuilds %v after a foreign position, want 3", got)
	}
	if n := rdb.Exists(ctx, cache.CampaignsKey("other-db-tenant")).Val(); n != 0 {
		t.Fatal("documents of another database survived the rebuild")
	}

	// A wiped Redis.
	rdb.FlushDB(ctx)
	qryRound(t, p)
	if got := qryCount(p.metrics.Rebuilds); got != 4 || !strings.Contains(qryCampaigns(t, rdb, "t1"), `"A"`) {
		t.Fatalf("rebuilds %v after a wipe, campaigns %s", got, qryCampaigns(t, rdb, "t1"))
	}
}

// TestQryProjectorPrune: changes older than the retention and behind the position are deleted;
// newer ones stay.
func TestQryProjectorPrune(t *testing.T) {
	p, _ := qryProjector(t)
	qryInsertCampaign(t, p, "t1", "old")
	qryInsertCampaign(t, p, "t1", "new")
	qryRound(t, p)
	if _, err := p.db.Exec(`UPDATE changes SET changed_at = now() - interval '8 days' WHERE seq = (SELECT min(seq) FROM changes)`); err != nil {
		t.Fatal(err)
	}
	p.prune(context.Background())
	var n int
	if err := p.db.Get(&n, `SELECT count(*) FROM changes`); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d changes left, want 1", n)
	}
}
