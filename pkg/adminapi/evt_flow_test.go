package adminapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// evtTree is a three-level hierarchy: grandpa ← parent ← alice, alice a 5 % tier, a rule on
// deposit.completed paying on "amount" in EUR, and a policy giving 3 % and 1 % to the upline.
type evtTree struct {
	*evtWorld
	grandpa, parent, alice string
	tier, rule             string
}

func evtNewTree(t *testing.T) *evtTree {
	t.Helper()
	w := evtNew(t)
	tr := &evtTree{evtWorld: w}
	tr.tier = w.tier(t, "bronze", "0.05", 0, 0, 1)
	tr.rule = w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.policy(t, true, "0.03", "0.01")
	tr.grandpa = w.affiliate(t, "grandpa", "")
	tr.parent = w.affiliate(t, "parent", tr.grandpa)
	tr.alice = w.affiliate(t, "alice", tr.parent)
	return tr
}

func TestEvtQualifyingFlow(t *testing.T) {
	tr := evtNewTree(t)
	campaign := tr.campaign(t, "deposit.completed", map[string]any{"amount": map[string]any{"gte": 1000}},
		evtWallet("points", 100), evtWallet("points", 50))
	ref := tr.apply(t, "bob", "ALICE")

	// Below the campaign's filter: no reward, no conversion; the rule has no filter, so the
	// event still earns commissions on every level (floors: 5 % of 999 = 49, 3 % = 29, 1 % = 9).
	below := tr.event(t, evtBody("dep_1", "deposit.completed", "bob", map[string]any{"amount": 999, "currency": "EUR"}))
	if below.Status != "processed" || len(below.Rewards) != 0 {
		t.Fatalf("below filter: %+v", below)
	}
	if got, want := evtPaid(below.Commissions), "alice@0=49 parent@1=29 grandpa@2=9"; got != want {
		t.Fatalf("below filter commissions = %q, want %q", got, want)
	}
	if r := tr.referral(t, ref.ID); r.Status != "pending" || r.ConvertedAt != nil {
		t.Fatalf("referral after below-filter event: %+v", r)
	}

	// Qualifying: double-sided rewards, conversion, commissions.
	q := tr.event(t, evtBody("dep_2", "deposit.completed", "bob", map[string]any{"amount": 1000}))
	if got, want := evtRewarded(q.Rewards), "bob/referee=50 points alice/referrer=100 points"; got != want {
		t.Fatalf("rewards = %q, want %q", got, want)
	}
	for _, r := range q.Rewards {
		if r.CampaignID != campaign || r.ReferralID != ref.ID || r.EventID != "dep_2" || r.ID == "" || r.CreatedAt == "" {
			t.Fatalf("reward row %+v", r)
		}
	}
	if got, want := evtPaid(q.Commissions), "alice@0=50 parent@1=30 grandpa@2=10"; got != want {
		t.Fatalf("commissions = %q, want %q", got, want)
	}
	c0 := q.Commissions[0]
	if c0.TierID == nil || *c0.TierID != tr.tier || string(c0.Rate) != "0.05" || c0.BaseAmount != 1000 ||
		c0.RuleID != tr.rule || c0.SourceUserID != "bob" || c0.AffiliateID != tr.alice || c0.CurrencyID != "EUR" {
		t.Fatalf("level 0 row %+v", c0)
	}
	if c1 := q.Commissions[1]; c1.TierID != nil || string(c1.Rate) != "0.03" || c1.AffiliateID != tr.parent {
		t.Fatalf("level 1 row %+v", c1)
	}
	r := tr.referral(t, ref.ID)
	if r.Status != "converted" || r.ConvertedAt == nil || r.CampaignID == nil || *r.CampaignID != campaign {
		t.Fatalf("referral after qualifying event: %+v", r)
	}

	// The campaign pays each referral once; commissions keep flowing.
	again := tr.event(t, evtBody("dep_3", "deposit.completed", "bob", map[string]any{"amount": 2000}))
	if len(again.Rewards) != 0 || evtPaid(again.Commissions) != "alice@0=100 parent@1=60 grandpa@2=20" {
		t.Fatalf("second qualifying event: %+v", again)
	}

	// A replay returns the first outcome whatever its body and pays nothing.
	rewardsBefore, commissionsBefore := evtCount(t, tr.tenant, "rewards"), evtCount(t, tr.tenant, "commissions")
	dup := tr.event(t, evtBody("dep_2", "bet.placed", "someone_else", map[string]any{"amount": 99999}))
	if dup.Status != "duplicate" || !reflect.DeepEqual(dup.Rewards, q.Rewards) || !reflect.DeepEqual(dup.Commissions, q.Commissions) {
		t.Fatalf("replay = %+v, want the first outcome %+v", dup, q)
	}
	if evtCount(t, tr.tenant, "rewards") != rewardsBefore || evtCount(t, tr.tenant, "commissions") != commissionsBefore {
		t.Fatal("a replay wrote ledger rows")
	}

	// Ledger reads.
	var rw evtList[evtReward]
	tr.e.do(http.MethodGet, "/v1/referral/rewards?event_id=dep_2&order=asc", tr.adm, nil).must(t, http.StatusOK, &rw)
	if rw.Total != 2 || len(rw.Items) != 2 || rw.Limit != 50 || !reflect.DeepEqual(rw.Items, q.Rewards) {
		t.Fatalf("rewards by event = %+v, want %+v", rw, q.Rewards)
	}
	tr.e.do(http.MethodGet, "/v1/referral/rewards?user_id=alice&campaign_id="+campaign+"&referral_id="+ref.ID, tr.adm, nil).must(t, http.StatusOK, &rw)
	if rw.Total != 1 || rw.Items[0].Role != "referrer" {
		t.Fatalf("rewards of alice = %+v", rw)
	}
	var cl evtList[evtCommission]
	tr.e.do(http.MethodGet, "/v1/affiliate/commissions?affiliate_id="+tr.parent, tr.adm, nil).must(t, http.StatusOK, &cl)
	if cl.Total != 3 || cl.Items[0].EventID != "dep_3" || cl.Items[2].EventID != "dep_1" {
		t.Fatalf("parent's commissions, newest first = %+v", cl)
	}
	tr.e.do(http.MethodGet, "/v1/affiliate/commissions?level=2&order=asc&limit=2&offset=1", tr.adm, nil).must(t, http.StatusOK, &cl)
	if cl.Total != 3 || len(cl.Items) != 2 || cl.Items[0].EventID != "dep_2" || cl.Items[1].Amount != 20 {
		t.Fatalf("level 2, oldest first, page 2 = %+v", cl)
	}
	tr.e.do(http.MethodGet, "/v1/affiliate/commissions?event_id=dep_3", tr.adm, nil).must(t, http.StatusOK, &cl)
	if cl.Total != 3 {
		t.Fatalf("commissions of dep_3 = %+v", cl)
	}
	for _, bad := range []string{"/v1/referral/rewards?order=up", "/v1/referral/rewards?campaign_id=nope",
		"/v1/referral/rewards?limit=0", "/v1/affiliate/commissions?level=-1", "/v1/affiliate/commissions?affiliate_id=x"} {
		tr.e.do(http.MethodGet, bad, tr.adm, nil).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	}
	tr.e.do(http.MethodGet, "/v1/referral/rewards", tr.svc, nil).fail(t, http.StatusForbidden, "FORBIDDEN")
}

