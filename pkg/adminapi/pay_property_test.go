package adminapi_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"
)

// The reference model of SPEC §10: a deliberately plain restatement of the commission split,
// tier choice, reversals and payouts over a small world (hold 0, no minimum).

type paymRow struct {
	id, aff, event string
	base, rate     int64 // rate in millionths
	amount         int64 // as written: positive for an original, negative for a reversal
	reverses       string
}

type paymEvent struct {
	user     string
	rows     []string // its positive rows
	base     int64    // B
	reversed int64    // R
	revenue  int64    // what it added to its affiliate's referee_revenue
	aff      int      // that affiliate
	full     bool     // reversed in full (an original without commissions)
}

type paymAffiliate struct {
	id, user, status string
	parent           int // -1 for a root
	revenue          int64
}

type paymWorld struct {
	affs      []*paymAffiliate
	referrer  map[string]int // referee → affiliate index
	gold      int64
	plat      int64
	threshold int64
	bonusRule bool
	rows      map[string]*paymRow
	order     []string // row ids, in writing order
	events    map[string]*paymEvent
	net       map[string]int64  // original row → current net
	payoutOf  map[string]string // row → live payout
	payouts   map[string]string // payout → status
	payoutAff map[string]int
}

func (m *paymWorld) rate(a *paymAffiliate) int64 {
	if a.revenue >= m.threshold {
		return m.plat
	}
	return m.gold
}

// deposit returns the commissions the event writes, "user@level=amount" in the engine's order
// (rule by rule, level by level); rows gets the rows in that order without ids.
func (m *paymWorld) deposit(user string, amount, bonus int64, hasBonus bool) (string, []paymRow, *paymEvent) {
	ai := m.referrer[user]
	a := m.affs[ai]
	type match struct{ base, rate int64 }
	matches := []match{{amount, -1}}
	largest := amount
	if m.bonusRule && hasBonus {
		matches = append(matches, match{bonus, 300_000})
		largest = max(largest, bonus)
	}
	a.revenue += largest
	ev := &paymEvent{user: user, revenue: largest, aff: ai}
	var rows []paymRow
	var parts []string
	if a.status == "active" {
		for _, mt := range matches {
			rate := mt.rate
			if rate < 0 {
				rate = m.rate(a)
			}
			if amt := mt.base * rate / 1_000_000; amt > 0 {
				rows = append(rows, paymRow{aff: a.id, base: mt.base, rate: rate, amount: amt})
				parts = append(parts, fmt.Sprintf("%s@0=%d", a.user, amt))
			}
			if a.parent >= 0 && m.affs[a.parent].status == "active" {
				if amt := mt.base * 50_000 / 1_000_000; amt > 0 {
					rows = append(rows, paymRow{aff: m.affs[a.parent].id, base: mt.base, rate: 50_000, amount: amt})
					parts = append(parts, fmt.Sprintf("%s@1=%d", m.affs[a.parent].user, amt))
				}
			}
		}
	}
	for _, r := range rows {
		ev.base = max(ev.base, r.base)
	}
	return strings.Join(parts, " "), rows, ev
}

func (m *paymWorld) userOf(aff string) string {
	for _, a := range m.affs {
		if a.id == aff {
			return a.user
		}
	}
	return "?"
}

func (m *paymWorld) levelOf(r *paymRow, ev *paymEvent) int {
	if r.aff == m.affs[ev.aff].id {
		return 0
	}
	return 1
}

