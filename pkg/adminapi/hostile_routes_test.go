package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// hostileTexts are the JSON values no request body may carry anywhere (SPEC §3); each must be
// 400 VALIDATION_FAILED naming the value's path. The strings also serve as object keys.
var hostileTexts = []struct {
	name, text string
	key        bool // usable as an object key
}{
	{"NUL", `"a\u0000b"`, true},
	{"invalid UTF-8", "\"a\xffb\"", true},
	{"lone high surrogate", `"x\ud800"`, true},
	{"lone low surrogate", `"x\udc00"`, true},
	{"1e999999", `1e999999`, false},
	{"-1e999999", `-1e999999`, false},
}

// hostileLong is a 10 KB string: a 4xx wherever a field is bounded, valid data where it is not.
var hostileLong = `"` + strings.Repeat("x", 10<<10) + `"`

// hostileRoute is one route taking a body: a valid body and the paths of its values to replace.
// A path is dotted keys with [n] for array items, the way errors name fields; a path ending in
// ".*" adds a key to that object instead.
type hostileRoute struct {
	name, method, path, token, body string
	fields                          []string
	long                            map[string]longOutcome // per field; default longRejected
}

// longOutcome is what a 10 KB string in a field must answer.
type longOutcome int

const (
	longRejected longOutcome = iota // 400 VALIDATION_FAILED naming the field, nothing written
	longAccepted                    // free-form data: any non-5xx answer
	longGuess                       // apply-code's code: 404 CODE_NOT_FOUND, a counted guess (§4.3)
)

// hostileFixture seeds one tenant with one object of each kind for the routes that take an id.
type hostileFixture struct {
	campaign, code, codeString, referral, held, affiliate, affUser, affCode, parent, tier, rule string
}

func hostileSeed(t *testing.T, e *env) hostileFixture {
	t.Helper()
	f := hostileFixture{campaign: refCreateCampaign(t, e).ID}
	c := refAdminCode(t, e, map[string]any{"code": "HOSTILEFIX"})
	f.code, f.codeString = c.ID, c.Code
	owned := refPlayerCode(t, e, "alice", map[string]any{"code": "ALICEHOST"})
	var r refReferral
	refApply(e, "bob", owned.Code).must(t, 200, &r)
	f.referral = r.ID
	// A referral held for review (a shared device under the default policy, §12).
	for _, u := range []string{"held_owner", "held_guest"} {
		e.do(http.MethodPost, "/v1/referral/signals", e.admin(), map[string]any{"user_id": u, "device_id": "shared-phone"}).must(t, 200, nil)
	}
	heldCode := refPlayerCode(t, e, "held_owner", map[string]any{"code": "HELDHOST"})
	var held refReferral
	refApply(e, "held_guest", heldCode.Code).must(t, 200, &held)
	f.held = held.ID
	a := affNew(t, e, "aff_fixture")
	f.affiliate, f.affUser, f.affCode = a.ID, a.UserID, a.AffiliateCode
	f.parent = affNew(t, e, "aff_parent").ID
	f.tier = affTier(t, e, map[string]any{"name": "bronze", "commission_rate": 0.05})
	var rule evtID
	e.do(http.MethodPost, "/v1/affiliate/commission-rules", e.admin(), map[string]any{"name": "fixture",
		"event_type": "deposit.completed", "currency_id": "EUR"}).must(t, 200, &rule)
	f.rule = rule.ID
	return f
}

