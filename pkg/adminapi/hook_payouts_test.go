package adminapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
)

// TestPayoutAndReversalFactsPublished: a reversal publishes its negative ledger rows, an
// admin's row reversal its negative commission, a payout run payout.created and a status change
// payout.status_changed.
func TestPayoutAndReversalFactsPublished(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.affiliate(t, "alice", "")
	w.apply(t, "bob", "ALICE")
	w.payPolicy(t, 0, 0)
	w.deposit(t, "dep_1", 1000)
	w.reverse(t, "ref_1", "dep_1", 400)
	var rows evtList[evtCommission]
	w.ok(t, w.e.do(http.MethodGet, "/v1/affiliate/commissions?event_id=dep_1", w.adm, nil), &rows)
	w.ok(t, w.e.do(http.MethodPost, "/v1/affiliate/commissions/"+rows.Items[0].ID+"/reverse", w.adm, map[string]any{"reason": "declined"}), nil)
	w.deposit(t, "dep_2", 1000)
	var run payRun
	w.ok(t, w.e.do(http.MethodPost, "/v1/affiliate/payouts", w.adm, map[string]any{"currency_id": "EUR"}), &run)
	if len(run.Items) != 1 {
		t.Fatalf("run: %+v", run)
	}
	w.ok(t, w.e.do(http.MethodPut, "/v1/affiliate/payouts/"+run.Items[0].ID+"/status", w.adm, map[string]any{"status": "paid"}), nil)

	count := map[string]int{}
	negative := 0
	after := ""
	service := w.e.token(auth.RoleService, "wallet")
	for deadline := time.Now().Add(10 * time.Second); count[outbox.PayoutStatusChanged] == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var page struct {
			Items []struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		w.e.do(http.MethodGet, "/v1/outbox?types=commission.created,payout.created,payout.status_changed&after="+after,
			service, nil).must(t, http.StatusOK, &page)
		for _, it := range page.Items {
			count[it.Type]++
			if it.Type == outbox.CommissionCreated && it.Data["amount"].(float64) < 0 {
				negative++
			}
			if it.Type == outbox.PayoutStatusChanged && it.Data["status"] != "paid" {
				t.Errorf("payout.status_changed data: %v", it.Data)
			}
		}
		after = page.NextCursor
	}
	if negative != 2 || count[outbox.PayoutCreated] != 1 || count[outbox.PayoutStatusChanged] != 1 {
		t.Fatalf("published %v with %d negative commission rows, want 2 negative, one payout created and one paid", count, negative)
	}
}