func TestEvtTierPromotion(t *testing.T) {
	w := evtNew(t)
	bronze := w.tier(t, "bronze", "0.05", 0, 0, 1)
	gold := w.tier(t, "gold", "0.1", 2, 0, 2)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.campaign(t, "deposit.completed", nil, evtWallet(), evtWallet())
	w.affiliate(t, "alice", "")
	w.apply(t, "bob", "ALICE")
	w.apply(t, "carol", "ALICE")

	// bob's event converts the first referral: still bronze.
	o := w.event(t, evtBody("e1", "deposit.completed", "bob", map[string]any{"amount": 1000}))
	if evtPaid(o.Commissions) != "alice@0=50" || *o.Commissions[0].TierID != bronze {
		t.Fatalf("first: %+v", o.Commissions)
	}
	// carol's converts the second, which counts at once: gold pays this very event.
	o = w.event(t, evtBody("e2", "deposit.completed", "carol", map[string]any{"amount": 1000}))
	if evtPaid(o.Commissions) != "alice@0=100" || *o.Commissions[0].TierID != gold || string(o.Commissions[0].Rate) != "0.1" {
		t.Fatalf("promoted: %+v", o.Commissions)
	}

	// Revenue thresholds: referee_revenue grows by the base before the tier is chosen.
	w2 := evtOn(w.e, w.tenant+"-rev")
	w2.tier(t, "base", "0.01", 0, 0, 1)
	w2.tier(t, "whale", "0.2", 0, 5000, 5)
	w2.rule(t, "bet.placed", nil, "stake", "", "EUR")
	w2.affiliate(t, "dave", "")
	w2.apply(t, "erin", "DAVE")
	o = w2.event(t, evtBody("b1", "bet.placed", "erin", map[string]any{"stake": 4000}))
	if evtPaid(o.Commissions) != "dave@0=40" {
		t.Fatalf("below revenue threshold: %s", evtPaid(o.Commissions))
	}
	o = w2.event(t, evtBody("b2", "bet.placed", "erin", map[string]any{"stake": 1000}))
	if evtPaid(o.Commissions) != "dave@0=200" {
		t.Fatalf("revenue 5000 reached by this event: %s", evtPaid(o.Commissions))
	}
}

