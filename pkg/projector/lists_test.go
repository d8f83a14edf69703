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
		_, st, err := p.cache.PeriodStats(ctx, tenant, u, &us, referral.ReferralStatuses)
		if err != nil {
			t.Fatal(err)
		}
		got := st.Counts
		for i, st := range referral.ReferralStatuses {
			if got[i] != counts[st] {
				t.Fatalf("%s: %s has %d %s referrals in 30 days, want %d", when, u, got[i], st, counts[st])
			}
		}
	}
}

// qryRewardsMatch checks every referrer's reward list, page by page, and its 30-day totals per
// currency against PostgreSQL.
func qryRewardsMatch(t *testing.T, p *Projector, tenant string, referrers int, when string) {
	t.Helper()
	ctx := context.Background()
	users := make([]string, referrers)
	for i := range users {
		users[i] = fmt.Sprintf("r%d", i+1)
	}
	all, err := postgres.NewSource(p.db).UserRewards(ctx, tenant, users)
	if err != nil {
		t.Fatal(err)
	}
	since := referral.Period("30d").Start(p.Now()).UnixMicro()
	for _, u := range users {
		var want []string
		totals := map[string]int64{}
		for _, r := range all[u] {
			b, _ := json.Marshal(apishape.NewReward(r))
			want = append(want, string(b))
			if r.CreatedAt.UnixMicro() >= since {
				totals[r.CurrencyID] += r.Amount
			}
		}
		served, total, docs, err := p.cache.RewardPage(ctx, tenant, u, 0, 100)
		if err != nil || !served || total != len(want) || len(docs) != min(100, len(want)) {
			t.Fatalf("%s: %s rewards: served %v, total %d, %d docs, want %d (%v)", when, u, served, total, len(docs), len(want), err)
		}
		for i, d := range docs {
			if string(d) != want[i] {
				t.Fatalf("%s: %s reward %d:\n%s\nwant\n%s", when, u, i, d, want[i])
			}
		}
		us := since
		_, st, err := p.cache.PeriodStats(ctx, tenant, u, &us, referral.ReferralStatuses)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(st.Rewards) != fmt.Sprint(totals) {
			t.Fatalf("%s: %s 30-day rewards %v, want %v", when, u, st.Rewards, totals)
		}
	}
}

// qryRewardAll pays every referrer a reward per referral (two currencies), at the referral's time.
func qryRewardAll(t *testing.T, p *Projector, tenant string) {
	t.Helper()
	if _, err := p.db.Exec(`INSERT INTO campaigns (id, tenant_id, name, qualifying_event, referrer_rewards, referee_rewards,
		active, created_at, updated_at) SELECT gen_random_uuid(), $1, 'pay', 'x', '{"wallet":[]}', '{"wallet":[]}', true, now(), now()
		WHERE NOT EXISTS (SELECT 1 FROM campaigns WHERE tenant_id = $1 AND name = 'pay')`, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := p.db.Exec(`INSERT INTO rewards (id, tenant_id, user_id, role, campaign_id, referral_id, event_id, currency_id, amount, created_at)
		SELECT gen_random_uuid(), r.tenant_id, r.referrer_id, 'referrer', c.id, r.id, 'referral.applied',
		       CASE WHEN length(r.referee_id) % 2 = 0 THEN 'gold' ELSE 'gems' END, 1 + length(r.referee_id), r.created_at
		FROM referrals r JOIN campaigns c ON c.tenant_id = r.tenant_id AND c.name = 'pay'
		WHERE r.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM rewards w WHERE w.referral_id = r.id)`, tenant); err != nil {
		t.Fatal(err)
	}
}

// TestQryProjectorReferralLists: a referrer's referral and reward lists are sorted sets equal
// to PostgreSQL's lists (newest first, ties by id), page by page and per status, with the same
// period counts and reward totals, after a rebuild and after new referrals, rewards and status
// changes applied entry by entry.
func TestQryProjectorReferralLists(t *testing.T) {
	p, _ := qryProjector(t)
	qryLeaderSeed(t, p, "t1", 20, 400)
	qryRewardAll(t, p, "t1")
	qryRound(t, p)
	qryListsMatch(t, p, "t1", 20, "after the rebuild")
	qryRewardsMatch(t, p, "t1", 20, "after the rebuild")
	qryLeaderRefer(t, p, "t1", 20, 30, "q")
	qryRewardAll(t, p, "t1")
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
	qryRewardsMatch(t, p, "t1", 20, "after new referrals and rewards")
}
