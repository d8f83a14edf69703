package referral

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var engT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func engPtr[T any](v T) *T { return &v }

func engFilter(t *testing.T, s string) *Filter {
	t.Helper()
	f, err := ParseFilter("f", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func engPayload(t *testing.T, s string) map[string]any {
	t.Helper()
	p, err := DecodePayload([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// engWorld is a small tenant: referee "bob" referred by "alice", an affiliate with a parent and a
// grandparent.
type engWorld struct {
	eng                    *Engine
	alice, parent, grandpa *Affiliate
	campaign               Campaign
	rule                   CommissionRule
	gold, silver           Tier
}

func newEngWorld(t *testing.T) *engWorld {
	t.Helper()
	w := &engWorld{}
	w.grandpa = &Affiliate{ID: uuid.New(), UserID: "grandpa", Status: AffiliateActive}
	w.parent = &Affiliate{ID: uuid.New(), UserID: "parent", Status: AffiliateActive, Ancestors: []uuid.UUID{w.grandpa.ID}}
	w.alice = &Affiliate{ID: uuid.New(), UserID: "alice", Status: AffiliateActive, Ancestors: []uuid.UUID{w.grandpa.ID, w.parent.ID}}
	w.campaign = Campaign{ID: uuid.New(), QualifyingEvent: "deposit.completed", Active: true,
		QualifyingFilter: engFilter(t, `{"amount": {"gte": 1000}}`),
		RefereeRewards:   []Wallet{{"points", 50}},
		ReferrerRewards:  []Wallet{{"points", 100}, {"eur", 5}}}
	w.rule = CommissionRule{ID: uuid.New(), EventType: "deposit.completed", CommissionField: "amount",
		UseTierRate: true, CurrencyID: "EUR", Active: true}
	w.silver = Tier{ID: uuid.New(), Name: "silver", CommissionRate: 50_000, Priority: 1, CreatedAt: engT0}
	w.gold = Tier{ID: uuid.New(), Name: "gold", CommissionRate: 100_000, MinReferrals: 2, Priority: 2, CreatedAt: engT0}
	w.eng = &Engine{
		Campaigns:  []Campaign{w.campaign},
		Rules:      []CommissionRule{w.rule},
		Tiers:      []Tier{w.silver, w.gold},
		Policy:     &HierarchyPolicy{MaxDepth: 2, LevelRates: []Rate{30_000, 10_000}, Active: true},
		Referrals:  map[string]*ReferralState{},
		Affiliates: map[string]*Affiliate{"alice": w.alice},
		Upline:     map[uuid.UUID]*Affiliate{w.parent.ID: w.parent, w.grandpa.ID: w.grandpa},
	}
	w.refer("bob", "alice", nil)
	return w
}

func (w *engWorld) refer(referee, referrer string, bound *uuid.UUID) *ReferralState {
	rs := &ReferralState{Referral: Referral{ID: uuid.New(), ReferrerID: engPtr(referrer), RefereeID: referee,
		Status: StatusPending, CreatedAt: engT0}, BoundCampaign: bound, Qualified: map[uuid.UUID]bool{}}
	w.eng.Referrals[referee] = rs
	return rs
}

func engEvent(id, user string, at time.Time) Event {
	return Event{EventID: id, Type: "deposit.completed", UserID: user, OccurredAt: at}
}

type engCommission struct {
	user  string
	level int
	rate  Rate
	amt   int64
}

func engCommissions(cs []Commission) []engCommission {
	var out []engCommission
	for _, c := range cs {
		out = append(out, engCommission{c.UserID, c.Level, c.Rate, c.Amount})
	}
	return out
}

func engEqual[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

func TestEngineFloorsEveryLevel(t *testing.T) {
	tests := []struct {
		name string
		base string
		want []engCommission
	}{
		// 5% of 999 = 49.95 → 49; 3% = 29.97 → 29; 1% = 9.99 → 9.
		{"floors", "999", []engCommission{{"alice", 0, 50_000, 49}, {"parent", 1, 30_000, 29}, {"grandpa", 2, 10_000, 9}}},
		// 1% of 99 = 0.99 → 0: zero amounts are not written.
		{"zero dropped", "99", []engCommission{{"alice", 0, 50_000, 4}, {"parent", 1, 30_000, 2}}},
		{"zero base", "0", nil},
		{"huge base", "9223372036854775807", []engCommission{
			{"alice", 0, 50_000, 461168601842738790}, {"parent", 1, 30_000, 276701161105643274}, {"grandpa", 2, 10_000, 92233720368547758}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newEngWorld(t)
			w.eng.Campaigns = nil
			d := w.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": `+tc.base+`}`))
			engEqual(t, "commissions", engCommissions(d.Commissions), tc.want)
		})
	}
}

func TestEngineUplineWalk(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(w *engWorld)
		wantWho []string
	}{
		{"all active", func(w *engWorld) {}, []string{"alice", "parent", "grandpa"}},
		{"suspended parent skipped, walk goes on", func(w *engWorld) { w.parent.Status = AffiliateSuspended }, []string{"alice", "grandpa"}},
		{"pending grandparent skipped", func(w *engWorld) { w.grandpa.Status = AffiliatePending }, []string{"alice", "parent"}},
		{"deleted ancestor earns nothing", func(w *engWorld) { delete(w.eng.Upline, w.parent.ID) }, []string{"alice", "grandpa"}},
		{"policy inactive", func(w *engWorld) { w.eng.Policy.Active = false }, []string{"alice"}},
		{"no policy", func(w *engWorld) { w.eng.Policy = nil }, []string{"alice"}},
		{"depth 1", func(w *engWorld) { w.eng.Policy.MaxDepth, w.eng.Policy.LevelRates = 1, []Rate{30_000} }, []string{"alice", "parent"}},
		{"depth beyond the tree", func(w *engWorld) {
			w.eng.Policy.MaxDepth, w.eng.Policy.LevelRates = 5, []Rate{10_000, 10_000, 10_000, 10_000, 10_000}
		}, []string{"alice", "parent", "grandpa"}},
		{"suspended direct affiliate: nothing at all", func(w *engWorld) { w.alice.Status = AffiliateSuspended }, nil},
		{"referrer not an affiliate", func(w *engWorld) { delete(w.eng.Affiliates, "alice") }, nil},
		{"no tier: level 0 earns nothing, upline still does", func(w *engWorld) { w.eng.Tiers = nil }, []string{"parent", "grandpa"}},
		{"custom rate needs no tier", func(w *engWorld) {
			w.eng.Tiers = nil
			w.eng.Rules[0].UseTierRate, w.eng.Rules[0].CustomRate = false, engPtr(Rate(200_000))
		}, []string{"alice", "parent", "grandpa"}},
		{"inactive rule", func(w *engWorld) { w.eng.Rules[0].Active = false }, nil},
		{"rule filter fails", func(w *engWorld) { w.eng.Rules[0].EventFilter = engFilter(t, `{"currency": "USD"}`) }, nil},
		{"field missing", func(w *engWorld) { w.eng.Rules[0].CommissionField = "net.amount" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newEngWorld(t)
			tc.mutate(w)
			d := w.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 10000, "currency": "EUR"}`))
			var who []string
			for _, c := range d.Commissions {
				who = append(who, c.UserID)
				if c.Level > 0 && c.TierID != nil {
					t.Errorf("ancestor row carries tier %v", c.TierID)
				}
			}
			engEqual(t, "beneficiaries", who, tc.wantWho)
		})
	}
}

func TestEngineTierChoice(t *testing.T) {
	w := newEngWorld(t)
	w.eng.Campaigns = []Campaign{{ID: uuid.New(), QualifyingEvent: "deposit.completed", Active: true}}
	w.eng.Policy = nil
	// alice has one converted referral already; bob's first qualifying event converts a second,
	// which reaches gold (min 2) before the commission is computed.
	w.alice.ConvertedReferrals = 1
	d := w.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 1000}`))
	if !d.Converted || d.Tier == nil || d.Tier.ID != w.gold.ID {
		t.Fatalf("converted=%v tier=%v, want conversion and gold", d.Converted, d.Tier)
	}
	engEqual(t, "commissions", engCommissions(d.Commissions), []engCommission{{"alice", 0, 100_000, 100}})
	if *d.Commissions[0].TierID != w.gold.ID {
		t.Errorf("tier recorded %v, want gold", d.Commissions[0].TierID)
	}

	// The override pins silver whatever the counters.
	w2 := newEngWorld(t)
	w2.alice.ConvertedReferrals = 10
	w2.alice.TierOverrideID = &w2.silver.ID
	d = w2.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 1000}`))
	if d.Tier == nil || d.Tier.ID != w2.silver.ID || d.Commissions[0].Rate != 50_000 {
		t.Fatalf("override: tier %v rate %v, want silver 0.05", d.Tier, d.Commissions[0].Rate)
	}

	// Revenue counts the largest base among matching rules, before the tier is chosen.
	w3 := newEngWorld(t)
	w3.eng.Campaigns = nil
	w3.eng.Tiers = []Tier{w3.silver, {ID: uuid.New(), CommissionRate: 200_000, MinRefereeRevenue: 5000, Priority: 9}}
	w3.eng.Rules = append(w3.eng.Rules, CommissionRule{ID: uuid.New(), EventType: "deposit.completed",
		CommissionField: "bonus", CustomRate: engPtr(Rate(0)), CurrencyID: "EUR", Active: true})
	d = w3.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 4000, "bonus": 6000}`))
	if d.RevenueDelta != 6000 || w3.alice.RefereeRevenue != 6000 || d.Tier.CommissionRate != 200_000 {
		t.Fatalf("revenue delta %d total %d tier %v", d.RevenueDelta, w3.alice.RefereeRevenue, d.Tier)
	}
	if d.Commissions[0].Amount != 800 {
		t.Errorf("level 0 = %d, want 20%% of 4000", d.Commissions[0].Amount)
	}
	// A custom-rate rule uses no tier, and its row records none.
	w3.eng.Rules[1].CustomRate = engPtr(Rate(500_000))
	d = w3.eng.Decide(engEvent("e2", "bob", engT0), engPayload(t, `{"amount": 10, "bonus": 10}`))
	if len(d.Commissions) != 2 || d.Commissions[0].TierID == nil || d.Commissions[1].TierID != nil || d.Commissions[1].Amount != 5 {
		t.Fatalf("tier recorded per rule: %+v", d.Commissions)
	}

	// A suspended affiliate's counters still move, but it earns nothing.
	w4 := newEngWorld(t)
	w4.alice.Status = AffiliateSuspended
	d = w4.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 1500}`))
	if d.RevenueDelta != 1500 || w4.alice.ConvertedReferrals != 1 || len(d.Commissions) != 0 {
		t.Fatalf("suspended: delta %d converted %d commissions %d", d.RevenueDelta, w4.alice.ConvertedReferrals, len(d.Commissions))
	}
}

func TestEngineCampaignSelection(t *testing.T) {
	in := func(d time.Duration) *time.Time { v := engT0.Add(d); return &v }
	tests := []struct {
		name   string
		mutate func(w *engWorld, c *Campaign)
		at     time.Duration
		bound  func(w *engWorld, other uuid.UUID) *uuid.UUID
		pays   bool
	}{
		{"open window", func(w *engWorld, c *Campaign) {}, 0, nil, true},
		{"inactive", func(w *engWorld, c *Campaign) { c.Active = false }, 0, nil, false},
		{"other event type", func(w *engWorld, c *Campaign) { c.QualifyingEvent = "bet.placed" }, 0, nil, false},
		{"starts_at inclusive", func(w *engWorld, c *Campaign) { c.StartsAt = in(time.Hour) }, time.Hour, nil, true},
		{"before start", func(w *engWorld, c *Campaign) { c.StartsAt = in(time.Hour) }, time.Hour - time.Microsecond, nil, false},
		{"ends_at exclusive", func(w *engWorld, c *Campaign) { c.EndsAt = in(time.Hour) }, time.Hour, nil, false},
		{"just before end", func(w *engWorld, c *Campaign) { c.EndsAt = in(time.Hour) }, time.Hour - time.Microsecond, nil, true},
		{"bound to this campaign", func(w *engWorld, c *Campaign) {}, 0, func(w *engWorld, other uuid.UUID) *uuid.UUID { return &w.campaign.ID }, true},
		{"bound to another campaign", func(w *engWorld, c *Campaign) {}, 0, func(w *engWorld, other uuid.UUID) *uuid.UUID { return &other }, false},
		{"bound to a deleted campaign", func(w *engWorld, c *Campaign) {}, 0, func(w *engWorld, other uuid.UUID) *uuid.UUID { return engPtr(uuid.New()) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newEngWorld(t)
			tc.mutate(w, &w.eng.Campaigns[0])
			other := Campaign{ID: uuid.New(), QualifyingEvent: "bet.placed", Active: true}
			w.eng.Campaigns = append(w.eng.Campaigns, other)
			if tc.bound != nil {
				w.refer("bob", "alice", tc.bound(w, other.ID))
			}
			d := w.eng.Decide(engEvent("e1", "bob", engT0.Add(tc.at)), engPayload(t, `{"amount": 1000}`))
			if got := len(d.Qualified) == 1; got != tc.pays {
				t.Fatalf("pays = %v, want %v (qualified %v)", got, tc.pays, d.Qualified)
			}
			if tc.pays != d.Converted {
				t.Fatalf("converted = %v, want %v", d.Converted, tc.pays)
			}
		})
	}
}

func TestEngineRewardsOncePerReferral(t *testing.T) {
	w := newEngWorld(t)
	second := Campaign{ID: uuid.New(), QualifyingEvent: "deposit.completed", Active: true,
		QualifyingFilter: engFilter(t, `{"amount": {"gte": 5000}}`), RefereeRewards: []Wallet{{"points", 7}, {"points", 3}}}
	w.eng.Campaigns = append(w.eng.Campaigns, second)
	below := w.eng.Decide(engEvent("e0", "bob", engT0), engPayload(t, `{"amount": 999}`))
	if len(below.Rewards) != 0 || below.Converted {
		t.Fatalf("below filter paid %v", below.Rewards)
	}
	d1 := w.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 1000}`))
	type row struct {
		user, role, cur string
		amt             int64
	}
	var got []row
	for _, r := range d1.Rewards {
		got = append(got, row{r.UserID, r.Role, r.CurrencyID, r.Amount})
	}
	engEqual(t, "first rewards", got, []row{{"bob", RoleReferee, "points", 50}, {"alice", RoleReferrer, "points", 100}, {"alice", RoleReferrer, "eur", 5}})
	ref := w.eng.Referrals["bob"].Referral
	if !d1.Converted || ref.Status != StatusConverted || *ref.CampaignID != w.campaign.ID || !ref.ConvertedAt.Equal(engT0) {
		t.Fatalf("referral after first = %+v", ref)
	}
	d2 := w.eng.Decide(engEvent("e2", "bob", engT0), engPayload(t, `{"amount": 6000}`))
	got = nil
	for _, r := range d2.Rewards {
		got = append(got, row{r.UserID, r.Role, r.CurrencyID, r.Amount})
	}
	// Only the second campaign pays now; one row per beneficiary and currency.
	engEqual(t, "second rewards", got, []row{{"bob", RoleReferee, "points", 10}})
	if d2.Converted || *w.eng.Referrals["bob"].Referral.CampaignID != w.campaign.ID {
		t.Fatalf("second event converted again or moved campaign_id")
	}
	d3 := w.eng.Decide(engEvent("e3", "bob", engT0), engPayload(t, `{"amount": 9000}`))
	if len(d3.Rewards) != 0 || len(d3.Qualified) != 0 {
		t.Fatalf("third event paid %v", d3.Rewards)
	}
	if len(d3.Commissions) == 0 {
		t.Fatalf("commissions are per event, not once per referral")
	}
	if w.alice.ConvertedReferrals != 1 {
		t.Fatalf("converted referrals = %d, want 1", w.alice.ConvertedReferrals)
	}
}

