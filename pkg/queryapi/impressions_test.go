package queryapi

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestQryStatsImpressions: a player's stats count the impressions of the player's own codes in
// the period, at most a second old, and no one else's.
func TestQryStatsImpressions(t *testing.T) {
	w := qryNewWorld(t)
	a, e, _ := qryServeAPI(t, w.db, w.rdb, Config{})
	clock := time.Now()
	a.Now = func() time.Time { return clock }
	s := postgres.NewStore(w.db)
	record := func(tenant, code string, n int) {
		t.Helper()
		for range n {
			out, err := s.RecordImpression(context.Background(), referral.NewImpression{TenantID: tenant, Code: code})
			if err != nil || !out.Valid {
				t.Fatalf("record %s: %+v %v", code, out, err)
			}
		}
	}
	stats := func(user, period string) int64 {
		t.Helper()
		var got apishape.PlayerStats
		w.read(e, "/v1/referral/stats?period="+period, user, &got)
		return got.Impressions
	}
	// BOB1 is used up, so bob gets a second code for the clicks.
	if _, err := s.CreatePlayerCode(context.Background(), w.tenant, "bob", "BOB2", nil); err != nil {
		t.Fatal(err)
	}
	record(w.tenant, "ALICE1", 3)
	record(w.tenant, "BOB2", 2)
	if got := stats("alice", "7d"); got != 3 {
		t.Fatalf("alice's impressions %d, want 3", got)
	}
	if got := stats("bob", "all"); got != 2 {
		t.Fatalf("bob's impressions %d, want 2", got)
	}
	if got := stats("zed", "30d"); got != 0 {
		t.Fatalf("zed's impressions %d, want 0", got)
	}
	// Within a second the counted total is served again; after it, the old total is served
	// while a refresh counts the new impressions, which then show.
	record(w.tenant, "ALICE1", 4)
	if got := stats("alice", "7d"); got != 3 {
		t.Fatalf("alice's impressions within the second: %d, want the counted 3", got)
	}
	clock = clock.Add(impressionFreshness)
	eventually := func(user, period string, want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for got := stats(user, period); got != want; got = stats(user, period) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's impressions stay %d, want %d", user, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually("alice", "7d", 7)
	// The tenant's codes only: an impression of another tenant's code of the same name is not hers.
	if _, err := w.db.Exec(`UPDATE impression_counts SET tenant_id = 'elsewhere' WHERE tenant_id = $1 AND code_id = (SELECT id FROM referral_codes WHERE tenant_id = $1 AND code = 'BOB2')`, w.tenant); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(impressionFreshness)
	eventually("bob", "all", 0)

	// Many players reading at once while the totals go stale are refreshed together.
	record(w.tenant, "ALICE1", 1)
	clock = clock.Add(impressionFreshness)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"alice", "bob", "zed", "carol"}[i%4]
			rec := w.get(e, "/v1/referral/stats?period=7d", user)
			if rec.Code != http.StatusOK {
				t.Errorf("%s: %d %s", user, rec.Code, rec.Body)
			}
		}()
	}
	wg.Wait()
	eventually("alice", "7d", 8)
}
