package adminapi_test

import (
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
)

// evtParallel posts bodies to path at once (one goroutine each) and returns the answers in order.
func (w *evtWorld) evtParallel(t *testing.T, path string, bodies []any) []*resp {
	t.Helper()
	out := make([]*resp, len(bodies))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = w.e.do(http.MethodPost, path, w.svc, b)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestEvtConcurrentSameEventPaysOnce(t *testing.T) {
	tr := evtNewTree(t)
	tr.campaign(t, "deposit.completed", nil, evtWallet("points", 10), evtWallet("points", 5))
	tr.apply(t, "bob", "ALICE")
	bodies := make([]any, 50)
	for i := range bodies {
		bodies[i] = evtBody("same", "deposit.completed", "bob", map[string]any{"amount": 1000 + i})
	}
	var first *evtOutcome
	processed := 0
	for _, r := range tr.evtParallel(t, "/v1/events", bodies) {
		var o evtOutcome
		tr.ok(t, r, &o)
		if o.Status == "processed" {
			processed++
		} else if o.Status != "duplicate" {
			t.Fatalf("status %q", o.Status)
		}
		if first == nil {
			first = &o
		} else if !reflect.DeepEqual(o.Rewards, first.Rewards) || !reflect.DeepEqual(o.Commissions, first.Commissions) {
			t.Fatalf("answers differ: %+v vs %+v", o, *first)
		}
	}
	if processed != 1 {
		t.Fatalf("%d posts processed, want 1", processed)
	}
	if n := evtCount(t, tr.tenant, "rewards"); n != 2 {
		t.Fatalf("%d reward rows, want 2", n)
	}
	if n := evtCount(t, tr.tenant, "commissions"); n != 3 {
		t.Fatalf("%d commission rows, want 3", n)
	}
}

func TestEvtConcurrentRefereeEvents(t *testing.T) {
	tr := evtNewTree(t)
	tr.campaign(t, "deposit.completed", nil, evtWallet("points", 10), evtWallet("points", 5))
	tr.campaign(t, "deposit.completed", map[string]any{"amount": map[string]any{"gte": 500}}, evtWallet("gems", 1), evtWallet())
	tr.apply(t, "bob", "ALICE")
	tr.apply(t, "carol", "ALICE")
	var bodies []any
	var wantByLevel [3]int64
	for i := range 40 {
		user := []string{"bob", "carol"}[i%2]
		amount := int64(333 + 37*i)
		bodies = append(bodies, evtBody(fmt.Sprintf("c%d", i), "deposit.completed", user, map[string]any{"amount": amount}))
		wantByLevel[0] += amount * 50_000 / 1_000_000
		wantByLevel[1] += amount * 30_000 / 1_000_000
		wantByLevel[2] += amount * 10_000 / 1_000_000
	}
	// Half through single posts, half through two batches, all at once.
	var single []any
	batches := [][]any{{}, {}}
	for i, b := range bodies {
		switch i % 4 {
		case 0, 1:
			single = append(single, b)
		default:
			batches[i%2] = append(batches[i%2], b)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	var singles []*resp
	go func() { defer wg.Done(); singles = tr.evtParallel(t, "/v1/events", single) }()
	var batched []*resp
	go func() {
		defer wg.Done()
		batched = tr.evtParallel(t, "/v1/events/batch", []any{map[string]any{"events": batches[0]}, map[string]any{"events": batches[1]}})
	}()
	wg.Wait()
	for _, r := range append(singles, batched...) {
		tr.ok(t, r, nil)
	}

	// Each campaign paid each referral exactly once.
	var rw evtList[evtReward]
	tr.ok(t, tr.e.do(http.MethodGet, "/v1/referral/rewards?limit=100", tr.adm, nil), &rw)
	perCampaignReferral := map[string]int{}
	for _, r := range rw.Items {
		perCampaignReferral[r.CampaignID+"/"+r.ReferralID+"/"+r.Role]++
	}
	// Campaign 1 pays both sides, campaign 2 only the referrer (empty referee wallet); two
	// referrals: 2×2 + 2×1 rows, each key once.
	if rw.Total != 6 || len(perCampaignReferral) != 6 {
		t.Fatalf("rewards = %d rows, keys %v", rw.Total, perCampaignReferral)
	}
	for k, n := range perCampaignReferral {
		if n != 1 {
			t.Fatalf("%s paid %d times", k, n)
		}
	}
	// Commission totals per level equal the sum of per-event floors.
	var sums []struct {
		Level int
		Sum   int64
	}
	if err := tr.e.store.DB().Select(&sums, `SELECT level, sum(amount) AS sum FROM commissions WHERE tenant_id = $1 GROUP BY level ORDER BY level`, tr.tenant); err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("levels = %+v", sums)
	}
	for _, s := range sums {
		if s.Sum != wantByLevel[s.Level] {
			t.Fatalf("level %d total = %d, want %d", s.Level, s.Sum, wantByLevel[s.Level])
		}
	}
	// Every event recorded once (plus the two referral.applied events of apply-code), and the
	// affiliate's revenue counter equals the sum of bases.
	if n := evtCount(t, tr.tenant, "events"); n != 42 {
		t.Fatalf("%d events recorded, want 42", n)
	}
	var revenue, bases int64
	for _, b := range bodies {
		bases += int64(b.(map[string]any)["payload"].(map[string]any)["amount"].(int64))
	}
	if err := tr.e.store.DB().Get(&revenue, `SELECT referee_revenue FROM affiliates WHERE id = $1`, tr.alice); err != nil {
		t.Fatal(err)
	}
	if revenue != bases {
		t.Fatalf("referee_revenue = %d, want %d", revenue, bases)
	}
}