// hostileRoutes lists every Admin Gateway route that decodes a body (routes.go), with a valid body.
func hostileRoutes(e *env, f hostileFixture) []hostileRoute {
	admin, player, service := e.admin(), e.token(auth.RolePlayer, "carol"), e.token(auth.RoleService, "producer")
	campaign := `{"name": "Hostile", "qualifying_event": "deposit.completed",
		"qualifying_filter": {"amount": {"gte": 1000}, "currency": "EUR"},
		"referrer_rewards": {"wallet": [{"currency_id": "points", "amount": 100}]},
		"referee_rewards": {"wallet": [{"currency_id": "points", "amount": 50}]},
		"active": true, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z",
		"milestones": [{"successful_referrals": 5, "rewards": {"wallet": [{"currency_id": "points", "amount": 500}]}}]}`
	campaignFields := []string{"name", "qualifying_event", "qualifying_filter.amount.gte", "qualifying_filter.currency",
		"qualifying_filter.*", "referrer_rewards.wallet[0].currency_id", "referrer_rewards.wallet[0].amount",
		"referee_rewards.wallet[0].amount", "active", "starts_at", "ends_at",
		"milestones[0].successful_referrals", "milestones[0].rewards.wallet[0].amount"}
	campaignLong := map[string]longOutcome{"qualifying_filter.currency": longAccepted, "qualifying_filter.*": longAccepted}
	code := func(s string) string {
		return `{"code": "` + s + `", "usage_limit": 10, "campaign_id": "` + f.campaign + `", "owner_user_id": "owner_1",
			"expires_at": "2030-01-01T00:00:00Z", "active": true}`
	}
	codeFields := []string{"code", "usage_limit", "campaign_id", "owner_user_id", "expires_at", "active"}
	affiliate := func(user, code string) string {
		return `{"user_id": "` + user + `", "affiliate_code": "` + code + `", "status": "active", "tier_override_id": "` + f.tier + `"}`
	}
	affiliateFields := []string{"user_id", "affiliate_code", "status", "tier_override_id"}
	tier := `{"name": "gold", "commission_rate": 0.1, "min_referrals": 1, "min_referee_revenue": 100, "priority": 2}`
	tierFields := []string{"name", "commission_rate", "min_referrals", "min_referee_revenue", "priority"}
	rule := `{"name": "r", "event_type": "deposit.completed", "event_filter": {"amount": {"gte": 1}, "currency": {"in": ["EUR"]}},
		"commission_field": "amount", "use_tier_rate": false, "custom_rate": 0.05, "currency_id": "EUR", "active": true}`
	ruleFields := []string{"name", "event_type", "event_filter.amount.gte", "event_filter.currency.in[0]", "event_filter.*",
		"commission_field", "use_tier_rate", "custom_rate", "currency_id", "active"}
	ruleLong := map[string]longOutcome{"event_filter.currency.in[0]": longAccepted, "event_filter.*": longAccepted}
	policy := `{"max_depth": 2, "level_rates": [0.03, 0.01], "active": true}`
	policyFields := []string{"max_depth", "level_rates[0]", "level_rates[1]", "active"}
	event := hostileEvent("evt_ok")
	eventLong := map[string]longOutcome{"payload.amount": longAccepted, "payload.currency": longAccepted, "payload.meta.tags[0]": longAccepted, "payload.*": longAccepted}
	return []hostileRoute{
		{"create campaign", "POST", "/v1/referral/campaigns", admin, campaign, campaignFields, campaignLong},
		{"replace campaign", "PUT", "/v1/referral/campaigns/" + f.campaign, admin, campaign, campaignFields, campaignLong},
		{"admin code", "POST", "/v1/referral/codes", admin, code("HOSTILE2"), codeFields, nil},
		{"player code", "POST", "/v1/referral/codes", player, `{"code": "CAROL1", "usage_limit": 5}`, []string{"code", "usage_limit"}, nil},
		{"replace code", "PUT", "/v1/referral/codes/" + f.code, admin, code(f.codeString), codeFields, nil},
		{"patch code", "PATCH", "/v1/referral/codes/" + f.code, admin,
			`{"usage_limit": 10, "active": true, "expires_at": "2030-01-01T00:00:00Z", "campaign_id": "` + f.campaign + `"}`,
			[]string{"usage_limit", "active", "expires_at", "campaign_id"}, nil},
		{"apply code", "POST", "/v1/referral/apply-code", player,
			`{"code": "ALICEHOST", "metadata": {"source": "qr", "n": 1, "tags": ["a"]}}`,
			[]string{"code", "metadata.source", "metadata.n", "metadata.tags[0]", "metadata.*"},
			map[string]longOutcome{"code": longGuess}},
		{"referral status", "PUT", "/v1/referral/referrals/" + f.referral + "/status", admin,
			`{"status": "rejected", "reason": "fraud"}`, []string{"status", "reason"}, nil},
		{"review", "PUT", "/v1/referral/referrals/" + f.held + "/review", admin,
			`{"decision": "approve", "note": "checked"}`, []string{"decision", "note"}, nil},
		{"create affiliate", "POST", "/v1/affiliates", admin, affiliate("aff_new", "AFFNEW"), affiliateFields, nil},
		{"replace affiliate", "PUT", "/v1/affiliates/" + f.affiliate, admin, affiliate(f.affUser, f.affCode), affiliateFields, nil},
		{"upline", "PUT", "/v1/affiliates/" + f.affiliate + "/hierarchy", admin,
			`{"parent_affiliate_id": "` + f.parent + `"}`, []string{"parent_affiliate_id"}, nil},
		{"upline alias", "PUT", "/v1/affiliates/" + f.affiliate + "/parent", admin,
			`{"parent_affiliate_id": "` + f.parent + `"}`, []string{"parent_affiliate_id"}, nil},
		{"create tier", "POST", "/v1/affiliate/tiers", admin, tier, tierFields, nil},
		{"replace tier", "PUT", "/v1/affiliate/tiers/" + f.tier, admin, tier, tierFields, nil},
		{"create rule", "POST", "/v1/affiliate/commission-rules", admin, rule, ruleFields, ruleLong},
		{"replace rule", "PUT", "/v1/affiliate/commission-rules/" + f.rule, admin, rule, ruleFields, ruleLong},
		{"hierarchy policy", "PUT", "/v1/affiliate/hierarchy", admin, policy, policyFields, nil},
		{"hierarchy policy alias", "PUT", "/v1/affiliate/hierarchy-config", admin, policy, policyFields, nil},
		{"event", "POST", "/v1/events", service, event, hostileEventFields, eventLong},
		{"signal", "POST", "/v1/referral/signals", service,
			`{"user_id": "sig_user", "address": "203.0.113.7", "device_id": "dev-1", "seen_at": "2026-01-01T00:00:00Z"}`,
			[]string{"user_id", "address", "device_id", "seen_at"}, nil},
		{"risk policy", "PUT", "/v1/referral/risk-policy", admin,
			`{"active": true, "same_device": "hold", "same_address": "allow", "address_window_hours": 24,
			  "velocity": {"max_referrals": 5, "per_hours": 24, "action": "hold"}}`,
			[]string{"active", "same_device", "same_address", "address_window_hours", "velocity.max_referrals",
				"velocity.per_hours", "velocity.action"}, nil},
		{"simulate", "POST", "/v1/affiliate/simulate", admin, event, hostileEventFields, eventLong},
	}
}

