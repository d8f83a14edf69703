package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// qryURLTemplate is the referral link template both gateways of a route test use.
const qryURLTemplate = "PHOENIX_REFERRAL_URL_TEMPLATE=https://play.example.com/join?ref={code}"

// qryShared starts the stack of one route test: gateways with a referral link template, the
// Query Gateway allowing 4 failed code attempts per window, so the limit is reached quickly.
func qryShared(t *testing.T) (*qryStack, *qryProc) {
	s := qryNewStack(t, qryURLTemplate)
	return s, s.startQuery("PHOENIX_CODE_ATTEMPT_LIMIT=4", qryURLTemplate)
}

// qryScenario builds, through the Admin Gateway, a tenant with a campaign, player codes,
// referrals, rewards, an affiliate hierarchy, tiers and commissions.
type qryScenario struct {
	*qryTenantEnv
	campaign, aliceCode, bobCode, partner, sub string
}

func qryBuildScenario(t *testing.T, s *qryStack, qg *qryProc) *qryScenario {
	e := s.tenant(qg)
	sc := &qryScenario{qryTenantEnv: e}
	var obj qryObj
	e.write("POST", "/v1/referral/campaigns", e.admin, map[string]any{
		"name": "Welcome", "qualifying_event": "deposit.completed",
		"referrer_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 100}}},
		"referee_rewards":  map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 50}}},
		"active":           true,
	}, &obj)
	sc.campaign = obj.ID
	e.write("POST", "/v1/referral/campaigns", e.admin, map[string]any{
		"name": "Dormant", "qualifying_event": "deposit.completed",
		"referrer_rewards": map[string]any{"wallet": []any{}}, "referee_rewards": map[string]any{"wallet": []any{}},
		"active": false,
	}, nil)
	var code struct {
		Code string `json:"code"`
	}
	e.write("POST", "/v1/referral/codes", e.player("alice"), map[string]any{"code": "alice-" + e.tenant[4:]}, &code)
	sc.aliceCode = code.Code
	e.write("POST", "/v1/referral/apply-code", e.player("bob"), map[string]any{"code": sc.aliceCode, "metadata": map[string]any{"source": "qr"}}, nil)
	e.write("POST", "/v1/referral/apply-code", e.player("erin"), map[string]any{"code": sc.aliceCode}, nil)
	e.write("POST", "/v1/events", e.svc, map[string]any{"event_id": "dep-bob-1", "type": "deposit.completed",
		"user_id": "bob", "payload": map[string]any{"amount": 5000}}, nil)
	e.write("POST", "/v1/referral/codes", e.player("bob"), map[string]any{"code": "bob-" + e.tenant[4:], "usage_limit": 1}, &code)
	sc.bobCode = code.Code

	// Affiliates: partner (with a tier ladder and a commission rule) and sub under it.
	e.write("POST", "/v1/affiliate/tiers", e.admin, map[string]any{"name": "Bronze", "commission_rate": 0.05,
		"min_referrals": 0, "min_referee_revenue": 0, "priority": 1}, nil)
	e.write("POST", "/v1/affiliate/tiers", e.admin, map[string]any{"name": "Silver", "commission_rate": 0.1,
		"min_referrals": 3, "min_referee_revenue": 0, "priority": 2}, nil)
	e.write("POST", "/v1/affiliate/commission-rules", e.admin, map[string]any{"name": "Deposits",
		"event_type": "deposit.completed", "use_tier_rate": true, "currency_id": "EUR"}, nil)
	e.write("POST", "/v1/affiliates", e.admin, map[string]any{"user_id": "partner", "affiliate_code": "P-" + e.tenant[4:], "status": "active"}, &obj)
	sc.partner = obj.ID
	e.write("POST", "/v1/affiliates", e.admin, map[string]any{"user_id": "sub", "status": "active"}, &obj)
	sc.sub = obj.ID
	e.write("PUT", "/v1/affiliates/"+sc.sub+"/hierarchy", e.admin, map[string]any{"parent_affiliate_id": sc.partner}, nil)
	e.write("POST", "/v1/referral/apply-code", e.player("carol"), map[string]any{"code": "P-" + e.tenant[4:]}, nil)
	e.write("POST", "/v1/events", e.svc, map[string]any{"event_id": "dep-carol-1", "type": "deposit.completed",
		"user_id": "carol", "payload": map[string]any{"amount": 10000}}, nil)
	return sc
}

