package adminapi_test

import (
	"net/http"
	"testing"
)

// TestPayClawback: the reversal that brings R to B claws back, once, the rewards of campaigns
// with clawback set (not of the others); an original without commissions claws back on its full
// reversal; the referral keeps its status; and the money comes back from a suspended affiliate.
func TestPayClawback(t *testing.T) {
	w := payNew(t)
	w.campaign(t, "deposit.completed", nil, evtWallet("points", 100), evtWallet("points", 50), "clawback", true)
	w.campaign(t, "deposit.completed", nil, evtWallet("coins", 7), evtWallet(), "name", "kept")
	w.campaign(t, "signup.done", nil, evtWallet("points", 30), evtWallet(), "clawback", true, "name", "signup")
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	aff := w.affiliate(t, "alice", "")
	ref := w.apply(t, "bob", "ALICE")
	dep := w.deposit(t, "dep_1", 1000)
	if got := evtRewarded(dep.Rewards); got != "bob/referee=50 points alice/referrer=100 points alice/referrer=7 coins" {
		t.Fatalf("dep_1 rewarded %s", got)
	}
	w.setAffiliateStatus(t, aff, "suspended")

	o := w.reverse(t, "ref_1", "dep_1", 600)
	if len(o.Rewards) != 0 || evtPaid(o.Commissions) != "alice@0=-60" {
		t.Fatalf("partial reversal: rewards %s, commissions %s", evtRewarded(o.Rewards), evtPaid(o.Commissions))
	}
	o = w.reverse(t, "ref_2", "dep_1", 0)
	if got := evtRewarded(o.Rewards); got != "bob/referee=-50 points alice/referrer=-100 points" || evtPaid(o.Commissions) != "alice@0=-40" {
		t.Fatalf("full reversal: rewards %s, commissions %s", got, evtPaid(o.Commissions))
	}
	for i, r := range o.Rewards {
		if r.EventID != "ref_2" || r.ID == dep.Rewards[i].ID {
			t.Fatalf("clawback row %+v", r)
		}
	}
	var rows evtList[struct {
		Amount     int64   `json:"amount"`
		ReversesID *string `json:"reverses_id"`
	}]
	w.ok(t, w.e.do(http.MethodGet, "/v1/referral/rewards?event_id=ref_2", w.adm, nil), &rows)
	if rows.Total != 2 || rows.Items[0].ReversesID == nil {
		t.Fatalf("reward ledger of ref_2: %+v", rows)
	}
	if got := w.referral(t, ref.ID).Status; got != "converted" {
		t.Fatalf("referral status %s after the clawback", got)
	}

	// An original without commissions: its one full reversal claws back.
	sig := w.event(t, evtBody("sig_1", "signup.done", "bob", nil))
	if evtRewarded(sig.Rewards) != "alice/referrer=30 points" {
		t.Fatalf("sig_1 rewarded %s", evtRewarded(sig.Rewards))
	}
	o = w.event(t, map[string]any{"event_id": "ref_sig", "type": "signup.reverted", "user_id": "bob", "reverses": "sig_1"})
	if evtRewarded(o.Rewards) != "alice/referrer=-30 points" || len(o.Commissions) != 0 {
		t.Fatalf("reversal of sig_1: %s %s", evtRewarded(o.Rewards), evtPaid(o.Commissions))
	}
	var sum int64
	if err := w.e.store.DB().Get(&sum, `SELECT sum(amount) FROM rewards WHERE tenant_id = $1 AND currency_id = 'points'`, w.tenant); err != nil {
		t.Fatal(err)
	}
	if sum != 0 {
		t.Fatalf("points left after every clawback: %d", sum)
	}
}