// hostileEventFields are the values of hostileEvent that the tests replace.
var hostileEventFields = []string{"event_id", "type", "user_id", "occurred_at", "payload.amount", "payload.currency",
	"payload.meta.tags[0]", "payload.*"}

// hostileEvent is a valid event body with the given id.
func hostileEvent(id string) string {
	return `{"event_id": "` + id + `", "type": "deposit.completed", "user_id": "bob",
		"occurred_at": "2026-01-01T00:00:00Z", "payload": {"amount": 5000, "currency": "EUR", "meta": {"tags": ["x"]}}}`
}

// TestHostileInputEveryRoute sends every hostile value in every field of every route that takes a
// body: each is a 4xx with the envelope, never a 5xx, the bad value is named by its path, and a
// rejected request writes nothing. The valid bodies are sent last, to show that the field was
// the only fault.
func TestHostileInputEveryRoute(t *testing.T) {
	e := newEnv(t)
	routes := hostileRoutes(e, hostileSeed(t, e))
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			for _, field := range r.fields {
				for _, h := range hostileTexts {
					if strings.HasSuffix(field, ".*") && !h.key {
						continue
					}
					before := hostileSnapshot(t, e)
					res := e.do(r.method, r.path, r.token, hostileBody(t, r.body, field, h.text))
					what := h.name + " in " + field
					// The body check names the very value.
					if fields, ok := hostileRejected(t, what, res, 400, "VALIDATION_FAILED"); ok && !hostileNamed(fields, field, false) {
						t.Errorf("%s: fields = %q, want %s named", what, fields, field)
					}
					if after := hostileSnapshot(t, e); after != before {
						t.Errorf("%s: a rejected request wrote:\n%s", what, hostileDiff(before, after))
					}
				}
				before := hostileSnapshot(t, e)
				res := e.do(r.method, r.path, r.token, hostileBody(t, r.body, field, hostileLong))
				what := "10 KB in " + field
				switch r.long[field] {
				case longRejected:
					// Length bounds are the handlers' rules, which name the field or the object holding it.
					if fields, ok := hostileRejected(t, what, res, 400, "VALIDATION_FAILED"); ok && !hostileNamed(fields, field, true) {
						t.Errorf("%s: fields = %q", what, fields)
					}
					if after := hostileSnapshot(t, e); after != before {
						t.Errorf("%s: a rejected request wrote:\n%s", what, hostileDiff(before, after))
					}
				case longGuess:
					hostileRejected(t, what, res, 404, "CODE_NOT_FOUND")
				case longAccepted:
					if res.Status >= 500 {
						t.Errorf("%s: %d %s", what, res.Status, res.Body)
					}
				}
			}
		})
	}
	for _, r := range routes {
		if res := e.do(r.method, r.path, r.token, r.body); res.Status != http.StatusOK {
			t.Errorf("%s: the valid body answered %d %s", r.name, res.Status, res.Body)
		}
	}
}

