package adminapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// payCounts counts every table a §10 write touches, for the tenant.
func (w *payWorld) payCounts(t testing.TB) string {
	t.Helper()
	var parts []string
	for _, q := range []string{
		`SELECT count(*) FROM commissions WHERE tenant_id = $1`,
		`SELECT count(*) FROM rewards WHERE tenant_id = $1`,
		`SELECT count(*) FROM events WHERE tenant_id = $1`,
		`SELECT count(*) FROM event_reversals WHERE tenant_id = $1`,
		`SELECT count(*) FROM payouts WHERE tenant_id = $1`,
		`SELECT count(*) FROM payouts WHERE tenant_id = $1 AND status <> 'pending'`,
		`SELECT count(*) FROM payout_rows pr JOIN payouts p ON p.id = pr.payout_id WHERE p.tenant_id = $1 AND pr.live`,
		`SELECT count(*) FROM payout_policies WHERE tenant_id = $1`,
		`SELECT COALESCE(sum(referee_revenue), 0) FROM affiliates WHERE tenant_id = $1`,
	} {
		var n int64
		if err := w.e.store.DB().Get(&n, q, w.tenant); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprint(n))
	}
	return strings.Join(parts, ",")
}

// TestPayBadInputs: every bad input of SPEC §10 is answered with its code, and none of them
// writes anything.
func TestPayBadInputs(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	aff := w.affiliate(t, "alice", "")
	w.apply(t, "bob", "ALICE")
	w.apply(t, "carol", "ALICE")
	w.payPolicy(t, 0, 0)
	w.deposit(t, "dep_1", 1000)
	w.event(t, evtBody("plain", "login", "bob", nil)) // no commission: reversible in full only
	w.reverse(t, "ref_1", "dep_1", 400)
	w.reverse(t, "ref_plain", "plain", 0)
	w.event(t, evtBody("dep_c", "deposit.completed", "carol", map[string]any{"amount": 500}))
	other := evtOn(w.e, w.tenant+"-other")
	other.event(t, evtBody("dep_other", "deposit.completed", "bob", map[string]any{"amount": 500}))
	var rows evtList[evtCommission]
	w.ok(t, w.e.do(http.MethodGet, "/v1/affiliate/commissions?event_id=ref_1", w.adm, nil), &rows)
	negative := rows.Items[0].ID
	w.ok(t, w.e.do(http.MethodGet, "/v1/affiliate/commissions?event_id=dep_1", w.adm, nil), &rows)
	var positive string
	for _, c := range rows.Items {
		if c.Amount > 0 {
			positive = c.ID
		}
	}
	var run payRun
	w.ok(t, w.e.do(http.MethodPost, "/v1/affiliate/payouts", w.adm, map[string]any{"currency_id": "EUR"}), &run)
	if len(run.Items) != 1 {
		t.Fatalf("run: %+v", run)
	}
	payout := run.Items[0].ID
	w.ok(t, w.e.do(http.MethodPut, "/v1/affiliate/payouts/"+payout+"/status", w.adm, map[string]any{"status": "paid"}), nil)
	missing := "00000000-0000-4000-8000-000000000000"
	rev := func(extra ...any) map[string]any {
		b := map[string]any{"event_id": "ref_bad", "type": "deposit.refunded", "user_id": "bob", "reverses": "dep_1"}
		for i := 0; i+1 < len(extra); i += 2 {
			b[extra[i].(string)] = extra[i+1]
		}
		return b
	}

	before := w.payCounts(t)
	for _, c := range []struct {
		name         string
		method, path string
		body         any
		status       int
		code, field  string
	}{
		{"unknown reverses", "POST", "/v1/events", rev("reverses", "nope"), 404, "NOT_FOUND", ""},
		{"another tenant's event", "POST", "/v1/events", rev("reverses", "dep_other"), 404, "NOT_FOUND", ""},
		{"reversal of a reversal", "POST", "/v1/events", rev("reverses", "ref_1"), 400, "VALIDATION_FAILED", "reverses"},
		{"another user", "POST", "/v1/events", rev("user_id", "carol"), 400, "VALIDATION_FAILED", "user_id"},
		{"zero amount", "POST", "/v1/events", rev("reverse_amount", 0), 400, "VALIDATION_FAILED", "reverse_amount"},
		{"negative amount", "POST", "/v1/events", rev("reverse_amount", -5), 400, "VALIDATION_FAILED", "reverse_amount"},
		{"fractional amount", "POST", "/v1/events", rev("reverse_amount", 1.5), 400, "VALIDATION_FAILED", "reverse_amount"},
		{"amount as a string", "POST", "/v1/events", rev("reverse_amount", "5"), 400, "VALIDATION_FAILED", "reverse_amount"},
		{"huge amount", "POST", "/v1/events", `{"event_id":"ref_bad","type":"deposit.refunded","user_id":"bob","reverses":"dep_1","reverse_amount":1e999999}`, 400, "VALIDATION_FAILED", "reverse_amount"},
		{"amount without reverses", "POST", "/v1/events", map[string]any{"event_id": "ref_bad", "type": "x", "user_id": "bob", "reverse_amount": 5}, 400, "VALIDATION_FAILED", "reverse_amount"},
		{"empty reverses", "POST", "/v1/events", rev("reverses", ""), 400, "VALIDATION_FAILED", "reverses"},
		{"NUL in reverses", "POST", "/v1/events", rev("reverses", "dep\u0000"), 400, "VALIDATION_FAILED", "reverses"},
		{"amount on an original without commissions", "POST", "/v1/events", rev("reverses", "plain", "reverse_amount", 1), 400, "VALIDATION_FAILED", "reverse_amount"},
		{"more than remains", "POST", "/v1/events", rev("reverse_amount", 601), 422, "NOT_REVERSIBLE", ""},
		{"original without commissions reversed twice", "POST", "/v1/events", rev("reverses", "plain"), 422, "NOT_REVERSIBLE", ""},
		{"simulate: more than remains", "POST", "/v1/affiliate/simulate", rev("reverse_amount", 601), 422, "NOT_REVERSIBLE", ""},
		{"simulate: unknown", "POST", "/v1/affiliate/simulate", rev("reverses", "nope"), 404, "NOT_FOUND", ""},
		{"row reversal of a reversal row", "POST", "/v1/affiliate/commissions/" + negative + "/reverse", map[string]any{}, 422, "NOT_REVERSIBLE", ""},
		{"row reversal, unknown row", "POST", "/v1/affiliate/commissions/" + missing + "/reverse", map[string]any{}, 404, "NOT_FOUND", ""},
		{"row reversal, bad id", "POST", "/v1/affiliate/commissions/xyz/reverse", map[string]any{}, 404, "NOT_FOUND", ""},
		{"row reversal, unknown field", "POST", "/v1/affiliate/commissions/" + positive + "/reverse", map[string]any{"why": "x"}, 400, "VALIDATION_FAILED", "why"},
		{"row reversal, long reason", "POST", "/v1/affiliate/commissions/" + positive + "/reverse", map[string]any{"reason": strings.Repeat("x", 1001)}, 400, "VALIDATION_FAILED", "reason"},
		{"row reversal, bad JSON", "POST", "/v1/affiliate/commissions/" + positive + "/reverse", `{"reason":`, 400, "INVALID_JSON", ""},
		{"policy: hold too long", "PUT", "/v1/affiliate/payout-policy", map[string]any{"hold_days": 366}, 400, "VALIDATION_FAILED", "hold_days"},
		{"policy: negative hold", "PUT", "/v1/affiliate/payout-policy", map[string]any{"hold_days": -1}, 400, "VALIDATION_FAILED", "hold_days"},
		{"policy: negative minimum", "PUT", "/v1/affiliate/payout-policy", map[string]any{"minimum_payout": []any{map[string]any{"currency_id": "EUR", "amount": -1}}}, 400, "VALIDATION_FAILED", "minimum_payout"},
		{"policy: currency twice", "PUT", "/v1/affiliate/payout-policy", map[string]any{"minimum_payout": []any{map[string]any{"currency_id": "EUR", "amount": 1}, map[string]any{"currency_id": "EUR", "amount": 2}}}, 400, "VALIDATION_FAILED", "minimum_payout"},
		{"policy: minimum without amount", "PUT", "/v1/affiliate/payout-policy", map[string]any{"minimum_payout": []any{map[string]any{"currency_id": "EUR"}}}, 400, "VALIDATION_FAILED", "minimum_payout"},
		{"policy: unknown field", "PUT", "/v1/affiliate/payout-policy", map[string]any{"hold": 3}, 400, "VALIDATION_FAILED", "hold"},
		{"run: no currency", "POST", "/v1/affiliate/payouts", map[string]any{}, 400, "VALIDATION_FAILED", "currency_id"},
		{"run: unknown affiliate", "POST", "/v1/affiliate/payouts", map[string]any{"currency_id": "EUR", "affiliate_ids": []string{aff, missing}}, 400, "VALIDATION_FAILED", "affiliate_ids"},
		{"run: affiliate id not a UUID", "POST", "/v1/affiliate/payouts", map[string]any{"currency_id": "EUR", "affiliate_ids": []string{"x"}}, 400, "VALIDATION_FAILED", "affiliate_ids"},
		{"run: empty list", "POST", "/v1/affiliate/payouts", map[string]any{"currency_id": "EUR", "affiliate_ids": []string{}}, 400, "VALIDATION_FAILED", "affiliate_ids"},
		{"run: read-only amount", "POST", "/v1/affiliate/payouts", map[string]any{"currency_id": "EUR", "amount": 5}, 400, "VALIDATION_FAILED", "amount"},
		{"run: read-only status", "POST", "/v1/affiliate/payouts", map[string]any{"currency_id": "EUR", "status": "paid"}, 400, "VALIDATION_FAILED", "status"},
		{"status: paid again", "PUT", "/v1/affiliate/payouts/" + payout + "/status", map[string]any{"status": "paid"}, 409, "INVALID_TRANSITION", ""},
		{"status: paid to failed", "PUT", "/v1/affiliate/payouts/" + payout + "/status", map[string]any{"status": "failed"}, 409, "INVALID_TRANSITION", ""},
		{"status: back to pending", "PUT", "/v1/affiliate/payouts/" + payout + "/status", map[string]any{"status": "pending"}, 400, "VALIDATION_FAILED", "status"},
		{"status: long reference", "PUT", "/v1/affiliate/payouts/" + payout + "/status", map[string]any{"status": "paid", "reference": strings.Repeat("r", 201)}, 400, "VALIDATION_FAILED", "reference"},
		{"status: unknown payout", "PUT", "/v1/affiliate/payouts/" + missing + "/status", map[string]any{"status": "paid"}, 404, "NOT_FOUND", ""},
		{"get: unknown payout", "GET", "/v1/affiliate/payouts/" + missing, nil, 404, "NOT_FOUND", ""},
		{"list: bad status", "GET", "/v1/affiliate/payouts?status=done", nil, 400, "VALIDATION_FAILED", "status"},
		{"commissions: bad state", "GET", "/v1/affiliate/commissions?state=held", nil, 400, "VALIDATION_FAILED", "state"},
		{"commissions: bad payout_id", "GET", "/v1/affiliate/commissions?payout_id=x", nil, 400, "VALIDATION_FAILED", "payout_id"},
		{"balance: unknown affiliate", "GET", "/v1/affiliates/" + missing + "/balance", nil, 404, "NOT_FOUND", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			eb := w.e.do(c.method, c.path, w.svcOrAdmin(c.path), c.body).fail(t, c.status, c.code)
			if c.field != "" && eb.Error.Fields[c.field] == "" {
				t.Errorf("fields %v do not name %s", eb.Error.Fields, c.field)
			}
		})
	}
	if after := w.payCounts(t); after != before {
		t.Fatalf("bad inputs wrote: counts %s, before %s", after, before)
	}

	// In a batch a bad reversal is rejected alone and the others are processed.
	var res struct {
		Results []evtOutcome `json:"results"`
	}
	w.ok(t, w.e.do(http.MethodPost, "/v1/events/batch", w.svc, map[string]any{"events": []any{
		rev("event_id", "b1", "reverse_amount", 100),
		rev("event_id", "b2", "reverses", "nope"),
		rev("event_id", "b3", "reverse_amount", 10_000),
		rev("event_id", "b4", "reverse_amount", 0),
		evtBody("b5", "deposit.completed", "bob", map[string]any{"amount": 200}),
	}}), &res)
	var got []string
	for _, r := range res.Results {
		s := r.Status
		if r.Error != nil {
			s += ":" + r.Error.Code
		}
		got = append(got, s+" "+evtPaid(r.Commissions))
	}
	want := []string{"processed alice@0=-10", "rejected:NOT_FOUND ", "rejected:NOT_REVERSIBLE ", "rejected:VALIDATION_FAILED ", "processed alice@0=20"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("batch: %q, want %q", got, want)
	}
	if n := evtCount(t, w.tenant, "event_reversals"); n != 3 {
		t.Fatalf("%d reversals recorded, want 3 (ref_1, ref_plain, b1)", n)
	}
}

// svcOrAdmin is the token a §10 route takes in the tests: service for events, admin otherwise.
func (w *payWorld) svcOrAdmin(path string) string {
	if strings.HasPrefix(path, "/v1/events") {
		return w.svc
	}
	return w.adm
}