func TestEvtSuspendedAncestorSkipped(t *testing.T) {
	tr := evtNewTree(t)
	tr.apply(t, "bob", "ALICE")
	tr.setAffiliateStatus(t, tr.parent, "suspended")
	o := tr.event(t, evtBody("e1", "deposit.completed", "bob", map[string]any{"amount": 10000}))
	if got, want := evtPaid(o.Commissions), "alice@0=500 grandpa@2=100"; got != want {
		t.Fatalf("commissions = %q, want %q", got, want)
	}
	// A suspended direct affiliate earns nothing, and neither does its upline.
	tr.setAffiliateStatus(t, tr.alice, "suspended")
	o = tr.event(t, evtBody("e2", "deposit.completed", "bob", map[string]any{"amount": 10000}))
	if len(o.Commissions) != 0 {
		t.Fatalf("suspended direct affiliate: %s", evtPaid(o.Commissions))
	}
}

func TestEvtNothingAtAll(t *testing.T) {
	tr := evtNewTree(t)
	tr.campaign(t, "deposit.completed", nil, evtWallet("points", 1), evtWallet("points", 1))
	body := func(id, user string) map[string]any {
		return evtBody(id, "deposit.completed", user, map[string]any{"amount": 1000})
	}
	if o := tr.event(t, body("n1", "nobody")); o.Status != "processed" || len(o.Rewards)+len(o.Commissions) != 0 {
		t.Fatalf("non-referred user: %+v", o)
	}
	ref := tr.apply(t, "bob", "ALICE")
	tr.e.do(http.MethodPut, "/v1/referral/referrals/"+ref.ID+"/status", tr.adm, map[string]any{"status": "rejected"}).must(t, http.StatusOK, nil)
	if o := tr.event(t, body("n2", "bob")); len(o.Rewards)+len(o.Commissions) != 0 {
		t.Fatalf("rejected referral: %+v", o)
	}
	tr.apply(t, "carol", "ALICE")
	early := body("n3", "carol")
	early["occurred_at"] = evtTime(-time.Hour)
	if o := tr.event(t, early); len(o.Rewards)+len(o.Commissions) != 0 {
		t.Fatalf("event before the referral: %+v", o)
	}
	if o := tr.event(t, body("n4", "carol")); len(o.Rewards) != 2 || len(o.Commissions) != 3 {
		t.Fatalf("carol's later event: %+v", o)
	}
	// An admin-owned code: the referee is rewarded, nobody earns a commission.
	var code evtID
	tr.e.do(http.MethodPost, "/v1/referral/codes", tr.adm, map[string]any{"code": "PROMO1"}).must(t, http.StatusOK, &code)
	tr.apply(t, "dan", "PROMO1")
	if o := tr.event(t, body("n5", "dan")); evtRewarded(o.Rewards) != "dan/referee=1 points" || len(o.Commissions) != 0 {
		t.Fatalf("admin code: %+v", o)
	}
}