// reverse returns the answer a reversal of original by amount (0: all that remains) gives:
// "processed rows", or the error code.
func (m *paymWorld) reverse(original string, amount int64) (status string, backs []string) {
	ev := m.events[original]
	switch {
	case ev.base == 0 && amount > 0:
		return "VALIDATION_FAILED", nil
	case ev.base == 0 && ev.full, ev.base > 0 && ev.reversed >= ev.base:
		return "NOT_REVERSIBLE", nil
	case ev.base > 0 && amount > ev.base-ev.reversed:
		return "NOT_REVERSIBLE", nil
	}
	if amount == 0 {
		amount = ev.base - ev.reversed
	}
	before, after := ev.reversed, ev.reversed+amount
	if ev.base == 0 {
		ev.full = true
	} else {
		ev.reversed = after
	}
	for _, id := range ev.rows {
		r := m.rows[id]
		target := payNet(r.base, ev.base, after, r.rate)
		if back := m.net[id] - target; back > 0 {
			backs = append(backs, fmt.Sprintf("%s@%d=%d", m.userOf(r.aff), m.levelOf(r, ev), -back))
			m.net[id] = target
		}
	}
	remains := func(rr int64) int64 {
		if ev.base == 0 {
			return 0
		}
		return ev.revenue * (ev.base - rr) / ev.base
	}
	drop := remains(before) - remains(after)
	if ev.base == 0 {
		drop = ev.revenue
	}
	a := m.affs[ev.aff]
	a.revenue = max(a.revenue-drop, 0)
	return "processed", backs
}

