package adminapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
	"github.com/phoenix-referral/phoenix/pkg/web/contract"
)

// oasDo sends a request through the harness and checks the exchange against the Admin
// Gateway's OpenAPI document.
func oasDo(t *testing.T, e *env, v *contract.Validator, method, path, token string, body any, headers ...string) *resp {
	t.Helper()
	r := e.do(method, path, token, body, headers...)
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		raw = j
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	v.Check(t, req, raw, r.Status, r.Header, r.Body)
	return r
}

// TestOASAdminContract walks every Admin Gateway route — successes and the main error answers —
// and checks each exchange against the document, then reports the operations it did not reach.
func TestOASAdminContract(t *testing.T) {
	e := newEnv(t)
	// The gateway's own wiring of /openapi.json belongs to cmd/admin-gateway; serve it here too so
	// that every documented operation is exercised.
	if err := web.ServeOpenAPI(e.srv.Config.Handler.(*echo.Echo), adminapi.OpenAPI); err != nil {
		t.Fatal(err)
	}
	v := contract.New(t, adminapi.OpenAPI)
	admin, svc := e.admin(), e.token(auth.RoleService, "svc")
	alice, bob, carol := e.token(auth.RolePlayer, "alice"), e.token(auth.RolePlayer, "bob"), e.token(auth.RolePlayer, "carol")
	do := func(method, path, token string, body any, headers ...string) *resp {
		t.Helper()
		return oasDo(t, e, v, method, path, token, body, headers...)
	}
	id := func(r *resp) string {
		t.Helper()
		return r.obj(t)["id"].(string)
	}
	missing := "/00000000-0000-4000-8000-000000000000"

	// Operations.
	do("GET", "/healthz", "", nil).must(t, 200, nil)
	do("GET", "/readyz", "", nil).must(t, 200, nil)
	do("GET", "/metrics", "", nil).must(t, 200, nil)
	do("GET", "/openapi.json", "", nil).must(t, 200, nil)

	// Campaigns.
	camp := id(do("POST", "/v1/referral/campaigns", admin, map[string]any{
		"name": "Welcome", "qualifying_event": "deposit.completed",
		"qualifying_filter": map[string]any{"amount": map[string]any{"gte": 1000}},
		"referrer_rewards":  map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 100}}},
		"referee_rewards":   map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 50}}},
		"starts_at":         "2020-01-01T00:00:00Z",
	}).must(t, 200, nil))
	instant := id(do("POST", "/v1/referral/campaigns", admin, map[string]any{
		"name": "Instant", "qualifying_event": "referral.applied",
		"referee_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "coins", "amount": 5}}},
	}, "Idempotency-Key", "oas-camp-1").must(t, 200, nil))
	do("POST", "/v1/referral/campaigns", admin, map[string]any{
		"name": "Instant", "qualifying_event": "referral.applied",
		"referee_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "coins", "amount": 5}}},
	}, "Idempotency-Key", "oas-camp-1").must(t, 200, nil)
	do("POST", "/v1/referral/campaigns", admin, map[string]any{"name": "x"}, "Idempotency-Key", "oas-camp-1").fail(t, 409, "IDEMPOTENCY_KEY_REUSED")
	do("GET", "/v1/referral/campaigns?active=true&limit=10", admin, nil).must(t, 200, nil)
	got := do("GET", "/v1/referral/campaigns/"+camp, admin, nil).must(t, 200, nil).obj(t)
	got["name"] = "Welcome 2"
	do("PUT", "/v1/referral/campaigns/"+camp, admin, got).must(t, 200, nil)
	do("POST", "/v1/referral/campaigns", admin, `{"name":`).fail(t, 400, "INVALID_JSON")
	do("POST", "/v1/referral/campaigns", admin, map[string]any{"name": "x", "qualifying_event": "A B", "id": "x"}).fail(t, 400, "VALIDATION_FAILED")
	do("POST", "/v1/referral/campaigns", admin, strings.Repeat(" ", 1<<20+10)).fail(t, 413, "BODY_TOO_LARGE")
	do("GET", "/v1/referral/campaigns", "", nil).fail(t, 401, "UNAUTHORIZED")
	do("GET", "/v1/referral/campaigns", alice, nil).fail(t, 403, "FORBIDDEN")
	do("GET", "/v1/referral/campaigns", e.tokenFor(auth.Principal{UserID: "root", Role: auth.RoleSuperAdmin}), nil).fail(t, 400, "TENANT_REQUIRED")
	do("GET", "/v1/referral/campaigns"+missing, admin, nil).fail(t, 404, "NOT_FOUND")
	do("GET", "/v1/referral/campaigns/not-a-uuid", admin, nil).fail(t, 404, "NOT_FOUND")
	do("PATCH", "/v1/referral/campaigns/"+camp, admin, map[string]any{}).fail(t, 405, "METHOD_NOT_ALLOWED")
	do("GET", "/v1/nowhere", admin, nil).fail(t, 404, "NOT_FOUND")

	// Codes.
	aliceCode := do("POST", "/v1/referral/codes", alice, map[string]any{"code": "alice2026", "usage_limit": 100}).must(t, 200, nil).obj(t)
	do("POST", "/v1/referral/codes", alice, map[string]any{}).must(t, 200, nil)
	promo := id(do("POST", "/v1/referral/codes", admin, map[string]any{"code": "PROMO1", "campaign_id": instant, "owner_user_id": nil, "active": true}).must(t, 200, nil))
	do("POST", "/v1/referral/codes", bob, map[string]any{"code": "ALICE2026"}).fail(t, 409, "CODE_TAKEN")
	do("GET", "/v1/referral/codes?owner_user_id=alice&active=true", admin, nil).must(t, 200, nil)
	do("GET", "/v1/referral/codes/"+promo, admin, nil).must(t, 200, nil)
	pc := do("GET", "/v1/referral/codes/"+promo, admin, nil).must(t, 200, nil).obj(t)
	pc["usage_limit"] = 5
	do("PUT", "/v1/referral/codes/"+promo, admin, pc).must(t, 200, nil)
	do("PATCH", "/v1/referral/codes/"+promo, admin, map[string]any{"expires_at": nil, "usage_limit": nil}).must(t, 200, nil)
	do("PATCH", "/v1/referral/codes/"+promo, admin, map[string]any{"uses": 3}).fail(t, 400, "VALIDATION_FAILED")

	// Impressions: a visitor's and the service's; other roles are refused.
	scan := do("POST", "/v1/referral/impressions?tenant_id="+e.tenant, "", map[string]any{"code": "alice2026", "source": "poster_qr_code"}).must(t, 200, nil).obj(t)
	do("POST", "/v1/referral/impressions", svc, map[string]any{"code": "NOPE-NOPE", "metadata": map[string]any{"page": "/join"}}).must(t, 200, nil)
	do("POST", "/v1/referral/impressions", alice, map[string]any{"code": "ALICE2026"}).fail(t, 403, "FORBIDDEN")
	do("POST", "/v1/referral/impressions", "", map[string]any{"code": "ALICE2026"}).fail(t, 400, "TENANT_REQUIRED")
	do("POST", "/v1/referral/impressions?tenant_id="+e.tenant, "", map[string]any{"code": "ALICE2026", "source": "Not A Source"}).fail(t, 400, "VALIDATION_FAILED")

	// Apply-code and referrals.
	applied := do("POST", "/v1/referral/apply-code", bob, map[string]any{"code": "alice2026", "metadata": map[string]any{"source": "qr"},
		"impression_id": scan["impression_id"]}).must(t, 200, nil).obj(t)
	if applied["impression_id"] != scan["impression_id"] {
		t.Errorf("apply-code linked %v, want the impression %v", applied["impression_id"], scan["impression_id"])
	}
	ref := applied["id"].(string)
	do("POST", "/v1/referral/apply-code", bob, map[string]any{"code": "PROMO1"}).fail(t, 409, "ALREADY_REFERRED")
	do("POST", "/v1/referral/apply-code", carol, map[string]any{"code": "NOPE-NOPE"}).fail(t, 404, "CODE_NOT_FOUND")
	do("POST", "/v1/referral/apply-code", alice, map[string]any{"code": "ALICE2026"}).fail(t, 422, "SELF_REFERRAL")
	do("POST", "/v1/referral/apply-code", carol, map[string]any{"code": "PROMO1"}).must(t, 200, nil)
	do("GET", "/v1/referral/codes/"+aliceCode["id"].(string)+"/stats?limit=5", admin, nil).must(t, 200, nil)
	do("GET", "/v1/referral/referrals?referrer_id=alice&status=pending&created_from=2020-01-01T00:00:00Z", admin, nil).must(t, 200, nil)
	do("GET", "/v1/referral/referrals?status=bogus", admin, nil).fail(t, 400, "VALIDATION_FAILED")
	do("GET", "/v1/referral/referrals/"+ref, admin, nil).must(t, 200, nil)
	do("POST", "/v1/events", svc, map[string]any{"event_id": "dep_1", "type": "deposit.completed", "user_id": "bob",
		"payload": map[string]any{"amount": 5000, "currency": "EUR"}}).must(t, 200, nil)
	do("PUT", "/v1/referral/referrals/"+ref+"/status", admin, map[string]any{"status": "verified"}).must(t, 200, nil)
	do("PUT", "/v1/referral/referrals/"+ref+"/status", admin, map[string]any{"status": "verified"}).fail(t, 409, "INVALID_TRANSITION")
	do("GET", "/v1/referral/stats?period=7d", admin, nil).must(t, 200, nil)
	do("GET", "/v1/referral/stats?period=1y", admin, nil).fail(t, 400, "VALIDATION_FAILED")
	do("GET", "/v1/referral/funnel?period=all&code=alice2026", admin, nil).must(t, 200, nil)
	do("GET", "/v1/referral/funnel?code=no%20such", admin, nil).fail(t, 400, "VALIDATION_FAILED")
	do("GET", "/v1/referral/leaderboard?period=all&limit=3", admin, nil).must(t, 200, nil)
	do("GET", "/v1/referral/rewards?user_id=bob&order=asc", admin, nil).must(t, 200, nil)

	// Tiers, rules, affiliates, hierarchy.
	tier := id(do("POST", "/v1/affiliate/tiers", admin, map[string]any{"name": "Gold", "commission_rate": 0.15, "min_referrals": 1, "priority": 2}).must(t, 200, nil))
	do("GET", "/v1/affiliate/tiers", admin, nil).must(t, 200, nil)
	tg := do("GET", "/v1/affiliate/tiers/"+tier, admin, nil).must(t, 200, nil).obj(t)
	tg["priority"] = 3
	do("PUT", "/v1/affiliate/tiers/"+tier, admin, tg).must(t, 200, nil)
	rule := id(do("POST", "/v1/affiliate/commission-rules", admin, map[string]any{"name": "Deposits", "event_type": "deposit.completed",
		"event_filter": map[string]any{"currency": "EUR"}, "use_tier_rate": false, "custom_rate": 0.1, "currency_id": "EUR"}).must(t, 200, nil))
	do("GET", "/v1/affiliate/commission-rules?active=true", admin, nil).must(t, 200, nil)
	rg := do("GET", "/v1/affiliate/commission-rules/"+rule, admin, nil).must(t, 200, nil).obj(t)
	rg["name"] = "Deposits EUR"
	do("PUT", "/v1/affiliate/commission-rules/"+rule, admin, rg).must(t, 200, nil)
	do("GET", "/v1/affiliate/hierarchy", admin, nil).fail(t, 404, "NOT_FOUND")
	do("PUT", "/v1/affiliate/hierarchy", admin, map[string]any{"max_depth": 2, "level_rates": []any{0.05, 0.02}}).must(t, 200, nil)
	do("GET", "/v1/affiliate/hierarchy", admin, nil).must(t, 200, nil)
	do("GET", "/v1/affiliate/hierarchy-config", admin, nil).must(t, 200, nil)
	do("PUT", "/v1/affiliate/hierarchy-config", admin, map[string]any{"max_depth": 1, "level_rates": []any{0.05}, "active": true}).must(t, 200, nil)
	do("POST", "/v1/affiliate/hierarchy", admin, map[string]any{}).fail(t, 405, "METHOD_NOT_ALLOWED")
	root := id(do("POST", "/v1/affiliates", admin, map[string]any{"user_id": "partner_root", "status": "active"}).must(t, 200, nil))
	child := id(do("POST", "/v1/affiliates", admin, map[string]any{"user_id": "partner_child", "affiliate_code": "CHILD01", "tier_override_id": tier}).must(t, 200, nil))
	do("POST", "/v1/affiliates", admin, map[string]any{"user_id": "partner_child"}).fail(t, 409, "AFFILIATE_EXISTS")
	do("GET", "/v1/affiliates?status=active", admin, nil).must(t, 200, nil)
	ag := do("GET", "/v1/affiliates/"+child, admin, nil).must(t, 200, nil).obj(t)
	ag["status"] = "active"
	do("PUT", "/v1/affiliates/"+child, admin, ag).must(t, 200, nil)
	do("PUT", "/v1/affiliates/"+child+"/hierarchy", admin, map[string]any{"parent_affiliate_id": root}).must(t, 200, nil)
	do("PUT", "/v1/affiliates/"+root+"/hierarchy", admin, map[string]any{"parent_affiliate_id": child}).fail(t, 422, "HIERARCHY_CYCLE")
	do("PUT", "/v1/affiliates/"+child+"/parent", admin, map[string]any{"parent_affiliate_id": root}).must(t, 200, nil)
	do("GET", "/v1/affiliates/"+root+"/downline?depth=2", admin, nil).must(t, 200, nil)
	do("DELETE", "/v1/affiliates/"+child+"/hierarchy", admin, nil).must(t, 204, nil)

	// Events, dry runs and ledgers.
	do("POST", "/v1/events", svc, map[string]any{"event_id": "dep_1", "type": "deposit.completed", "user_id": "bob"}).must(t, 200, nil)
	do("POST", "/v1/events/batch", svc, map[string]any{"events": []any{
		map[string]any{"event_id": "dep_2", "type": "deposit.completed", "user_id": "carol", "payload": map[string]any{"amount": 10}},
		map[string]any{"event_id": "dep_3", "type": "NOT VALID", "user_id": "carol"},
	}}).must(t, 200, nil)
	do("POST", "/v1/affiliate/simulate", admin, map[string]any{"event_id": "sim_1", "type": "deposit.completed", "user_id": "bob",
		"payload": map[string]any{"amount": 5000, "currency": "EUR"}}).must(t, 200, nil)
	do("POST", "/v1/events", alice, map[string]any{"event_id": "x", "type": "t", "user_id": "u"}).fail(t, 403, "FORBIDDEN")
	do("GET", "/v1/affiliate/commissions?level=0&order=asc", admin, nil).must(t, 200, nil)

	// Reversals, hold and payouts.
	paula := e.token(auth.RolePlayer, "paula")
	do("GET", "/v1/affiliate/payout-policy", admin, nil).must(t, 200, nil)
	do("PUT", "/v1/affiliate/payout-policy", admin, map[string]any{"hold_days": 0,
		"minimum_payout": []any{map[string]any{"currency_id": "EUR", "amount": 1}}}).must(t, 200, nil)
	payee := id(do("POST", "/v1/affiliates", admin, map[string]any{"user_id": "payee", "affiliate_code": "PAYEE01", "status": "active"}).must(t, 200, nil))
	do("POST", "/v1/referral/apply-code", paula, map[string]any{"code": "PAYEE01"}).must(t, 200, nil)
	for _, ev := range []map[string]any{
		{"event_id": "dep_pay", "type": "deposit.completed", "user_id": "paula", "payload": map[string]any{"amount": 10000, "currency": "EUR"}},
		{"event_id": "dep_pay2", "type": "deposit.completed", "user_id": "paula", "payload": map[string]any{"amount": 4000, "currency": "EUR"}},
		{"event_id": "ref_pay", "type": "deposit.refunded", "user_id": "paula", "reverses": "dep_pay", "reverse_amount": 2500},
	} {
		do("POST", "/v1/events", svc, ev).must(t, 200, nil)
	}
	do("POST", "/v1/events", svc, map[string]any{"event_id": "ref_pay_x", "type": "deposit.refunded", "user_id": "paula",
		"reverses": "dep_pay", "reverse_amount": 7501}).fail(t, 422, "NOT_REVERSIBLE")
	do("POST", "/v1/affiliate/simulate", admin, map[string]any{"event_id": "ref_pay_y", "type": "deposit.refunded", "user_id": "paula",
		"reverses": "nope"}).fail(t, 404, "NOT_FOUND")
	var second struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	do("GET", "/v1/affiliate/commissions?event_id=dep_pay2&state=available", admin, nil).must(t, 200, &second)
	if len(second.Items) != 1 {
		t.Fatalf("commissions of dep_pay2: %+v", second)
	}
	do("POST", "/v1/affiliate/commissions/"+second.Items[0].ID+"/reverse", admin, map[string]any{"reason": "declined"}).must(t, 200, nil)
	do("POST", "/v1/affiliate/commissions/"+second.Items[0].ID+"/reverse", admin, map[string]any{}).fail(t, 422, "NOT_REVERSIBLE")
	run := do("POST", "/v1/affiliate/payouts", admin, map[string]any{"currency_id": "EUR", "affiliate_ids": []string{payee}}).must(t, 200, nil).obj(t)
	payout := run["items"].([]any)[0].(map[string]any)["id"].(string)
	do("GET", "/v1/affiliate/payouts?affiliate_id="+payee+"&status=pending&currency_id=EUR", admin, nil).must(t, 200, nil)
	do("GET", "/v1/affiliate/payouts/"+payout, admin, nil).must(t, 200, nil)
	do("GET", "/v1/affiliate/commissions?payout_id="+payout, admin, nil).must(t, 200, nil)
	do("PUT", "/v1/affiliate/payouts/"+payout+"/status", admin, map[string]any{"status": "paid", "reference": "SEPA-1"}).must(t, 200, nil)
	do("PUT", "/v1/affiliate/payouts/"+payout+"/status", admin, map[string]any{"status": "failed"}).fail(t, 409, "INVALID_TRANSITION")
	do("GET", "/v1/affiliates/"+payee+"/balance", admin, nil).must(t, 200, nil)

	// Risk: policy, signals, a held apply, its review and a rejected apply (§12). The harness's
	// players all call from the loopback address, so same_address matches between them.
	do("GET", "/v1/referral/risk-policy", admin, nil).must(t, 200, nil)
	do("PUT", "/v1/referral/risk-policy", admin, map[string]any{"same_address": "hold",
		"velocity": map[string]any{"max_referrals": 100, "per_hours": 24, "action": "reject"}}).must(t, 200, nil)
	do("PUT", "/v1/referral/risk-policy", admin, map[string]any{"same_device": "block"}).fail(t, 400, "VALIDATION_FAILED")
	do("POST", "/v1/referral/signals", svc, map[string]any{"user_id": "dave", "address": "203.0.113.9", "device_id": "dev-1"}).must(t, 200, nil)
	do("POST", "/v1/referral/signals", svc, map[string]any{"user_id": "dave"}).fail(t, 400, "VALIDATION_FAILED")
	held := id(do("POST", "/v1/referral/apply-code", e.token(auth.RolePlayer, "dave"), map[string]any{"code": "ALICE2026"}).must(t, 200, nil))
	do("GET", "/v1/referral/referrals?review=held", admin, nil).must(t, 200, nil)
	do("PUT", "/v1/referral/referrals/"+held+"/review", admin, map[string]any{"decision": "maybe"}).fail(t, 400, "VALIDATION_FAILED")
	do("PUT", "/v1/referral/referrals/"+held+"/review", admin, map[string]any{"decision": "approve", "note": "checked"}).must(t, 200, nil)
	do("PUT", "/v1/referral/referrals/"+held+"/review", admin, map[string]any{"decision": "approve"}).fail(t, 409, "INVALID_TRANSITION")
	do("PUT", "/v1/referral/referrals"+missing+"/review", admin, map[string]any{"decision": "reject"}).fail(t, 404, "NOT_FOUND")
	do("PUT", "/v1/referral/risk-policy", admin, map[string]any{"same_address": "reject"}).must(t, 200, nil)
	do("POST", "/v1/referral/apply-code", e.token(auth.RolePlayer, "erin"), map[string]any{"code": "ALICE2026"}).fail(t, 422, "RISK_REJECTED")

	// Outbound events: the feed, webhook endpoints and deliveries.
	do("GET", "/v1/outbox?limit=5&types=affiliate.created", svc, nil).must(t, 200, nil)
	do("GET", "/v1/outbox?after=nonsense", svc, nil).fail(t, 400, "VALIDATION_FAILED")
	hook := id(do("POST", "/v1/webhooks/endpoints", admin, map[string]any{"url": "https://wallet.example.com/hook"}).must(t, 200, nil))
	do("GET", "/v1/webhooks/endpoints", admin, nil).must(t, 200, nil)
	do("GET", "/v1/webhooks/endpoints/"+hook, admin, nil).must(t, 200, nil)
	do("GET", "/v1/webhooks/endpoints"+missing, admin, nil).fail(t, 404, "NOT_FOUND")
	do("PUT", "/v1/webhooks/endpoints/"+hook, admin, map[string]any{"url": "https://wallet.example.com/v2",
		"event_types": []string{"reward.created"}}).must(t, 200, nil)
	do("POST", "/v1/webhooks/endpoints/"+hook+"/rotate-secret", admin, nil).must(t, 200, nil)
	delivery := id(do("POST", "/v1/webhooks/endpoints/"+hook+"/test", admin, nil).must(t, 200, nil))
	do("GET", "/v1/webhooks/endpoints/"+hook+"/deliveries?status=pending", admin, nil).must(t, 200, nil)
	do("POST", "/v1/webhooks/deliveries/"+delivery+"/retry", admin, nil).must(t, 200, nil)
	do("POST", "/v1/webhooks/endpoints/"+hook+"/replay", admin, map[string]any{"since": "2000-01-01T00:00:00Z"}).fail(t, 400, "VALIDATION_FAILED")
	do("POST", "/v1/webhooks/endpoints/"+hook+"/replay", admin, map[string]any{"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}).must(t, 200, nil)
	do("DELETE", "/v1/webhooks/endpoints/"+hook, admin, nil).must(t, 204, nil)

	// Deletes.
	do("DELETE", "/v1/affiliate/commission-rules/"+rule, admin, nil).must(t, 204, nil)
	do("DELETE", "/v1/affiliate/tiers/"+tier, admin, nil).must(t, 204, nil)
	do("DELETE", "/v1/affiliates/"+child, admin, nil).must(t, 204, nil)
	do("DELETE", "/v1/referral/codes/"+promo, admin, nil).must(t, 204, nil)
	do("DELETE", "/v1/referral/campaigns/"+camp, admin, nil).must(t, 204, nil)
	do("DELETE", "/v1/referral/campaigns/"+camp, admin, nil).fail(t, 404, "NOT_FOUND")

	if u := v.Uncovered(); len(u) > 0 {
		t.Errorf("documented operations not exercised: %s", strings.Join(u, ", "))
	}
}

// TestOASQueryContract writes through the Admin Gateway and reads every Query Gateway route over
// the same database — as a player, a visitor, an admin and without a token, with ETag
// revalidation, NOT_AN_AFFILIATE and the attempt limit — checking each answer against the Query
// Gateway's document. The tenant has no projection in Redis, so reads come from PostgreSQL
// through the gateway's fallback path, in the shapes Redis serves.
func TestOASQueryContract(t *testing.T) {
	e := newEnv(t)
	av := contract.New(t, adminapi.OpenAPI)
	qv := contract.New(t, queryapi.OpenAPI)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	verifier, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	qs := web.NewServer(log, web.Options{Name: "query-gateway"})
	queryapi.New(cache.New(rdb), pgtest.DB(t), verifier, queryapi.Config{
		Attempts: referral.AttemptLimit{Max: 3, Window: time.Minute},
	}, log, nil).Register(qs.Echo)
	if err := web.ServeOpenAPI(qs.Echo, queryapi.OpenAPI); err != nil {
		t.Fatal(err)
	}
	qsrv := httptest.NewServer(qs.Echo)
	t.Cleanup(qsrv.Close)

	admin := e.admin()
	write := func(method, path string, body any) map[string]any {
		t.Helper()
		return oasDo(t, e, av, method, path, admin, body).must(t, 200, nil).obj(t)
	}
	read := func(path, token string, status int, headers ...string) *resp {
		t.Helper()
		req, err := http.NewRequest("GET", qsrv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		qv.Check(t, req, nil, res.StatusCode, res.Header, b)
		r := &resp{Status: res.StatusCode, Header: res.Header, Body: b}
		return r.must(t, status, nil)
	}
	alice, bob, carol := e.token(auth.RolePlayer, "alice"), e.token(auth.RolePlayer, "bob"), e.token(auth.RolePlayer, "carol")

	write("POST", "/v1/referral/campaigns", map[string]any{"name": "W", "qualifying_event": "deposit.completed",
		"referrer_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 100}}}})
	write("POST", "/v1/affiliate/tiers", map[string]any{"name": "Gold", "commission_rate": 0.1})
	write("POST", "/v1/affiliate/tiers", map[string]any{"name": "Platinum", "commission_rate": 0.2, "min_referrals": 5, "priority": 5})
	write("POST", "/v1/affiliate/commission-rules", map[string]any{"name": "D", "event_type": "deposit.completed", "currency_id": "EUR"})
	write("PUT", "/v1/affiliate/hierarchy", map[string]any{"max_depth": 1, "level_rates": []any{0.05}})
	boss := write("POST", "/v1/affiliates", map[string]any{"user_id": "boss", "status": "active"})["id"].(string)
	aff := write("POST", "/v1/affiliates", map[string]any{"user_id": "alice", "affiliate_code": "ALICE", "status": "active"})["id"].(string)
	write("PUT", "/v1/affiliates/"+aff+"/hierarchy", map[string]any{"parent_affiliate_id": boss})
	oasDo(t, e, av, "POST", "/v1/referral/apply-code", bob, map[string]any{"code": "alice"}).must(t, 200, nil)
	write("PUT", "/v1/affiliate/payout-policy", map[string]any{"hold_days": 0})
	write("POST", "/v1/events", map[string]any{"event_id": "e1", "type": "deposit.completed", "user_id": "bob",
		"payload": map[string]any{"amount": 1000}})
	write("POST", "/v1/affiliate/payouts", map[string]any{"currency_id": "EUR"})

	read("/healthz", "", 200)
	read("/readyz", "", 200)
	read("/metrics", "", 200)
	read("/openapi.json", "", 200)
	read("/v1/referral/campaigns", alice, 200)
	read("/v1/referral/codes", alice, 200)
	read("/v1/referral/validate/alice", bob, 200)   // ALREADY_REFERRED
	read("/v1/referral/validate/alice", carol, 200) // valid, with campaigns
	read("/v1/referral/validate/alice?tenant_id="+e.tenant, "", 200)
	read("/v1/referral/validate/alice", "", 400)
	read("/v1/referral/me", bob, 200)
	read("/v1/referral/me", alice, 200) // referral null
	read("/v1/referral/referrals?status=converted&limit=5", alice, 200)
	read("/v1/referral/referrals?limit=500", alice, 400)
	read("/v1/referral/stats?period=all", alice, 200)
	read("/v1/referral/rewards", alice, 200)
	read("/v1/referral/leaderboard?limit=1", alice, 200)
	read("/v1/referral/leaderboard", carol, 200) // me null
	etag := read("/v1/affiliate/me", alice, 200).Header.Get("ETag")
	read("/v1/affiliate/me", alice, 304, "If-None-Match", etag)
	read("/v1/affiliate/me", carol, 404)
	read("/v1/affiliate/downline?depth=2", e.token(auth.RolePlayer, "boss"), 200)
	read("/v1/affiliate/commissions", alice, 200)
	read("/v1/affiliate/stats", alice, 200)
	read("/v1/affiliate/tiers", alice, 200)
	read("/v1/affiliate/balance", alice, 200)
	read("/v1/affiliate/payouts?limit=5", alice, 200)
	read("/v1/affiliate/balance", carol, 404)
	read("/v1/affiliate/tiers", admin, 403)
	read("/v1/affiliate/tiers", "", 401)
	read("/v1/referral/campaigns?tenant_id=someone-else", alice, 403)
	read("/v1/nowhere", alice, 404)
	for i := 0; i < 4; i++ {
		read("/v1/referral/validate/NOPE"+strings.Repeat("X", i), carol, map[bool]int{true: 200, false: 429}[i < 3])
	}
	if u := qv.Uncovered(); len(u) > 0 {
		t.Errorf("documented operations not exercised: %s", strings.Join(u, ", "))
	}
}

// TestOASAdminContractCatchesDrift shows the checker failing on real answers that break the
// document: a field the schema does not list, and a status the route does not document.
func TestOASAdminContractCatchesDrift(t *testing.T) {
	e := newEnv(t)
	v := contract.New(t, adminapi.OpenAPI)
	admin := e.admin()
	r := e.do("POST", "/v1/affiliate/tiers", admin, map[string]any{"name": "Gold", "commission_rate": 0.1})
	r.must(t, 200, nil)
	req := httptest.NewRequest("GET", "/v1/affiliate/tiers/"+r.obj(t)["id"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+admin)

	rec := &oasRecorder{TB: t}
	v.Check(rec, req, nil, r.Status, r.Header, r.Body)
	if len(rec.errs) != 0 {
		t.Fatalf("a real answer failed the contract: %v", rec.errs)
	}
	tampered := bytes.Replace(r.Body, []byte(`"name":`), []byte(`"undocumented":1,"name":`), 1)
	v.Check(rec, req, nil, r.Status, r.Header, tampered)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "undocumented") {
		t.Fatalf("an undocumented field passed: %v", rec.errs)
	}
	v.Check(rec, req, nil, http.StatusConflict, r.Header, r.Body)
	if len(rec.errs) != 2 || !strings.Contains(rec.errs[1], "status 409 is not documented") {
		t.Fatalf("an undocumented status passed: %v", rec.errs)
	}
}

// oasRecorder is a testing.TB that records failures instead of failing the test.
type oasRecorder struct {
	testing.TB
	errs []string
}

func (r *oasRecorder) Helper() {}

func (r *oasRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

// TestOASGatewayDocumentsAreValid loads both gateways' documents and checks the rules the
// contract checker relies on: every object schema closes its properties, every /v1 operation
// documents its auth and error statuses, and no operation has a "default" response.
func TestOASGatewayDocumentsAreValid(t *testing.T) {
	for name, spec := range map[string][]byte{"admin": adminapi.OpenAPI, "query": queryapi.OpenAPI} {
		t.Run(name, func(t *testing.T) {
			doc, err := web.LoadOpenAPI(spec)
			if err != nil {
				t.Fatal(err)
			}
			for sname, s := range doc.Components.Schemas {
				v := s.Value
				if v.Type.Is("object") && len(v.Properties) > 0 {
					if v.AdditionalProperties.Has == nil || *v.AdditionalProperties.Has {
						t.Errorf("schema %s: object without additionalProperties: false", sname)
					}
				}
			}
			for path, item := range doc.Paths.Map() {
				for method, op := range item.Operations() {
					if op.Responses.Default() != nil {
						t.Errorf("%s %s: has a default response", method, path)
					}
					if !strings.HasPrefix(path, "/v1/") {
						continue
					}
					for _, status := range []string{"400", "401", "403", "500", "503"} {
						if op.Responses.Value(status) == nil {
							t.Errorf("%s %s: status %s not documented", method, path, status)
						}
					}
					if (method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch) &&
						op.Responses.Value("413") == nil {
						t.Errorf("%s %s: a body route without 413", method, path)
					}
				}
			}
		})
	}
}

// TestOASDocumentsListEveryRoute compares each document's operations with the routes its
// gateway registers, both ways.
func TestOASDocumentsListEveryRoute(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, g := range []struct {
		name     string
		spec     []byte
		register func(e *echo.Echo)
	}{
		{"admin-gateway", adminapi.OpenAPI, adminapi.New(nil, nil, adminapi.Config{}, log).Register},
		{"query-gateway", queryapi.OpenAPI, queryapi.New(nil, nil, nil, queryapi.Config{}, log, nil).Register},
	} {
		t.Run(g.name, func(t *testing.T) {
			s := web.NewServer(log, web.Options{Name: g.name})
			g.register(s.Echo)
			if err := web.ServeOpenAPI(s.Echo, g.spec); err != nil {
				t.Fatal(err)
			}
			doc, err := web.LoadOpenAPI(g.spec)
			if err != nil {
				t.Fatal(err)
			}
			documented := map[string]bool{}
			for path, item := range doc.Paths.Map() {
				for method := range item.Operations() {
					documented[method+" "+path] = true
				}
			}
			served := map[string]bool{}
			for _, r := range s.Echo.Routes() {
				if r.Method == echo.RouteNotFound {
					continue
				}
				served[r.Method+" "+oasEchoToOpenAPI(r.Path)] = true
			}
			if len(served) < 10 {
				t.Fatalf("only %d routes registered: %v", len(served), served)
			}
			var missing, extra []string
			for op := range served {
				if !documented[op] {
					missing = append(missing, op)
				}
			}
			for op := range documented {
				if !served[op] {
					extra = append(extra, op)
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			if len(missing) > 0 {
				t.Errorf("served but not documented:\n  %s", strings.Join(missing, "\n  "))
			}
			if len(extra) > 0 {
				t.Errorf("documented but not served:\n  %s", strings.Join(extra, "\n  "))
			}
		})
	}
}

// oasEchoToOpenAPI turns /a/:id into /a/{id}.
func oasEchoToOpenAPI(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}
