package adminapi_test

import (
	"net/http"
	"testing"
)

// TestPayWorkedExample is the example of docs/affiliates.md: a deposit, a partial refund before
// the payout, a payout, a partial refund after it that nets against the next payout (paid at a
// demoted tier), the minimum payout, and the full reversal — with every balance on the way.
func TestPayWorkedExample(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.tier(t, "Platinum", "0.2", 0, 8000, 1)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.policy(t, true, "0.05")
	boss := w.affiliate(t, "boss", "")
	alice := w.affiliate(t, "alice", boss)
	w.payPolicy(t, 30, 100)
	w.apply(t, "bob", "ALICE")

	check := func(step, aff string, want string) {
		t.Helper()
		b := w.balance(t, aff)
		if b.String() != want {
			t.Fatalf("%s: balance %s, want %s", step, b, want)
		}
		if sum := b.Pending + b.Available + b.InPayout + b.Paid; sum != w.ledgerNet(t, aff) {
			t.Fatalf("%s: states add up to %d, the ledger's net is %d", step, sum, w.ledgerNet(t, aff))
		}
	}
	revenue := func(want int64) {
		t.Helper()
		var a struct {
			RefereeRevenue int64   `json:"referee_revenue"`
			TierID         *string `json:"tier_id"`
		}
		w.ok(t, w.e.do(http.MethodGet, "/v1/affiliates/"+alice, w.adm, nil), &a)
		if a.RefereeRevenue != want {
			t.Fatalf("referee_revenue = %d, want %d", a.RefereeRevenue, want)
		}
	}

	// Day 0: a deposit of 100.00 EUR pays alice 20% (Platinum) and boss 5%, held 30 days.
	o := w.deposit(t, "dep_1", 10000)
	if got := evtPaid(o.Commissions); got != "alice@0=2000 boss@1=500" {
		t.Fatalf("dep_1 paid %s", got)
	}
	revenue(10000)
	check("day 0", alice, "pending 2000 available 0 in_payout 0 paid 0 reversed 0")

	// Day 10: 40.00 EUR refunded. Every row keeps floor(b × (B − R) / B × rate): alice 1200,
	// boss 300; the negative rows are available at once. alice drops to Gold.
	w.day(10)
	o = w.reverse(t, "ref_1", "dep_1", 4000)
	if got := evtPaid(o.Commissions); got != "alice@0=-800 boss@1=-200" {
		t.Fatalf("ref_1 wrote %s", got)
	}
	revenue(6000)
	check("day 10", alice, "pending 2000 available -800 in_payout 0 paid 0 reversed 800")
	if _, s := w.run(t, nil); s[alice] != "NOTHING_AVAILABLE" || s[boss] != "NOTHING_AVAILABLE" {
		t.Fatalf("day 10 run: %v", s)
	}

	// Day 31: the hold is over; one payout each covers the original and its reversal.
	w.day(31)
	r, s := w.run(t, nil)
	if s[alice] != "1200/2" || s[boss] != "300/2" {
		t.Fatalf("day 31 run: %v", s)
	}
	check("day 31", alice, "pending 0 available 0 in_payout 1200 paid 0 reversed 800")
	var alicePayout string
	for _, p := range r.Items {
		if p.AffiliateID == alice {
			alicePayout = p.ID
		}
	}
	var paid payPayout
	w.ok(t, w.e.do(http.MethodPut, "/v1/affiliate/payouts/"+alicePayout+"/status", w.adm, map[string]any{"status": "paid", "reference": "SEPA-0001"}), &paid)
	if paid.Status != "paid" || paid.PaidAt == nil || paid.Reference == nil || *paid.Reference != "SEPA-0001" {
		t.Fatalf("paid payout: %+v", paid)
	}
	check("paid", alice, "pending 0 available 0 in_payout 0 paid 1200 reversed 800")

	// Day 40: another 10.00 EUR refunded after the payout: the negative row waits for the next.
	w.day(40)
	o = w.reverse(t, "ref_2", "dep_1", 1000)
	if got := evtPaid(o.Commissions); got != "alice@0=-200 boss@1=-50" {
		t.Fatalf("ref_2 wrote %s", got)
	}
	revenue(5000)
	check("day 40", alice, "pending 0 available -200 in_payout 0 paid 1200 reversed 1000")

	// Day 41: a deposit of 25.00 EUR pays at Gold now (revenue 7500 < 8000).
	w.day(41)
	o = w.deposit(t, "dep_2", 2500)
	if got := evtPaid(o.Commissions); got != "alice@0=250 boss@1=125" {
		t.Fatalf("dep_2 paid %s", got)
	}
	revenue(7500)

	// Day 72: 250 − 200 = 50 is below the minimum of 100.
	w.day(72)
	if _, s := w.run(t, nil); s[alice] != "BELOW_MINIMUM_PAYOUT" || s[boss] != "BELOW_MINIMUM_PAYOUT" {
		t.Fatalf("day 72 run: %v", s)
	}
	w.payPolicy(t, 30, 50)
	if _, s := w.run(t, nil); s[alice] != "50/2" || s[boss] != "75/2" {
		t.Fatalf("day 72 run after the minimum fell: %v", s)
	}

	// The rest of dep_1 refunded: nothing remains of its rows; a further reversal is refused.
	o = w.reverse(t, "ref_3", "dep_1", 0)
	if got := evtPaid(o.Commissions); got != "alice@0=-1000 boss@1=-250" {
		t.Fatalf("ref_3 wrote %s", got)
	}
	revenue(2500)
	w.e.do(http.MethodPost, "/v1/events", w.svc, map[string]any{"event_id": "ref_4", "type": "deposit.refunded",
		"user_id": "bob", "reverses": "dep_1"}).fail(t, http.StatusUnprocessableEntity, "NOT_REVERSIBLE")
	check("end", alice, "pending 0 available -1000 in_payout 50 paid 1200 reversed 2000")

	// A repeat of a reversal's event_id is a duplicate with the first outcome, and pays nothing.
	dup := w.reverse(t, "ref_1", "dep_1", 4000)
	if dup.Status != "duplicate" || evtPaid(dup.Commissions) != "alice@0=-800 boss@1=-200" {
		t.Fatalf("repeat of ref_1: %s %s", dup.Status, evtPaid(dup.Commissions))
	}
	check("after the repeat", alice, "pending 0 available -1000 in_payout 50 paid 1200 reversed 2000")
}