// waitSynced waits until the Query Gateway has projected every write of the scenario.
func (sc *qryScenario) waitSynced(t *testing.T) {
	sc.s.waitProjected(t, 5*time.Second)
}

func TestQryRoutes(t *testing.T) {
	s, qg := qryShared(t)
	defer func() {
		if v, err := qryContract(); err == nil {
			t.Logf("operations of the OpenAPI document not exercised: %v", v.Uncovered())
		}
	}()
	sc := qryBuildScenario(t, s, qg)
	sc.waitSynced(t)
	alice, bob, partner := sc.player("alice"), sc.player("bob"), sc.player("partner")

	t.Run("campaigns", func(t *testing.T) {
		var got struct {
			Items []map[string]any `json:"items"`
		}
		sc.read("/v1/referral/campaigns", alice).must(t, 200, &got)
		if len(got.Items) != 1 || got.Items[0]["id"] != sc.campaign || got.Items[0]["name"] != "Welcome" {
			t.Fatalf("campaigns %+v", got.Items)
		}
		if _, ok := got.Items[0]["active"]; ok {
			t.Fatalf("campaign carries non-public fields: %v", got.Items[0])
		}
	})
	t.Run("codes", func(t *testing.T) {
		var got struct {
			Items []map[string]any `json:"items"`
		}
		sc.read("/v1/referral/codes", alice).must(t, 200, &got)
		if len(got.Items) != 1 || got.Items[0]["code"] != sc.aliceCode || got.Items[0]["uses"] != float64(2) ||
			got.Items[0]["referral_url"] != "https://play.example.com/join?ref="+sc.aliceCode {
			t.Fatalf("codes %+v", got.Items)
		}
		// The same object as the Admin Gateway's GET.
		admin := qryDo(t, "GET", "http://"+s.admin.addr+"/v1/referral/codes/"+got.Items[0]["id"].(string), sc.admin, nil)
		var want map[string]any
		admin.must(t, 200, &want)
		if fmt.Sprint(want) != fmt.Sprint(got.Items[0]) {
			t.Fatalf("query code %v\nadmin code %v", got.Items[0], want)
		}
	})
	t.Run("me", func(t *testing.T) {
		var got struct {
			UserID   string         `json:"user_id"`
			Referral map[string]any `json:"referral"`
		}
		sc.read("/v1/referral/me", bob).must(t, 200, &got)
		if got.UserID != "bob" || got.Referral["referrer_id"] != "alice" || got.Referral["status"] != "converted" {
			t.Fatalf("me %+v", got)
		}
		admin := qryDo(t, "GET", "http://"+s.admin.addr+"/v1/referral/referrals/"+got.Referral["id"].(string), sc.admin, nil)
		var want map[string]any
		admin.must(t, 200, &want)
		// The admin view adds the risk review (null here), which players never see (§12).
		if r, ok := want["review"]; !ok || r != nil {
			t.Fatalf("admin referral review %v, want null", r)
		}
		delete(want, "review")
		if fmt.Sprint(want) != fmt.Sprint(got.Referral) {
			t.Fatalf("query referral %v\nadmin referral %v", got.Referral, want)
		}
		sc.read("/v1/referral/me", alice).must(t, 200, &got)
		if got.Referral != nil {
			t.Fatalf("alice was referred? %+v", got)
		}
	})
	t.Run("referrals", func(t *testing.T) {
		var got struct {
			Items []map[string]any `json:"items"`
			Total int              `json:"total"`
			Limit int              `json:"limit"`
		}
		sc.read("/v1/referral/referrals", alice).must(t, 200, &got)
		if got.Total != 2 || len(got.Items) != 2 || got.Items[0]["referee_id"] != "erin" || got.Limit != 50 {
			t.Fatalf("referrals %+v", got)
		}
		sc.read("/v1/referral/referrals?status=converted", alice).must(t, 200, &got)
		if got.Total != 1 || got.Items[0]["referee_id"] != "bob" {
			t.Fatalf("converted %+v", got)
		}
		sc.read("/v1/referral/referrals?limit=1&offset=1", alice).must(t, 200, &got)
		if got.Total != 2 || len(got.Items) != 1 || got.Items[0]["referee_id"] != "bob" {
			t.Fatalf("page %+v", got)
		}
		sc.read("/v1/referral/referrals?status=bogus", alice).fail(t, 400, "VALIDATION_FAILED")
		sc.read("/v1/referral/referrals?limit=101", alice).fail(t, 400, "VALIDATION_FAILED")
		sc.read("/v1/referral/referrals?offset=-1", alice).fail(t, 400, "VALIDATION_FAILED")
	})
	t.Run("stats", func(t *testing.T) {
		var got map[string]any
		sc.read("/v1/referral/stats", alice).must(t, 200, &got)
		want := `map[conversion_rate:50 impressions:0 milestones:[] pending_referrals:1 period:30d rejected_referrals:0 rewards:[map[amount:100 currency_id:points]] successful_referrals:1 total_referrals:2]`
		if fmt.Sprint(got) != want {
			t.Fatalf("stats %v\nwant %v", got, want)
		}
		sc.read("/v1/referral/stats?period=7d", alice).must(t, 200, &got)
		if got["period"] != "7d" || got["total_referrals"] != float64(2) {
			t.Fatalf("7d %v", got)
		}
		sc.read("/v1/referral/stats?period=1y", alice).fail(t, 400, "VALIDATION_FAILED")
	})
	t.Run("rewards", func(t *testing.T) {
		var got struct {
			Items []map[string]any `json:"items"`
			Total int              `json:"total"`
		}
		sc.read("/v1/referral/rewards", bob).must(t, 200, &got)
		if got.Total != 1 || got.Items[0]["amount"] != float64(50) || got.Items[0]["role"] != "referee" {
			t.Fatalf("rewards %+v", got)
		}
		sc.read("/v1/referral/rewards?limit=x", bob).fail(t, 400, "VALIDATION_FAILED")
	})
	t.Run("leaderboard", func(t *testing.T) {
		var got struct {
			Period string           `json:"period"`
			Items  []map[string]any `json:"items"`
			Me     map[string]any   `json:"me"`
		}
		sc.read("/v1/referral/leaderboard", partner).must(t, 200, &got)
		// alice: 1 successful of 2; partner: 1 successful (carol converted) of 1.
		if len(got.Items) != 2 || got.Items[0]["user_id"] != "alice" || got.Items[1]["user_id"] != "partner" ||
			got.Me["rank"] != float64(2) {
			t.Fatalf("leaderboard %+v", got)
		}
		sc.read("/v1/referral/leaderboard?limit=1&period=all", bob).must(t, 200, &got)
		if len(got.Items) != 1 || got.Me != nil || got.Period != "all" {
			t.Fatalf("limited %+v", got)
		}
		sc.read("/v1/referral/leaderboard?limit=0", bob).fail(t, 400, "VALIDATION_FAILED")
	})
	t.Run("affiliate", func(t *testing.T) {
		var me map[string]any
		sc.read("/v1/affiliate/me", partner).must(t, 200, &me)
		tier, _ := me["tier"].(map[string]any)
		next, _ := me["next_tier"].(map[string]any)
		if me["id"] != sc.partner || tier["name"] != "Bronze" || me["tier_id"] != tier["id"] ||
			next["name"] != "Silver" || next["remaining_referrals"] != float64(2) || me["converted_referrals"] != float64(1) {
			t.Fatalf("affiliate me %v", me)
		}
		var admin map[string]any
		qryDo(t, "GET", "http://"+s.admin.addr+"/v1/affiliates/"+sc.partner, sc.admin, nil).must(t, 200, &admin)
		for k, v := range admin {
			if fmt.Sprint(me[k]) != fmt.Sprint(v) {
				t.Fatalf("field %s: query %v admin %v", k, me[k], v)
			}
		}
		sc.read("/v1/affiliate/me", alice).fail(t, 404, "NOT_AN_AFFILIATE")
		sc.read("/v1/affiliate/stats", alice).fail(t, 404, "NOT_AN_AFFILIATE")
		sc.read("/v1/affiliate/downline", alice).fail(t, 404, "NOT_AN_AFFILIATE")

		var dl struct {
			Items []map[string]any `json:"items"`
			Total int              `json:"total"`
		}
		sc.read("/v1/affiliate/downline?depth=3", partner).must(t, 200, &dl)
		if dl.Total != 1 || dl.Items[0]["id"] != sc.sub || dl.Items[0]["level"] != float64(1) {
			t.Fatalf("downline %+v", dl)
		}
		sc.read("/v1/affiliate/downline?depth=51", partner).fail(t, 400, "VALIDATION_FAILED")

		var cm struct {
			Items []map[string]any `json:"items"`
			Total int              `json:"total"`
		}
		sc.read("/v1/affiliate/commissions", partner).must(t, 200, &cm)
		if cm.Total != 1 || cm.Items[0]["amount"] != float64(500) || cm.Items[0]["rate"] != 0.05 {
			t.Fatalf("commissions %+v", cm)
		}
		var st map[string]any
		sc.read("/v1/affiliate/stats?period=all", partner).must(t, 200, &st)
		want := `map[by_level:[map[amount:500 currency_id:EUR level:0]] commissions:[map[amount:500 currency_id:EUR]] converted_referrals:1 downline_size:1 period:all referee_revenue:10000]`
		if fmt.Sprint(st) != want {
			t.Fatalf("affiliate stats %v\nwant %v", st, want)
		}
		var tiers struct {
			Items []map[string]any `json:"items"`
		}
		sc.read("/v1/affiliate/tiers", alice).must(t, 200, &tiers)
		if len(tiers.Items) != 2 || tiers.Items[0]["name"] != "Silver" {
			t.Fatalf("tiers %+v", tiers)
		}
	})
	t.Run("etag", func(t *testing.T) {
		r := sc.read("/v1/referral/stats", alice)
		etag := r.Header.Get("ETag")
		if r.Status != 200 || etag == "" {
			t.Fatalf("no etag: %d %v", r.Status, r.Header)
		}
		if r2 := sc.read("/v1/referral/stats", alice, "If-None-Match", etag); r2.Status != 304 || len(r2.Body) != 0 {
			t.Fatalf("If-None-Match: %d %s", r2.Status, r2.Body)
		}
		if r3 := sc.read("/v1/referral/stats", alice, "If-None-Match", `"other"`); r3.Status != 200 {
			t.Fatalf("other etag: %d", r3.Status)
		}
	})
	t.Run("auth", func(t *testing.T) {
		sc.read("/v1/referral/codes", "").fail(t, 401, "UNAUTHORIZED")
		sc.read("/v1/referral/codes", "garbage").fail(t, 401, "UNAUTHORIZED")
		sc.read("/v1/referral/codes", sc.admin).fail(t, 403, "FORBIDDEN")
		sc.read("/v1/affiliate/me", sc.svc).fail(t, 403, "FORBIDDEN")
		sc.read("/v1/referral/codes?tenant_id=other", alice).fail(t, 403, "FORBIDDEN")
	})
	t.Run("not found", func(t *testing.T) {
		base := "http://" + qg.addr
		for _, c := range []struct{ method, path string }{
			{"POST", "/v1/referral/codes"}, {"POST", "/v1/referral/apply-code"}, {"GET", "/v1/referral/apply-code"},
			{"DELETE", "/v1/referral/codes"}, {"PUT", "/v1/referral/stats"}, {"GET", "/v1/affiliates"},
			{"POST", "/v1/affiliates"}, {"GET", "/v1/referral/campaigns/" + sc.campaign}, {"POST", "/v1/events"},
			{"GET", "/v1/nothing"}, {"GET", "/"}, {"PATCH", "/v1/affiliate/me"},
		} {
			r := qryDo(t, c.method, base+c.path, alice, nil)
			r.fail(t, 404, "NOT_FOUND")
			qryCheckContract(t, r)
		}
	})
	t.Run("operations", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics"} {
			sc.read(path, "").must(t, 200, nil)
		}
		if body := string(sc.read("/metrics", "").Body); !strings.Contains(body, "phoenix_projector_leader 1") ||
			!strings.Contains(body, "phoenix_projector_changes_applied_total") || !strings.Contains(body, "phoenix_query_fallback_reads_total") {
			t.Fatalf("metrics missing: %s", qryTail(body, 2000))
		}
	})
	t.Run("owner change and delete", func(t *testing.T) {
		// A code moved to another owner leaves the old owner's list; a deleted code leaves every
		// read (the projector remembers whom an entity touched last time).
		var promo qryObj
		code := "MOVE-" + sc.tenant[4:]
		sc.write("POST", "/v1/referral/codes", sc.admin, map[string]any{"code": code, "owner_user_id": "olga"}, &promo)
		s.waitProjected(t, 3*time.Second)
		if err := qryContains(sc.read("/v1/referral/codes", sc.player("olga")).Body, strings.ToUpper(code)); err != nil {
			t.Fatal(err)
		}
		sc.write("PUT", "/v1/referral/codes/"+promo.ID, sc.admin, map[string]any{"code": code, "owner_user_id": "pete"}, nil)
		s.waitProjected(t, 3*time.Second)
		if body := sc.read("/v1/referral/codes", sc.player("olga")).Body; strings.Contains(string(body), strings.ToUpper(code)) {
			t.Fatalf("old owner still lists the code: %s", body)
		}
		if err := qryContains(sc.read("/v1/referral/codes", sc.player("pete")).Body, strings.ToUpper(code)); err != nil {
			t.Fatal(err)
		}
		qryDo(t, "DELETE", "http://"+s.admin.addr+"/v1/referral/codes/"+promo.ID, sc.admin, nil).must(t, 204, nil)
		s.waitProjected(t, 3*time.Second)
		if body := sc.read("/v1/referral/codes", sc.player("pete")).Body; strings.Contains(string(body), strings.ToUpper(code)) {
			t.Fatalf("deleted code still listed: %s", body)
		}
		if err := qryContains(sc.read("/v1/referral/validate/"+code, sc.player("quinn")).Body, "CODE_NOT_FOUND"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("validate", func(t *testing.T) {
		type vres struct {
			Valid      bool             `json:"valid"`
			Code       string           `json:"code"`
			Reason     *string          `json:"reason"`
			ReferrerID *string          `json:"referrer_id"`
			Campaigns  []map[string]any `json:"campaigns"`
		}
		check := func(token, code, reason string) vres {
			t.Helper()
			var v vres
			path := "/v1/referral/validate/" + code
			if token == "" {
				path += "?tenant_id=" + sc.tenant
			}
			sc.read(path, token).must(t, 200, &v)
			got := ""
			if v.Reason != nil {
				got = *v.Reason
			}
			if got != reason || v.Valid != (reason == "") {
				t.Fatalf("validate %s: reason %q valid %v, want %q", code, got, v.Valid, reason)
			}
			return v
		}
		v := check(sc.player("dave"), strings.ToLower(sc.aliceCode), "")
		if v.Code != sc.aliceCode || *v.ReferrerID != "alice" || len(v.Campaigns) != 1 || v.Campaigns[0]["id"] != sc.campaign {
			t.Fatalf("valid %+v", v)
		}
		check(alice, sc.aliceCode, "SELF_REFERRAL")
		check(bob, sc.aliceCode, "ALREADY_REFERRED")
		check(alice, sc.bobCode, "REFERRAL_CYCLE")
		check(sc.player("frank"), sc.bobCode, "")
		sc.write("POST", "/v1/referral/apply-code", sc.player("gina"), map[string]any{"code": sc.bobCode}, nil)
		qryEventually(t, 3*time.Second, func() error {
			r := sc.read("/v1/referral/validate/"+sc.bobCode, sc.player("frank"))
			return qryContains(r.Body, "CODE_EXHAUSTED")
		})
		check("", sc.bobCode, "CODE_EXHAUSTED")
		check("", sc.aliceCode, "")

		// Inactive and expired codes; CODE_NOT_FOUND. These count as failed attempts.
		var promo struct {
			ID   string `json:"id"`
			Code string `json:"code"`
		}
		sc.write("POST", "/v1/referral/codes", sc.admin, map[string]any{"code": "OFF-" + sc.tenant[4:], "active": false}, &promo)
		if _, err := s.db.Exec(`UPDATE referral_codes SET expires_at = now() - interval '1 hour' WHERE code = $1 AND tenant_id = $2`, sc.bobCode, sc.tenant); err != nil {
			t.Fatal(err)
		}
		henry := sc.player("henry")
		qryEventually(t, 3*time.Second, func() error {
			return qryContains(sc.read("/v1/referral/validate/"+promo.Code, sc.player("ivy")).Body, "CODE_INACTIVE")
		})
		qryEventually(t, 3*time.Second, func() error {
			return qryContains(sc.read("/v1/referral/validate/"+sc.bobCode, sc.player("ivy")).Body, "CODE_EXPIRED")
		})
		check(henry, promo.Code, "CODE_INACTIVE")
		check(henry, sc.bobCode, "CODE_EXPIRED")
		check(henry, "NOPE-"+sc.tenant[4:], "CODE_NOT_FOUND")
		check(henry, "x", "CODE_NOT_FOUND")
		// The shared gateway allows 4 failures per window: henry is now limited, others are not.
		r := sc.read("/v1/referral/validate/"+sc.aliceCode, henry)
		r.fail(t, 429, "RATE_LIMITED")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		check(sc.player("judy"), sc.aliceCode, "")

		// Visitors: tenant required; limited per client address.
		sc.read("/v1/referral/validate/"+sc.aliceCode, "").fail(t, 400, "TENANT_REQUIRED")
		sc.read("/v1/referral/validate/"+sc.aliceCode+"?tenant_id=bad%20id", "").fail(t, 400, "VALIDATION_FAILED")
		for i := 0; i < 4; i++ {
			check("", fmt.Sprintf("GUESS%d", i), "CODE_NOT_FOUND")
		}
		sc.read("/v1/referral/validate/"+sc.aliceCode+"?tenant_id="+sc.tenant, "").fail(t, 429, "RATE_LIMITED")
	})
}

// TestQryTenantIsolation: the same user ids in two tenants see only their own tenant's data.
func TestQryTenantIsolation(t *testing.T) {
	s, qg := qryShared(t)
	a := qryBuildScenario(t, s, qg)
	b := s.tenant(qg)
	a.waitSynced(t)
	b.write("POST", "/v1/referral/codes", b.player("alice"), map[string]any{"code": "B-" + b.tenant[4:]}, nil)
	qryEventually(t, 3*time.Second, func() error {
		return qryContains(b.read("/v1/referral/codes", b.player("alice")).Body, "B-"+strings.ToUpper(b.tenant[4:]))
	})
	for _, path := range []string{"/v1/referral/codes", "/v1/referral/referrals", "/v1/referral/rewards",
		"/v1/referral/campaigns", "/v1/referral/leaderboard", "/v1/affiliate/tiers", "/v1/referral/stats"} {
		body := string(b.read(path, b.player("alice")).Body)
		for _, leak := range []string{a.tenant, a.aliceCode, a.campaign, "Bronze", `"bob"`, "points"} {
			if strings.Contains(body, leak) {
				t.Fatalf("%s in tenant B shows %q: %s", path, leak, body)
			}
		}
	}
	b.read("/v1/affiliate/me", b.player("partner")).fail(t, 404, "NOT_AN_AFFILIATE")
	b.read("/v1/affiliate/balance", b.player("partner")).fail(t, 404, "NOT_AN_AFFILIATE")
	b.read("/v1/affiliate/payouts", b.player("partner")).fail(t, 404, "NOT_AN_AFFILIATE")
	var v struct {
		Reason string `json:"reason"`
	}
	b.read("/v1/referral/validate/"+a.aliceCode, b.player("dave")).must(t, 200, &v)
	if v.Reason != "CODE_NOT_FOUND" {
		t.Fatalf("tenant A's code validated in tenant B: %+v", v)
	}
	// A token of tenant B cannot read tenant A by asking for it.
	b.read("/v1/referral/codes?tenant_id="+a.tenant, b.player("alice")).fail(t, 403, "FORBIDDEN")
}
