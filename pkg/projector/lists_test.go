package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// qryListsMatch checks every referrer's referral lists (all, and per status), page by page,
// and their period counts against PostgreSQL.
func qryListsMatch(t *testing.T, p *Projector, tenant string, referrers int, when string) {
	t.Helper()
	ctx := context.Background()
	users := make([]string, referrers)
	for i := range users {
		users[i] = fmt.Sprintf("r%d", i+1)
	}
	all, err := postgres.NewSource(p.db).ReferrerReferrals(ctx, tenant, users)
	if err != nil {
		t.Fatal(err)
	}
	since := referral.Period("30d").Start(p.Now()).UnixMicro()
	for _, u := range users {
		counts := map[string]int64{}
		for _, status := range append([]string{""}, referral.ReferralStatuses...) {
			var want []string
			for _, r := range all[u] {
				if status == "" || r.Status == status {
					b, _ := json.Marshal(apishape.NewReferral(r))
					want = append(want, string(b))
				}
				if status == r.Status && r.CreatedAt.UnixMicro() >= since {
					counts[status]++
				}
			}
			for off := 0; off <= len(want); off += 7 {
				served, total, docs, err := p.cache.ReferralPage(ctx, tenant, u, status, off, 7)
				if err != nil || !served || total != len(want) {
					t.Fatalf("%s: %s %q page at %d: served %v, total %d (want %d), %v", when, u, status, off, served, total, len(want), err)
				}
				for i, d := range docs {
					if string(d) != want[off+i] {
						t.Fatalf("%s: %s %q item %d:\n%s\nwant\n%s", when, u, status, off+i, d, want[off+i])
					}
				}
				if len(docs) != min(7, len(want)-off) {
					t.Fatalf("%s: %s %q page at %d has %d items", when, u, status, off, len(docs))
				}
			}
		}
		us := since
		_, got, _, err := p.cache.ReferralCounts(ctx, tenant, u, &us, referral.ReferralStatuses, "wsum")
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range referral.ReferralStatuses {
			if got[i] != counts[st] {
				t.Fatalf("%s: %s has %d %s referrals in 30 days, want %d", when, u, got[i], st, counts[st])
			}
		}
	}
}

// TestQryProjectorReferralLists: a referrer's lists are sorted sets equal to PostgreSQL's
// lists (newest first, ties by id), page by page and per status, after a rebuild and after new
// referrals and status changes applied entry by entry.
func TestQryProjectorReferralLists(t *testing.T) {
	p, _ := qryProjector(t)
	qryLeaderSeed(t, p, "t1", 20, 400)
	qryRound(t, p)
	qryListsMatch(t, p, "t1", 20, "after the rebuild")
	qryLeaderRefer(t, p, "t1", 20, 30, "q")
	if _, err := p.db.Exec(`UPDATE referrals SET status = 'rejected' WHERE tenant_id = 't1' AND id IN
		(SELECT id FROM referrals WHERE tenant_id = 't1' AND status = 'pending' ORDER BY id LIMIT 15)`); err != nil {
		t.Fatal(err)
	}
	// Equal created_at: the order falls back to the ids.
	if _, err := p.db.Exec(`UPDATE referrals SET created_at = '2026-01-01T00:00:00Z' WHERE tenant_id = 't1' AND id IN
		(SELECT id FROM referrals WHERE tenant_id = 't1' AND referrer_id = 'r1' ORDER BY id LIMIT 5)`); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	qryListsMatch(t, p, "t1", 20, "after new referrals and status changes")
}