// run decides a payout run: per active affiliate with available net > 0, a payout of every row
// not in a live payout. It returns "user=amount/rows" and "user:REASON" sorted.
func (m *paymWorld) run() (string, map[int][]string) {
	var parts []string
	take := map[int][]string{}
	for i, a := range m.affs {
		var net int64
		var ids []string
		for _, id := range m.order {
			r := m.rows[id]
			if r.aff == a.id && m.payoutOf[id] == "" {
				net += r.amount
				ids = append(ids, id)
			}
		}
		switch {
		case a.status != "active":
			parts = append(parts, a.user+":AFFILIATE_NOT_ACTIVE")
		case net <= 0 || len(ids) == 0:
			parts = append(parts, a.user+":NOTHING_AVAILABLE")
		default:
			parts = append(parts, fmt.Sprintf("%s=%d/%d", a.user, net, len(ids)))
			take[i] = ids
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " "), take
}

// balance is the affiliate's expected balance.
func (m *paymWorld) balance(aff string) payBalance {
	b := payBalance{CurrencyID: "EUR"}
	for _, id := range m.order {
		r := m.rows[id]
		if r.aff != aff {
			continue
		}
		if r.amount < 0 {
			b.Reversed -= r.amount
		}
		switch m.payouts[m.payoutOf[id]] {
		case "pending":
			b.InPayout += r.amount
		case "paid":
			b.Paid += r.amount
		default:
			b.Available += r.amount
		}
	}
	return b
}

var payCheckSeq atomic.Int64

func TestPayLedgerMatchesModel(t *testing.T) {
	e := newEnv(t)
	rapid.Check(t, func(rt *rapid.T) {
		tenant := fmt.Sprintf("%s-q%d", e.tenant, payCheckSeq.Add(1))
		w := &payWorld{evtWorld: evtOn(e, tenant)}
		m := &paymWorld{referrer: map[string]int{}, rows: map[string]*paymRow{}, events: map[string]*paymEvent{},
			net: map[string]int64{}, payoutOf: map[string]string{}, payouts: map[string]string{}, payoutAff: map[string]int{}}
		m.gold = rapid.SampledFrom([]int64{0, 50_000, 100_000}).Draw(rt, "gold")
		m.plat = rapid.SampledFrom([]int64{123_457, 200_000, 1_000_000}).Draw(rt, "platinum")
		m.threshold = rapid.SampledFrom([]int64{1000, 5000, 20_000}).Draw(rt, "threshold")
		m.bonusRule = rapid.Bool().Draw(rt, "bonusRule")
		rateText := func(r int64) string { return fmt.Sprintf("%d.%06d", r/1_000_000, r%1_000_000) }
		w.tier(t, "Gold", rateText(m.gold), 0, 0, 0)
		w.tier(t, "Platinum", rateText(m.plat), 0, m.threshold, 1)
		w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
		if m.bonusRule {
			w.rule(t, "deposit.completed", nil, "bonus", "0.3", "EUR")
		}
		w.policy(t, true, "0.05")
		w.payPolicy(t, 0, 0)
		for i := range rapid.IntRange(1, 3).Draw(rt, "affiliates") {
			a := &paymAffiliate{user: fmt.Sprintf("aff%d", i), parent: -1,
				status: rapid.SampledFrom([]string{"active", "active", "suspended"}).Draw(rt, "status")}
			parent := ""
			if i > 0 && rapid.Bool().Draw(rt, "hasParent") {
				a.parent = 0
				parent = m.affs[0].id
			}
			a.id = w.affiliateWith(t, a.user, parent, a.status)
			m.affs = append(m.affs, a)
		}
		var users []string
		for i := range rapid.IntRange(1, 3).Draw(rt, "referees") {
			u := fmt.Sprintf("player%d", i)
			ai := rapid.IntRange(0, len(m.affs)-1).Draw(rt, "referrer")
			w.apply(t, u, evtCode(m.affs[ai].user))
			m.referrer[u] = ai
			users = append(users, u)
		}
		var deposits []string
		record := func(o evtOutcome, rows []paymRow, original string) {
			for i, c := range o.Commissions {
				r := rows[i]
				r.id, r.event = c.ID, o.EventID
				if original == "" {
					m.net[c.ID] = r.amount
				}
				m.rows[c.ID] = &r
				m.order = append(m.order, c.ID)
			}
		}
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for step := range steps {
			switch op := rapid.IntRange(0, 10).Draw(rt, "op"); {
			case op < 4 || len(deposits) == 0:
				user := rapid.SampledFrom(users).Draw(rt, "user")
				amount := int64(rapid.IntRange(0, 30_000).Draw(rt, "amount"))
				bonus := int64(rapid.IntRange(0, 10_000).Draw(rt, "bonus"))
				hasBonus := rapid.Bool().Draw(rt, "hasBonus")
				payload := map[string]any{"amount": amount}
				if hasBonus {
					payload["bonus"] = bonus
				}
				id := fmt.Sprintf("dep%d", step)
				want, rows, ev := m.deposit(user, amount, bonus, hasBonus)
				o := w.event(t, evtBody(id, "deposit.completed", user, payload))
				if got := evtPaid(o.Commissions); got != want {
					rt.Fatalf("%s: paid %q, want %q", id, got, want)
				}
				record(o, rows, "")
				for _, c := range o.Commissions {
					ev.rows = append(ev.rows, c.ID)
				}
				m.events[id] = ev
				deposits = append(deposits, id)
			case op < 7:
				original := rapid.SampledFrom(deposits).Draw(rt, "original")
				ev := m.events[original]
				var amount int64
				if rapid.Bool().Draw(rt, "partial") {
					amount = int64(rapid.IntRange(1, int(max(ev.base, 1))+5).Draw(rt, "reverseAmount"))
				}
				id := fmt.Sprintf("rev%d", step)
				body := map[string]any{"event_id": id, "type": "deposit.refunded", "user_id": ev.user, "reverses": original}
				if amount > 0 {
					body["reverse_amount"] = amount
				}
				status, backs := m.reverse(original, amount)
				r := w.e.do(http.MethodPost, "/v1/events", w.svc, body)
				if status != "processed" {
					code := map[string]int{"VALIDATION_FAILED": 400, "NOT_REVERSIBLE": 422}[status]
					r.fail(t, code, status)
					continue
				}
				var o evtOutcome
				w.ok(t, r, &o)
				if got := evtPaid(o.Commissions); got != strings.Join(backs, " ") {
					rt.Fatalf("%s of %s by %d: wrote %q, want %q", id, original, amount, got, strings.Join(backs, " "))
				}
				var rows []paymRow
				for _, c := range o.Commissions {
					rows = append(rows, paymRow{aff: c.AffiliateID, base: c.BaseAmount, amount: c.Amount})
				}
				record(o, rows, original)
			case op < 8:
				// An admin's per-row reversal: all that remains of one original row.
				var originals []string
				for _, id := range m.order {
					if _, ok := m.net[id]; ok {
						originals = append(originals, id)
					}
				}
				if len(originals) == 0 {
					continue
				}
				id := rapid.SampledFrom(originals).Draw(rt, "row")
				r := w.e.do(http.MethodPost, "/v1/affiliate/commissions/"+id+"/reverse", w.adm, map[string]any{"reason": "declined"})
				if m.net[id] == 0 {
					r.fail(t, http.StatusUnprocessableEntity, "NOT_REVERSIBLE")
					continue
				}
				var c evtCommission
				w.ok(t, r, &c)
				if c.Amount != -m.net[id] {
					rt.Fatalf("reversal of row %s wrote %d, want %d", id, c.Amount, -m.net[id])
				}
				m.rows[c.ID] = &paymRow{id: c.ID, aff: c.AffiliateID, base: c.BaseAmount, amount: c.Amount, reverses: id}
				m.order = append(m.order, c.ID)
				m.net[id] = 0
			case op < 9:
				want, take := m.run()
				run, _ := w.run(t, nil)
				var parts []string
				for _, p := range run.Items {
					parts = append(parts, fmt.Sprintf("%s=%d/%d", p.UserID, p.Amount, p.Rows))
					for i, a := range m.affs {
						if a.id == p.AffiliateID {
							for _, id := range take[i] {
								m.payoutOf[id] = p.ID
							}
							m.payouts[p.ID] = "pending"
							m.payoutAff[p.ID] = i
						}
					}
				}
				for _, s := range run.Skipped {
					parts = append(parts, m.userOf(s.AffiliateID)+":"+s.Reason)
				}
				sort.Strings(parts)
				if got := strings.Join(parts, " "); got != want {
					rt.Fatalf("payout run: %q, want %q", got, want)
				}
			default:
				var pending []string
				for id, s := range m.payouts {
					if s == "pending" {
						pending = append(pending, id)
					}
				}
				if len(pending) == 0 {
					continue
				}
				sort.Strings(pending)
				id := rapid.SampledFrom(pending).Draw(rt, "payout")
				status := rapid.SampledFrom([]string{"paid", "failed"}).Draw(rt, "payoutStatus")
				w.ok(t, w.e.do(http.MethodPut, "/v1/affiliate/payouts/"+id+"/status", w.adm, map[string]any{"status": status}), nil)
				m.payouts[id] = status
				if status == "failed" {
					for row, p := range m.payoutOf {
						if p == id {
							delete(m.payoutOf, row)
						}
					}
				}
			}
		}

		// Invariants: balances as the model says (and adding up to the ledger), the paid balance
		// is the sum of the affiliate's paid payouts, referee_revenue as the model says, and the
		// schema-level checks.
		for i, a := range m.affs {
			got, want := w.balance(t, a.id), m.balance(a.id)
			if got != want {
				rt.Fatalf("%s: balance %s, want %s", a.user, got, want)
			}
			var paid int64
			for p, s := range m.payouts {
				if s == "paid" && m.payoutAff[p] == i {
					var one payPayout
					w.ok(t, w.e.do(http.MethodGet, "/v1/affiliate/payouts/"+p, w.adm, nil), &one)
					paid += one.Amount
				}
			}
			if paid != got.Paid {
				rt.Fatalf("%s: paid payouts add up to %d, paid balance %d", a.user, paid, got.Paid)
			}
			var aff struct {
				RefereeRevenue int64 `json:"referee_revenue"`
			}
			w.ok(t, w.e.do(http.MethodGet, "/v1/affiliates/"+a.id, w.adm, nil), &aff)
			if aff.RefereeRevenue != a.revenue {
				rt.Fatalf("%s: referee_revenue %d, want %d", a.user, aff.RefereeRevenue, a.revenue)
			}
		}
		for id, want := range m.net {
			var got int64
			if err := w.e.store.DB().Get(&got, `SELECT amount + COALESCE((SELECT sum(r.amount) FROM commissions r WHERE r.reverses_id = c.id), 0)
				FROM commissions c WHERE c.id = $1`, id); err != nil {
				rt.Fatal(err)
			}
			if got != want || got < 0 {
				rt.Fatalf("row %s: net %d, want %d", id, got, want)
			}
		}
		w.payInvariants(t)
	})
}