// TestHostileBatch puts each hostile value in each field of the middle event of a three-event
// batch: that event alone is rejected, naming the field, and the two others are processed.
func TestHostileBatch(t *testing.T) {
	e := newEnv(t)
	svc := e.token(auth.RoleService, "producer")
	n := 0
	batch := func(t *testing.T, field, text string) (ids [2]string, res *resp) {
		n++
		ids = [2]string{"good_a" + strconv.Itoa(n), "good_b" + strconv.Itoa(n)}
		bad := hostileBody(t, hostileEvent("bad"+strconv.Itoa(n)), field, text)
		body := `{"events": [` + hostileEvent(ids[0]) + `, ` + string(bad) + `, ` + hostileEvent(ids[1]) + `]}`
		return ids, e.do(http.MethodPost, "/v1/events/batch", svc, body)
	}
	for _, field := range hostileEventFields {
		for _, h := range hostileTexts {
			if strings.HasSuffix(field, ".*") && !h.key {
				continue
			}
			t.Run(field+"/"+h.name, func(t *testing.T) {
				ids, res := batch(t, field, h.text)
				var out struct {
					Results []evtOutcome `json:"results"`
				}
				res.must(t, 200, &out)
				if len(out.Results) != 3 {
					t.Fatalf("results = %s", res.Body)
				}
				for i, id := range []string{ids[0], "", ids[1]} {
					got := out.Results[i]
					if id == "" {
						if got.Status != "rejected" || got.Error == nil || got.Error.Code != "VALIDATION_FAILED" ||
							!hostileNamed(got.Error.Fields, field, false) {
							t.Errorf("bad event: %+v", got)
						}
						continue
					}
					if got.Status != "processed" || got.EventID != id {
						t.Errorf("result %d = %+v, want %s processed", i, got, id)
					}
				}
				stored := hostileEventIDs(t, e)
				if !stored[ids[0]] || !stored[ids[1]] || len(stored) != 2*n {
					t.Errorf("stored events = %v after %d batches", stored, n)
				}
			})
		}
	}
}

// TestHostileDistinctIDs is the observed merge: ids "x\ud800" and "x\ud801" both became
// "x\ufffd", so the second was answered duplicate. Both are rejected, alone and in a batch.
func TestHostileDistinctIDs(t *testing.T) {
	e := newEnv(t)
	svc := e.token(auth.RoleService, "producer")
	for _, id := range []string{`x\ud800`, `x\ud801`} {
		e.do(http.MethodPost, "/v1/events", svc, `{"event_id": "`+id+`", "type": "t", "user_id": "u"}`).fail(t, 400, "VALIDATION_FAILED")
	}
	body := `{"events": [{"event_id": "x\ud800", "type": "t", "user_id": "u"}, {"event_id": "x\ud801", "type": "t", "user_id": "u"},
		{"event_id": "x", "type": "t", "user_id": "u", "payload": {"note": "\ud83d\ude00"}}]}`
	var out struct {
		Results []evtOutcome `json:"results"`
	}
	e.do(http.MethodPost, "/v1/events/batch", svc, body).must(t, 200, &out)
	if len(out.Results) != 3 || out.Results[0].Status != "rejected" || out.Results[1].Status != "rejected" ||
		out.Results[2].Status != "processed" {
		t.Fatalf("results = %+v", out.Results)
	}
	for _, r := range out.Results[:2] {
		if r.EventID != "" {
			t.Errorf("a rejected id was echoed altered: %q", r.EventID)
		}
	}
	if ids := hostileEventIDs(t, e); len(ids) != 1 || !ids["x"] {
		t.Fatalf("stored events = %v", ids)
	}
}

