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

// The reference model: a deliberately plain restatement of SPEC §5.2–§5.4 over small worlds.

type evtmAffiliate struct {
	user, status string
	parent       int // index, -1 for a root
	id           string
	revenue      int64
}

type evtmTier struct {
	id                 string
	rate               int64 // millionths
	minRefs, minRev    int64
	priority, creation int
}

type evtmRule struct {
	id, event   string
	gte         int64 // filter amount ≥ gte; -1 for no filter
	rate        int64 // millionths; -1 for use_tier_rate
	currency    string
	createdRank int
}

type evtmCampaign struct {
	id, event         string
	gte               int64
	referrer, referee int64 // points; 0 = no wallet entry
}

type evtmReferral struct {
	referrer  string // affiliate user
	status    string
	qualified map[int]bool
}

type evtmWorld struct {
	affs      []*evtmAffiliate
	tiers     []evtmTier
	rules     []evtmRule
	campaigns []evtmCampaign
	depth     int
	levels    []int64
	active    bool
	referrals map[string]*evtmReferral
	outcomes  map[string]string
}

func (m *evtmWorld) affByUser(u string) (int, *evtmAffiliate) {
	for i, a := range m.affs {
		if a.user == u {
			return i, a
		}
	}
	return -1, nil
}

func (m *evtmWorld) converted(user string) int64 {
	var n int64
	for _, r := range m.referrals {
		if r.referrer == user && r.status == "converted" {
			n++
		}
	}
	return n
}

func (m *evtmWorld) tierOf(a *evtmAffiliate) *evtmTier {
	var best *evtmTier
	conv := m.converted(a.user)
	for i := range m.tiers {
		t := &m.tiers[i]
		if t.minRefs > conv || t.minRev > a.revenue {
			continue
		}
		if best == nil || t.priority > best.priority || (t.priority == best.priority &&
			(t.rate > best.rate || (t.rate == best.rate && t.creation < best.creation))) {
			best = t
		}
	}
	return best
}

// decide returns the summary of what the event pays, in the engine's order.
func (m *evtmWorld) decide(user, typ string, amount int64) string {
	var rewards, commissions []string
	r := m.referrals[user]
	if r != nil {
		for ci, c := range m.campaigns {
			if c.event != typ || r.qualified[ci] || (c.gte >= 0 && amount < c.gte) {
				continue
			}
			r.qualified[ci] = true
			if c.referee > 0 {
				rewards = append(rewards, fmt.Sprintf("%s/referee=%d points", user, c.referee))
			}
			if c.referrer > 0 {
				rewards = append(rewards, fmt.Sprintf("%s/referrer=%d points", r.referrer, c.referrer))
			}
			if r.status == "pending" {
				r.status = "converted"
			}
		}
		_, aff := m.affByUser(r.referrer)
		var matching []evtmRule
		var largest int64
		for _, rule := range m.rules {
			if rule.event == typ && (rule.gte < 0 || amount >= rule.gte) {
				matching = append(matching, rule)
				largest = max(largest, amount)
			}
		}
		aff.revenue += largest
		tier := m.tierOf(aff)
		if aff.status == "active" {
			for _, rule := range matching {
				rate := rule.rate
				if rule.rate < 0 {
					rate = -1
					if tier != nil {
						rate = tier.rate
					}
				}
				if rate >= 0 {
					if amt := amount * rate / 1_000_000; amt > 0 {
						commissions = append(commissions, fmt.Sprintf("%s@0=%d", aff.user, amt))
					}
				}
				if !m.active {
					continue
				}
				up := aff
				for d := 1; d <= m.depth && up.parent >= 0; d++ {
					up = m.affs[up.parent]
					if up.status != "active" {
						continue
					}
					if amt := amount * m.levels[d-1] / 1_000_000; amt > 0 {
						commissions = append(commissions, fmt.Sprintf("%s@%d=%d", up.user, d, amt))
					}
				}
			}
		}
	}
	return strings.Join(rewards, " ") + " | " + strings.Join(commissions, " ")
}

var evtCheckSeq atomic.Int64