func TestEngineNothingAtAll(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(w *engWorld)
		user   string
		at     time.Time
	}{
		{"not referred", func(w *engWorld) {}, "carol", engT0},
		{"rejected referral", func(w *engWorld) { w.eng.Referrals["bob"].Referral.Status = StatusRejected }, "bob", engT0},
		{"event before the referral", func(w *engWorld) {}, "bob", engT0.Add(-time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newEngWorld(t)
			tc.mutate(w)
			d := w.eng.Decide(engEvent("e1", tc.user, tc.at), engPayload(t, `{"amount": 5000}`))
			if d.Referral != nil || len(d.Rewards)+len(d.Commissions)+len(d.Qualified) != 0 || d.RevenueDelta != 0 || w.alice.RefereeRevenue != 0 {
				t.Fatalf("decision = %+v", d)
			}
		})
	}
	t.Run("admin code: referee only", func(t *testing.T) {
		w := newEngWorld(t)
		w.eng.Referrals["bob"].Referral.ReferrerID = nil
		d := w.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 5000}`))
		if len(d.Rewards) != 1 || d.Rewards[0].Role != RoleReferee || len(d.Commissions) != 0 {
			t.Fatalf("rewards %v commissions %v", d.Rewards, d.Commissions)
		}
	})
	t.Run("verified referral still earns from other campaigns", func(t *testing.T) {
		w := newEngWorld(t)
		w.eng.Referrals["bob"].Referral.Status = StatusVerified
		d := w.eng.Decide(engEvent("e1", "bob", engT0), engPayload(t, `{"amount": 5000}`))
		if len(d.Rewards) == 0 || d.Converted || w.eng.Referrals["bob"].Referral.Status != StatusVerified {
			t.Fatalf("verified: rewards %v converted %v", d.Rewards, d.Converted)
		}
	})
}

func TestCheckEvent(t *testing.T) {
	now := engT0
	ok := Event{EventID: "dep_1", Type: "deposit.completed", UserID: "u", OccurredAt: now, Payload: json.RawMessage(`{}`)}
	tests := []struct {
		name  string
		mut   func(e *Event)
		field string
	}{
		{"valid", func(e *Event) {}, ""},
		{"at the skew limit", func(e *Event) { e.OccurredAt = now.Add(5 * time.Minute) }, ""},
		{"past the skew limit", func(e *Event) { e.OccurredAt = now.Add(5*time.Minute + time.Microsecond) }, "occurred_at"},
		{"year zero", func(e *Event) { e.OccurredAt = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC) }, "occurred_at"},
		{"year one", func(e *Event) { e.OccurredAt = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) }, ""},
		{"empty id", func(e *Event) { e.EventID = "" }, "event_id"},
		{"long id", func(e *Event) { e.EventID = strings.Repeat("x", 129) }, "event_id"},
		{"128 runes", func(e *Event) { e.EventID = strings.Repeat("é", 128) }, ""},
		{"upper-case type", func(e *Event) { e.Type = "Deposit" }, "type"},
		{"long type", func(e *Event) { e.Type = strings.Repeat("a", 101) }, "type"},
		{"empty user", func(e *Event) { e.UserID = "" }, "user_id"},
		{"array payload", func(e *Event) { e.Payload = json.RawMessage(`[1]`) }, "payload"},
		{"NUL in id", func(e *Event) { e.EventID = "a\x00b" }, "event_id"},
		{"NUL in user", func(e *Event) { e.UserID = "\x00" }, "user_id"},
		{"NUL in payload string", func(e *Event) { e.Payload = json.RawMessage(`{"a": ["x\u0000"]}`) }, "payload"},
		{"NUL in payload key", func(e *Event) { e.Payload = json.RawMessage(`{"a\u0000": 1}`) }, "payload"},
		{"escaped backslash is fine", func(e *Event) { e.Payload = json.RawMessage(`{"a": "\\u0000"}`) }, ""},
		{"huge exponent", func(e *Event) { e.Payload = json.RawMessage(`{"a": {"b": 1e999999}}`) }, "payload"},
		{"fine exponent", func(e *Event) { e.Payload = json.RawMessage(`{"a": 1.5e300}`) }, ""},
		{"past float64", func(e *Event) { e.Payload = json.RawMessage(`{"a": 1e400}`) }, "payload"},
		{"tiny exponent", func(e *Event) { e.Payload = json.RawMessage(`{"a": 1e-999999}`) }, "payload"},
		{"long number", func(e *Event) { e.Payload = json.RawMessage(`{"a": ` + strings.Repeat("9", 1001) + `}`) }, "payload"},
		{"too deep", func(e *Event) {
			e.Payload = json.RawMessage(`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`)
		}, "payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.mut(&e)
			err := CheckEvent(e, now)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("CheckEvent = %v", err)
				}
				return
			}
			var de *Error
			if err == nil || !asError(err, &de) || de.Fields[tc.field] == "" {
				t.Fatalf("CheckEvent = %v, want a failure on %s", err, tc.field)
			}
		})
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestSumByCurrency(t *testing.T) {
	got := SumByCurrency([]Wallet{{"a", 1}, {"b", 2}, {"a", 3}, {"c", 0}})
	engEqual(t, "sum", got, []Wallet{{"a", 4}, {"b", 2}})
	if len(SumByCurrency(nil)) != 0 {
		t.Fatal("nil wallet")
	}
}

// TestCheckEventReasons checks that a field that is present is never reported as missing.
func TestCheckEventReasons(t *testing.T) {
	ok := Event{EventID: "dep_1", Type: "deposit.completed", UserID: "u", OccurredAt: engT0, Payload: json.RawMessage(`{}`)}
	tests := []struct {
		name, field, want string
		mut               func(e *Event)
	}{
		{"type in the wrong case", "type", "must be", func(e *Event) { e.Type = "Deposit.Completed" }},
		{"type missing", "type", "is required", func(e *Event) { e.Type = "" }},
		{"id too long", "event_id", "must be", func(e *Event) { e.EventID = strings.Repeat("x", 129) }},
		{"id missing", "event_id", "is required", func(e *Event) { e.EventID = "" }},
		{"user with NUL", "user_id", "must be", func(e *Event) { e.UserID = "a\x00" }},
		{"user missing", "user_id", "is required", func(e *Event) { e.UserID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.mut(&e)
			var de *Error
			if err := CheckEvent(e, engT0); !asError(err, &de) || !strings.HasPrefix(de.Fields[tc.field], tc.want) {
				t.Fatalf("CheckEvent = %v, want %s: %q...", err, tc.field, tc.want)
			}
		})
	}
}

func TestStorableNumber(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"0", true}, {"-1.5", true}, {"1e308", true}, {"-1.7e308", true}, {"1e-300", true},
		{"1e-400", true}, {"0e1000", true}, {"12345678901234567890123", true},
		{"1e999999", false}, {"-1e999999", false}, {"1e-999999", false}, {"0e-999999", false},
		{"1.8e308", false}, {"1e1001", false}, {"9" + strings.Repeat("0", 400), false},
		{"1." + strings.Repeat("0", 999), false}, {"1." + strings.Repeat("0", 998), true},
	}
	for _, tt := range tests {
		if got := StorableNumber(tt.s); got != tt.want {
			t.Errorf("StorableNumber(%.40s) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
