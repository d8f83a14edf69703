package adminapi_test

import (
	"net/http"
	"testing"
)

// TestPayTenantIsolation: every §10 route of one tenant's admin sees nothing of another
// tenant's commissions, payouts, policy and balances: ids answer 404 as unknown ones do, lists
// and runs leave the other tenant's rows alone.
func TestPayTenantIsolation(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	aff := w.affiliate(t, "alice", "")
	w.apply(t, "bob", "ALICE")
	w.payPolicy(t, 0, 0)
	o := w.deposit(t, "dep_1", 1000)
	row := o.Commissions[0].ID
	var run payRun
	w.ok(t, w.e.do(http.MethodPost, "/v1/affiliate/payouts", w.adm, map[string]any{"currency_id": "EUR"}), &run)
	payout := run.Items[0].ID
	before := w.payCounts(t)

	other := evtOn(w.e, w.tenant+"-other")
	adm := other.adm
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/affiliate/commissions/" + row + "/reverse", map[string]any{}},
		{"GET", "/v1/affiliate/payouts/" + payout, nil},
		{"PUT", "/v1/affiliate/payouts/" + payout + "/status", map[string]any{"status": "failed"}},
		{"GET", "/v1/affiliates/" + aff + "/balance", nil},
	} {
		w.e.do(c.method, c.path, adm, c.body).fail(t, http.StatusNotFound, "NOT_FOUND")
	}
	other.e.do(http.MethodPost, "/v1/events", other.svc, map[string]any{"event_id": "r", "type": "deposit.refunded",
		"user_id": "bob", "reverses": "dep_1"}).fail(t, http.StatusNotFound, "NOT_FOUND")
	other.e.do(http.MethodPost, "/v1/affiliate/payouts", adm, map[string]any{"currency_id": "EUR", "affiliate_ids": []string{aff}}).
		fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	var empty payRun
	other.ok(t, other.e.do(http.MethodPost, "/v1/affiliate/payouts", adm, map[string]any{"currency_id": "EUR"}), &empty)
	if len(empty.Items)+len(empty.Skipped) != 0 {
		t.Fatalf("the other tenant's run considered %+v", empty)
	}
	var list evtList[payPayout]
	other.ok(t, other.e.do(http.MethodGet, "/v1/affiliate/payouts", adm, nil), &list)
	var rows evtList[evtCommission]
	other.ok(t, other.e.do(http.MethodGet, "/v1/affiliate/commissions?payout_id="+payout, adm, nil), &rows)
	if list.Total != 0 || rows.Total != 0 {
		t.Fatalf("the other tenant lists %d payouts and %d commission rows", list.Total, rows.Total)
	}
	var policy struct {
		HoldDays  int     `json:"hold_days"`
		UpdatedAt *string `json:"updated_at"`
	}
	other.ok(t, other.e.do(http.MethodGet, "/v1/affiliate/payout-policy", adm, nil), &policy)
	if policy.HoldDays != 30 || policy.UpdatedAt != nil {
		t.Fatalf("the other tenant's policy: %+v, want the defaults", policy)
	}
	if after := w.payCounts(t); after != before {
		t.Fatalf("the other tenant's requests wrote: %s, before %s", after, before)
	}
}