func TestEvtBoundCampaignAndWindow(t *testing.T) {
	w := evtNew(t)
	w.affiliate(t, "alice", "")
	wide := w.campaign(t, "deposit.completed", nil, evtWallet(), evtWallet("points", 1))
	bound := w.campaign(t, "deposit.completed", nil, evtWallet(), evtWallet("points", 2))
	w.campaign(t, "deposit.completed", nil, evtWallet(), evtWallet("points", 3),
		"starts_at", evtTime(2*time.Minute))
	var code evtID
	w.e.do(http.MethodPost, "/v1/referral/codes", w.adm, map[string]any{"code": "BOUND1", "campaign_id": bound}).must(t, http.StatusOK, &code)
	w.apply(t, "bob", "BOUND1")
	w.apply(t, "carol", "ALICE")
	o := w.event(t, evtBody("e1", "deposit.completed", "bob", nil))
	if evtRewarded(o.Rewards) != "bob/referee=2 points" {
		t.Fatalf("bound code: %s", evtRewarded(o.Rewards))
	}
	o = w.event(t, evtBody("e2", "deposit.completed", "carol", nil))
	if evtRewarded(o.Rewards) != "carol/referee=1 points carol/referee=2 points" || o.Rewards[0].CampaignID != wide {
		t.Fatalf("unbound code: %s", evtRewarded(o.Rewards))
	}
	// The campaign starting in two minutes pays an event that occurs inside its window.
	late := evtBody("e3", "deposit.completed", "carol", nil)
	late["occurred_at"] = evtTime(3 * time.Minute)
	o = w.event(t, late)
	if evtRewarded(o.Rewards) != "carol/referee=3 points" {
		t.Fatalf("event inside the later window: %s", evtRewarded(o.Rewards))
	}
}