// hostileBody returns base with the value at path replaced by text (a JSON value), or with a key
// text added when path ends in ".*".
func hostileBody(t *testing.T, base, path, text string) []byte {
	t.Helper()
	const mark = "\x01hostile\x01"
	dec := json.NewDecoder(strings.NewReader(base))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("base body: %v", err)
	}
	cur := &v
	segs := hostilePath(path)
	for i, s := range segs {
		last := i == len(segs)-1
		switch x := (*cur).(type) {
		case map[string]any:
			if last && s == "*" {
				x[mark] = 1
				break
			}
			if _, ok := x[s]; !ok {
				t.Fatalf("path %s: no key %q", path, s)
			}
			if last {
				x[s] = mark
				break
			}
			// Maps and slices share their contents, so an edit through a copy lands in v.
			next := x[s]
			cur = &next
		case []any:
			n, err := strconv.Atoi(s)
			if err != nil || n >= len(x) {
				t.Fatalf("path %s: no item %q", path, s)
			}
			if last {
				x[n] = mark
				break
			}
			cur = &x[n]
		default:
			t.Fatalf("path %s: %q is not inside a container", path, s)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	quoted, _ := json.Marshal(mark)
	return bytes.Replace(b, quoted, []byte(text), 1)
}

var hostileSegs = regexp.MustCompile(`[^.\[\]]+`)

// hostilePath splits "a.b[0].c" into a, b, 0, c.
func hostilePath(path string) []string { return hostileSegs.FindAllString(path, -1) }

// hostileRejected checks an error answer without stopping the test, returning its fields.
func hostileRejected(t *testing.T, what string, res *resp, status int, code string) (map[string]string, bool) {
	t.Helper()
	var eb struct {
		Error struct {
			Code   string            `json:"code"`
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	if res.Status != status || json.Unmarshal(res.Body, &eb) != nil || eb.Error.Code != code {
		t.Errorf("%s: %d %.300s, want %d %s", what, res.Status, res.Body, status, code)
		return nil, false
	}
	return eb.Error.Fields, true
}

// hostileNamed reports whether fields names path (for a new key, ".*", something inside the
// object); with ancestors, naming an object that holds path is enough.
func hostileNamed(fields map[string]string, path string, ancestors bool) bool {
	prefix, newKey := strings.CutSuffix(path, ".*")
	for k := range fields {
		switch {
		case k == path, newKey && strings.HasPrefix(k, prefix+"."):
			return true
		case ancestors && (k == prefix || strings.HasPrefix(prefix, k+".") || strings.HasPrefix(prefix, k+"[")):
			return true
		}
	}
	return false
}

// hostileSnapshot renders every row of the env's tenant in every table that has a tenant_id, so
// two snapshots differ exactly when something was written.
func hostileSnapshot(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	var tables []string
	// risk_signals is left out: every player request records where the caller was seen (§12),
	// whatever its answer; that is a sighting, not something the request wrote.
	const q = `SELECT table_name FROM information_schema.columns
		WHERE column_name = 'tenant_id' AND table_schema = current_schema() AND table_name <> 'risk_signals'
		ORDER BY table_name`
	if err := e.store.DB().SelectContext(ctx, &tables, q); err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(tables))
	for i, tb := range tables {
		parts[i] = fmt.Sprintf(`SELECT '%[1]s: ' || coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '') FROM %[1]s t WHERE tenant_id = $1`, tb)
	}
	var out string
	if err := e.store.DB().GetContext(ctx, &out, `SELECT string_agg(x, E'\n') FROM (`+strings.Join(parts, " UNION ALL ")+`) s(x)`, e.tenant); err != nil {
		t.Fatal(err)
	}
	return out
}

// hostileDiff shows the lines of after that before lacks.
func hostileDiff(before, after string) string {
	old := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		old[l] = true
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		if !old[l] {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// hostileEventIDs returns the ids of the env's tenant's stored events.
func hostileEventIDs(t *testing.T, e *env) map[string]bool {
	t.Helper()
	var ids []string
	if err := e.store.DB().SelectContext(context.Background(), &ids, `SELECT event_id FROM events WHERE tenant_id = $1`, e.tenant); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// TestHostileIdempotent checks that a hostile body under an Idempotency-Key is stored and
// replayed like any other 400 (its answer names the bad key, NUL included).
func TestHostileIdempotent(t *testing.T) {
	e := newEnv(t)
	body := `{"name": "c", "qualifying_event": "x", "qualifying_filter": {"a\u0000": 1, "b": "\ud800"}}`
	first := e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), body, "Idempotency-Key", "hostile-1")
	eb := first.fail(t, 400, "VALIDATION_FAILED")
	if eb.Error.Fields["qualifying_filter.a\x00"] == "" || eb.Error.Fields["qualifying_filter.b"] == "" {
		t.Fatalf("fields = %q", eb.Error.Fields)
	}
	again := e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), body, "Idempotency-Key", "hostile-1")
	again.fail(t, 400, "VALIDATION_FAILED")
	if again.Header.Get("Idempotent-Replay") != "true" || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("replay: %v %s", again.Header, again.Body)
	}
}