func TestEvtLedgerMatchesModel(t *testing.T) {
	e := newEnv(t)
	rates := []string{"0", "0.05", "0.123457", "0.2", "1"}
	rateOf := map[string]int64{"0": 0, "0.05": 50_000, "0.123457": 123_457, "0.2": 200_000, "1": 1_000_000}
	types := []string{"deposit.completed", "bet.placed"}
	rapid.Check(t, func(rt *rapid.T) {
		w := evtOn(e, fmt.Sprintf("%s-p%d", e.tenant, evtCheckSeq.Add(1)))
		m := &evtmWorld{referrals: map[string]*evtmReferral{}, outcomes: map[string]string{}}

		for i := range rapid.IntRange(0, 2).Draw(rt, "tiers") {
			tr := evtmTier{rate: 0, creation: i}
			rs := rapid.SampledFrom(rates).Draw(rt, "tierRate")
			tr.rate = rateOf[rs]
			tr.minRefs = int64(rapid.IntRange(0, 2).Draw(rt, "minRefs"))
			tr.minRev = rapid.SampledFrom([]int64{0, 1000, 50_000}).Draw(rt, "minRev")
			tr.priority = rapid.IntRange(0, 2).Draw(rt, "priority")
			tr.id = w.tier(t, fmt.Sprintf("t%d", i), rs, tr.minRefs, tr.minRev, tr.priority)
			m.tiers = append(m.tiers, tr)
		}
		for i := range rapid.IntRange(1, 2).Draw(rt, "rules") {
			r := evtmRule{event: rapid.SampledFrom(types).Draw(rt, "ruleType"), gte: -1, rate: -1, currency: "EUR", createdRank: i}
			var filter any
			if rapid.Bool().Draw(rt, "ruleFilter") {
				r.gte = int64(rapid.IntRange(0, 5000).Draw(rt, "ruleGte"))
				filter = map[string]any{"amount": map[string]any{"gte": r.gte}}
			}
			rate := ""
			if rapid.Bool().Draw(rt, "customRate") {
				rate = rapid.SampledFrom(rates).Draw(rt, "ruleRate")
				r.rate = rateOf[rate]
			}
			r.id = w.rule(t, r.event, filter, "amount", rate, r.currency)
			m.rules = append(m.rules, r)
		}
		if rapid.Bool().Draw(rt, "hasPolicy") {
			m.depth = rapid.IntRange(0, 3).Draw(rt, "depth")
			m.active = rapid.Bool().Draw(rt, "policyActive")
			var rs []string
			for range m.depth {
				r := rapid.SampledFrom([]string{"0", "0.05", "0.123457", "0.2"}).Draw(rt, "levelRate")
				rs = append(rs, r)
				m.levels = append(m.levels, rateOf[r])
			}
			w.policy(t, m.active, rs...)
		}
		for i := range rapid.IntRange(0, 2).Draw(rt, "campaigns") {
			c := evtmCampaign{event: rapid.SampledFrom(types).Draw(rt, "campaignType"), gte: -1,
				referrer: int64(rapid.IntRange(0, 3).Draw(rt, "referrerPts")) * 10,
				referee:  int64(rapid.IntRange(0, 3).Draw(rt, "refereePts")) * 5}
			var filter any
			if rapid.Bool().Draw(rt, "campaignFilter") {
				c.gte = int64(rapid.IntRange(0, 5000).Draw(rt, "campaignGte"))
				filter = map[string]any{"amount": map[string]any{"gte": c.gte}}
			}
			var referrer, referee []any
			if c.referrer > 0 {
				referrer = []any{"points", c.referrer}
			}
			if c.referee > 0 {
				referee = []any{"points", c.referee}
			}
			c.id = w.campaign(t, c.event, filter, evtWallet(referrer...), evtWallet(referee...), "name", fmt.Sprintf("c%d", i))
			m.campaigns = append(m.campaigns, c)
		}

		nAff := rapid.IntRange(1, 5).Draw(rt, "affiliates")
		for i := range nAff {
			a := &evtmAffiliate{user: fmt.Sprintf("aff%d", i), parent: -1,
				status: rapid.SampledFrom([]string{"active", "active", "active", "suspended", "pending"}).Draw(rt, "status")}
			if i > 0 {
				a.parent = rapid.IntRange(-1, i-1).Draw(rt, "parent")
			}
			parent := ""
			if a.parent >= 0 {
				parent = m.affs[a.parent].id
			}
			a.id = w.affiliateWith(t, a.user, parent, a.status)
			m.affs = append(m.affs, a)
		}
		nRef := rapid.IntRange(1, 4).Draw(rt, "referees")
		users := []string{"ghost"}
		for i := range nRef {
			u := fmt.Sprintf("player%d", i)
			users = append(users, u)
			a := m.affs[rapid.IntRange(0, nAff-1).Draw(rt, "referrer")]
			w.apply(t, u, evtCode(a.user))
			m.referrals[u] = &evtmReferral{referrer: a.user, status: "pending", qualified: map[int]bool{}}
		}

		nEv := rapid.IntRange(1, 8).Draw(rt, "events")
		var bodies []any
		var want []string
		for range nEv {
			id := fmt.Sprintf("ev%d", rapid.IntRange(0, nEv).Draw(rt, "eventID"))
			user := rapid.SampledFrom(users).Draw(rt, "user")
			typ := rapid.SampledFrom(types).Draw(rt, "type")
			amount := int64(rapid.IntRange(0, 100_000).Draw(rt, "amount"))
			bodies = append(bodies, evtBody(id, typ, user, map[string]any{"amount": amount}))
			if o, seen := m.outcomes[id]; seen {
				want = append(want, "duplicate "+o)
				continue
			}
			o := m.decide(user, typ, amount)
			m.outcomes[id] = o
			want = append(want, "processed "+o)
		}

		var got []evtOutcome
		if rapid.Bool().Draw(rt, "batch") {
			var res struct {
				Results []evtOutcome `json:"results"`
			}
			w.ok(t, w.e.do(http.MethodPost, "/v1/events/batch", w.svc, map[string]any{"events": bodies}), &res)
			got = res.Results
		} else {
			for _, b := range bodies {
				got = append(got, w.event(t, b))
			}
		}
		for i, o := range got {
			summary := o.Status + " " + evtRewarded(o.Rewards) + " | " + evtPaid(o.Commissions)
			if summary != want[i] {
				rt.Fatalf("event %d %v:\n got  %s\n want %s", i, bodies[i], summary, want[i])
			}
		}

		// The ledger holds exactly what the processed answers listed, and the counters match.
		var ledger []string
		if err := w.e.store.DB().Select(&ledger, `SELECT user_id || '@' || level || '=' || amount FROM commissions WHERE tenant_id = $1`, w.tenant); err != nil {
			rt.Fatal(err)
		}
		var listed []string
		for _, o := range got {
			if o.Status == "processed" {
				for _, c := range o.Commissions {
					listed = append(listed, fmt.Sprintf("%s@%d=%d", c.UserID, c.Level, c.Amount))
				}
			}
		}
		sort.Strings(ledger)
		sort.Strings(listed)
		if strings.Join(ledger, ",") != strings.Join(listed, ",") {
			rt.Fatalf("commission ledger %v, answers listed %v", ledger, listed)
		}
		var affs evtList[struct {
			ID                 string `json:"id"`
			RefereeRevenue     int64  `json:"referee_revenue"`
			ConvertedReferrals int64  `json:"converted_referrals"`
		}]
		w.ok(t, w.e.do(http.MethodGet, "/v1/affiliates?limit=100", w.adm, nil), &affs)
		if len(affs.Items) != len(m.affs) {
			rt.Fatalf("%d affiliates listed, want %d", len(affs.Items), len(m.affs))
		}
		for _, got := range affs.Items {
			for _, a := range m.affs {
				if a.id == got.ID && (got.RefereeRevenue != a.revenue || got.ConvertedReferrals != m.converted(a.user)) {
					rt.Fatalf("affiliate %s counters = %+v, want revenue %d converted %d", a.user, got, a.revenue, m.converted(a.user))
				}
			}
		}
	})
}