func TestEvtValidation(t *testing.T) {
	w := evtNew(t)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"malformed", `{"event_id":`, "INVALID_JSON", ""},
		{"not an object", `[1]`, "VALIDATION_FAILED", "body"},
		{"missing id", map[string]any{"type": "a", "user_id": "u"}, "VALIDATION_FAILED", "event_id"},
		{"null id", map[string]any{"event_id": nil, "type": "a", "user_id": "u"}, "VALIDATION_FAILED", "event_id"},
		{"long id", evtBody(long, "a", "u", nil), "VALIDATION_FAILED", "event_id"},
		{"numeric id", map[string]any{"event_id": 5, "type": "a", "user_id": "u"}, "VALIDATION_FAILED", "event_id"},
		{"missing type", map[string]any{"event_id": "e", "user_id": "u"}, "VALIDATION_FAILED", "type"},
		{"bad type", evtBody("e", "Deposit Completed", "u", nil), "VALIDATION_FAILED", "type"},
		{"missing user", map[string]any{"event_id": "e", "type": "a"}, "VALIDATION_FAILED", "user_id"},
		{"long user", evtBody("e", "a", long, nil), "VALIDATION_FAILED", "user_id"},
		{"payload array", evtBody("e", "a", "u", []int{1}), "VALIDATION_FAILED", "payload"},
		{"payload string", evtBody("e", "a", "u", "x"), "VALIDATION_FAILED", "payload"},
		{"unknown field", map[string]any{"event_id": "e", "type": "a", "user_id": "u", "amount": 1}, "VALIDATION_FAILED", "amount"},
		{"bad time", map[string]any{"event_id": "e", "type": "a", "user_id": "u", "occurred_at": "yesterday"}, "VALIDATION_FAILED", "occurred_at"},
		{"NUL in payload", `{"event_id":"e","type":"a","user_id":"u","payload":{"k":"\u0000"}}`, "VALIDATION_FAILED", "payload.k"},
		{"NUL in id", `{"event_id":"\u0000","type":"a","user_id":"u"}`, "VALIDATION_FAILED", "event_id"},
		{"deep payload", `{"event_id":"e","type":"a","user_id":"u","payload":{"k":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, "VALIDATION_FAILED", "payload"},
		{"year zero", map[string]any{"event_id": "e", "type": "a", "user_id": "u", "occurred_at": "0000-06-01T00:00:00Z"}, "VALIDATION_FAILED", "occurred_at"},
		{"future", map[string]any{"event_id": "e", "type": "a", "user_id": "u", "occurred_at": evtTime(6 * time.Minute)}, "VALIDATION_FAILED", "occurred_at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eb := w.e.do(http.MethodPost, "/v1/events", w.svc, tc.body).fail(t, http.StatusBadRequest, tc.code)
			if tc.field != "" && eb.Error.Fields[tc.field] == "" {
				t.Fatalf("fields = %v, want %s", eb.Error.Fields, tc.field)
			}
		})
	}
	if n := evtCount(t, w.tenant, "events"); n != 0 {
		t.Fatalf("%d events stored by invalid posts", n)
	}
	// Within the clock-skew allowance, with a null payload (the default {}).
	ok := map[string]any{"event_id": "ok", "type": "a", "user_id": "u", "occurred_at": evtTime(4 * time.Minute), "payload": nil}
	if o := w.event(t, ok); o.Status != "processed" || o.EventID != "ok" || o.Rewards == nil || o.Commissions == nil {
		t.Fatalf("valid event: %+v", o)
	}
	// Roles: a player may not post events; an admin may.
	w.e.do(http.MethodPost, "/v1/events", w.player("u"), evtBody("p", "a", "u", nil)).fail(t, http.StatusForbidden, "FORBIDDEN")
	w.e.do(http.MethodPost, "/v1/events", w.adm, evtBody("adm", "a", "u", nil)).must(t, http.StatusOK, nil)
	w.e.do(http.MethodGet, "/v1/events", w.adm, nil).fail(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
}

func TestEvtBatch(t *testing.T) {
	tr := evtNewTree(t)
	tr.campaign(t, "deposit.completed", map[string]any{"amount": map[string]any{"gte": 500}}, evtWallet("points", 10), evtWallet("points", 5))
	tr.apply(t, "bob", "ALICE")
	tr.event(t, evtBody("old", "deposit.completed", "bob", map[string]any{"amount": 100}))
	items := []any{
		evtBody("b1", "deposit.completed", "bob", map[string]any{"amount": 1000}),
		map[string]any{"event_id": "b2", "user_id": "bob"}, // no type
		7,
		evtBody("b1", "deposit.completed", "bob", map[string]any{"amount": 5}), // repeat in batch
		evtBody("old", "deposit.completed", "bob", map[string]any{"amount": 5}),
		evtBody("b3", "deposit.completed", "bob", map[string]any{"amount": 2000}),
		evtBody("b4", "deposit.completed", "nobody", nil),
	}
	var got struct {
		Results []evtOutcome `json:"results"`
	}
	tr.e.do(http.MethodPost, "/v1/events/batch", tr.svc, map[string]any{"events": items}).must(t, http.StatusOK, &got)
	if len(got.Results) != len(items) {
		t.Fatalf("%d results for %d events", len(got.Results), len(items))
	}
	status := []string{}
	for _, r := range got.Results {
		status = append(status, r.Status)
	}
	if want := []string{"processed", "rejected", "rejected", "duplicate", "duplicate", "processed", "processed"}; !reflect.DeepEqual(status, want) {
		t.Fatalf("statuses = %v, want %v", status, want)
	}
	r := got.Results
	if r[1].EventID != "b2" || r[1].Error == nil || r[1].Error.Code != "VALIDATION_FAILED" || r[1].Error.Fields["type"] == "" {
		t.Fatalf("rejected item = %+v", r[1])
	}
	if r[2].EventID != "" || r[2].Error == nil {
		t.Fatalf("non-object item = %+v", r[2])
	}
	if evtRewarded(r[0].Rewards) != "bob/referee=5 points alice/referrer=10 points" || evtPaid(r[0].Commissions) != "alice@0=50 parent@1=30 grandpa@2=10" {
		t.Fatalf("first event = %+v", r[0])
	}
	if !reflect.DeepEqual(r[3].Rewards, r[0].Rewards) || !reflect.DeepEqual(r[3].Commissions, r[0].Commissions) {
		t.Fatalf("repeat in batch = %+v, want first outcome", r[3])
	}
	if len(r[4].Rewards) != 0 || evtPaid(r[4].Commissions) != "alice@0=5 parent@1=3 grandpa@2=1" {
		t.Fatalf("replay of an earlier event = %+v", r[4])
	}
	if len(r[5].Rewards) != 0 || evtPaid(r[5].Commissions) != "alice@0=100 parent@1=60 grandpa@2=20" {
		t.Fatalf("later event in batch = %+v", r[5])
	}
	// The rejected id stays free.
	if o := tr.event(t, evtBody("b2", "deposit.completed", "bob", nil)); o.Status != "processed" {
		t.Fatalf("b2 after rejection = %+v", o)
	}

	for name, body := range map[string]any{
		"missing events": map[string]any{},
		"events null":    map[string]any{"events": nil},
		"not an array":   map[string]any{"events": "x"},
		"too many":       map[string]any{"events": make([]map[string]any, 501)},
		"unknown field":  map[string]any{"events": []any{}, "extra": 1},
	} {
		t.Run(name, func(t *testing.T) {
			tr.e.do(http.MethodPost, "/v1/events/batch", tr.svc, body).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
		})
	}
	var empty struct {
		Results []json.RawMessage `json:"results"`
	}
	tr.e.do(http.MethodPost, "/v1/events/batch", tr.svc, map[string]any{"events": []any{}}).must(t, http.StatusOK, &empty)
	if empty.Results == nil || len(empty.Results) != 0 {
		t.Fatalf("empty batch = %+v", empty)
	}
}

func TestEvtSimulateWritesNothing(t *testing.T) {
	tr := evtNewTree(t)
	tr.campaign(t, "deposit.completed", nil, evtWallet("points", 10), evtWallet("points", 5))
	ref := tr.apply(t, "bob", "ALICE")
	counts := func() [4]int {
		return [4]int{evtCount(t, tr.tenant, "events"), evtCount(t, tr.tenant, "rewards"),
			evtCount(t, tr.tenant, "commissions"), evtCount(t, tr.tenant, "campaign_qualifications")}
	}
	before := counts()
	body := evtBody("sim_1", "deposit.completed", "bob", map[string]any{"amount": 1000})
	var sim evtOutcome
	tr.e.do(http.MethodPost, "/v1/affiliate/simulate", tr.adm, body).must(t, http.StatusOK, &sim)
	if sim.Status != "simulated" || evtRewarded(sim.Rewards) != "bob/referee=5 points alice/referrer=10 points" ||
		evtPaid(sim.Commissions) != "alice@0=50 parent@1=30 grandpa@2=10" {
		t.Fatalf("simulation = %+v", sim)
	}
	if counts() != before || tr.referral(t, ref.ID).Status != "pending" {
		t.Fatalf("simulate wrote: %v → %v", before, counts())
	}
	var aff map[string]any
	tr.e.do(http.MethodGet, "/v1/affiliates/"+tr.alice, tr.adm, nil).must(t, http.StatusOK, &aff)
	if aff["referee_revenue"].(float64) != 0 {
		t.Fatalf("simulate moved counters: %v", aff)
	}
	// The event_id stays unused: the real post processes it and pays the same.
	real := tr.event(t, body)
	if real.Status != "processed" || evtRewarded(real.Rewards) != evtRewarded(sim.Rewards) || evtPaid(real.Commissions) != evtPaid(sim.Commissions) {
		t.Fatalf("real post = %+v, simulated %+v", real, sim)
	}
	// Simulating a used id answers what a post would: the first outcome, as a duplicate.
	var again evtOutcome
	tr.e.do(http.MethodPost, "/v1/affiliate/simulate", tr.adm, body).must(t, http.StatusOK, &again)
	if again.Status != "duplicate" || !reflect.DeepEqual(again.Rewards, real.Rewards) {
		t.Fatalf("simulating a used id = %+v", again)
	}
	tr.e.do(http.MethodPost, "/v1/affiliate/simulate", tr.svc, body).fail(t, http.StatusForbidden, "FORBIDDEN")
	tr.e.do(http.MethodPost, "/v1/affiliate/simulate", tr.adm, evtBody("", "x", "u", nil)).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
}

func TestEvtReferralAppliedCampaign(t *testing.T) {
	w := evtNew(t)
	promo := w.campaign(t, "referral.applied", nil, evtWallet("points", 20), evtWallet("points", 10, "spins", 3))
	w.affiliate(t, "alice", "")
	ref := w.apply(t, "bob", "ALICE")
	if got, want := evtRewarded(ref.Rewards), "bob/referee=10 points bob/referee=3 spins alice/referrer=20 points"; got != want {
		t.Fatalf("apply-code rewards = %q, want %q", got, want)
	}
	if ref.Status != "converted" || ref.CampaignID == nil || *ref.CampaignID != promo || ref.ConvertedAt == nil {
		t.Fatalf("referral after apply = %+v", ref)
	}
	var rw evtList[evtReward]
	w.e.do(http.MethodGet, "/v1/referral/rewards?event_id=referral.applied:"+ref.ID, w.adm, nil).must(t, http.StatusOK, &rw)
	if rw.Total != 3 {
		t.Fatalf("ledger rows of the applied event = %+v", rw)
	}
	// The built-in event is recorded; posting its id again is a duplicate.
	o := w.event(t, evtBody("referral.applied:"+ref.ID, "referral.applied", "bob", nil))
	if o.Status != "duplicate" || len(o.Rewards) != 3 {
		t.Fatalf("replayed applied event = %+v", o)
	}
}
