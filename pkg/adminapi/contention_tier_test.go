package adminapi_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

// TestContentionDeleteTierVsEventBatches deletes a tier that many affiliates pin while event
// batches pay those affiliates. The batches lock the affiliates in id order; clearing the
// overrides must take them in the same order, so neither side deadlocks into a 500.
func TestContentionDeleteTierVsEventBatches(t *testing.T) {
	w := evtNew(t)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	const affiliates, rounds, batches = 12, 8, 6
	// Batch b carries the events of every affiliate's referee b: the batches lock disjoint
	// referrals and then all the affiliates, so they queue on the affiliates in id order, each
	// holding a prefix of them while it waits.
	ids := make([]string, affiliates)
	users := make([][]string, batches)
	for i := range affiliates {
		ids[i] = w.affiliate(t, fmt.Sprintf("pin_%02d", i), "")
		for b := range batches {
			user := fmt.Sprintf("pin_%02d_ref_%d", i, b)
			w.apply(t, user, evtCode(fmt.Sprintf("pin_%02d", i)))
			users[b] = append(users[b], user)
		}
	}
	for round := range rounds {
		tier := w.tier(t, fmt.Sprintf("pinned %d", round), "0.05", 0, 0, round)
		// Pinned in a random order, so the rows' physical order is not their id order.
		for _, k := range rand.Perm(affiliates) {
			var a map[string]any
			w.ok(t, w.e.do(http.MethodGet, "/v1/affiliates/"+ids[k], w.adm, nil), &a)
			a["tier_override_id"] = tier
			w.ok(t, w.e.do(http.MethodPut, "/v1/affiliates/"+ids[k], w.adm, a), nil)
		}
		var del *resp
		posts := make([]*resp, batches)
		fns := []func(){func() {
			// A little after the batches, so it meets them queued on the affiliates.
			time.Sleep(time.Duration(round%4) * time.Millisecond)
			del = w.e.do(http.MethodDelete, "/v1/affiliate/tiers/"+tier, w.adm, nil)
		}}
		for b := range batches {
			var evs []any
			for _, user := range users[b] {
				evs = append(evs, evtBody(fmt.Sprintf("r%d_%s", round, user), "deposit.completed", user,
					map[string]any{"amount": 1000}))
			}
			fns = append(fns, func() {
				posts[b] = w.e.do(http.MethodPost, "/v1/events/batch", w.svc, map[string]any{"events": evs})
			})
		}
		contentionRun(fns...)
		if del.Status != http.StatusNoContent {
			t.Fatalf("round %d: DELETE tier answered %d: %s\nlog: %s", round, del.Status, del.Body, w.e.log.String())
		}
		for b, r := range posts {
			var out struct {
				Results []evtOutcome `json:"results"`
			}
			w.ok(t, r, &out)
			for _, o := range out.Results {
				if o.Status != "processed" {
					t.Fatalf("round %d batch %d: %+v", round, b, o)
				}
			}
		}
		var pinned int
		if err := w.e.store.DB().Get(&pinned, `SELECT count(*) FROM affiliates WHERE tenant_id = $1 AND tier_override_id IS NOT NULL`, w.tenant); err != nil {
			t.Fatal(err)
		}
		if pinned != 0 {
			t.Fatalf("round %d: %d affiliates still pin the deleted tier", round, pinned)
		}
	}
}
