package adminapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// riskReferral is the admin view of a referral's review.
type riskReferral struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Review *struct {
		State   string   `json:"state"`
		Reasons []string `json:"reasons"`
	} `json:"review"`
}

// TestRiskHeldApplyPlayerView: the referrer's and the referee's devices come from their own
// requests (the X-Device-Id header, or the token's device_id claim, which wins); a shared device
// holds the referral under the default policy. The player's answer shows a pending referral, no
// rewards and no review; the admin views show the review. A malformed X-Device-Id is no signal.
func TestRiskHeldApplyPlayerView(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	e.do(http.MethodPost, "/v1/referral/campaigns", admin, map[string]any{"name": "Instant", "qualifying_event": "referral.applied",
		"referee_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "coins", "amount": 5}}}}).must(t, 200, nil)
	// alice's own request records her device.
	e.do(http.MethodPost, "/v1/referral/codes", e.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, "phone-1").must(t, 200, nil)

	applied := e.do(http.MethodPost, "/v1/referral/apply-code", e.token(auth.RolePlayer, "bob"), map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, "phone-1").must(t, 200, nil).obj(t)
	if _, ok := applied["review"]; ok || applied["status"] != "pending" || len(applied["rewards"].([]any)) != 0 {
		t.Fatalf("player's answer for a held referral: %v", applied)
	}
	var got riskReferral
	e.do(http.MethodGet, "/v1/referral/referrals/"+applied["id"].(string), admin, nil).must(t, 200, &got)
	if got.Review == nil || got.Review.State != referral.ReviewHeld || strings.Join(got.Review.Reasons, ",") != "same_device" {
		t.Fatalf("admin view: %+v", got.Review)
	}

	// The claim wins over the header: carol's token says phone-1, her header another device.
	carol := e.tokenFor(auth.Principal{UserID: "carol", Role: auth.RolePlayer, TenantID: e.tenant, DeviceID: "phone-1"})
	c := e.do(http.MethodPost, "/v1/referral/apply-code", carol, map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, "tablet-9").must(t, 200, nil).obj(t)
	// A malformed header (129 characters) is ignored: dave has no device signal.
	d := e.do(http.MethodPost, "/v1/referral/apply-code", e.token(auth.RolePlayer, "dave"), map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, strings.Repeat("p", 129)).must(t, 200, nil).obj(t)
	var list struct {
		Items []riskReferral `json:"items"`
		Total int            `json:"total"`
	}
	e.do(http.MethodGet, "/v1/referral/referrals?review=held", admin, nil).must(t, 200, &list)
	if list.Total != 2 || (list.Items[0].ID != c["id"] && list.Items[1].ID != c["id"]) {
		t.Fatalf("held referrals %+v, want bob's and carol's", list.Items)
	}
	var dv riskReferral
	e.do(http.MethodGet, "/v1/referral/referrals/"+d["id"].(string), admin, nil).must(t, 200, &dv)
	if dv.Review != nil {
		t.Fatalf("dave's malformed device id matched: %+v", dv.Review)
	}
	e.do(http.MethodGet, "/v1/referral/referrals?review=pending", admin, nil).fail(t, 400, "VALIDATION_FAILED")

	// Approving pays the deferred referral.applied event.
	var approved riskReferral
	e.do(http.MethodPut, "/v1/referral/referrals/"+applied["id"].(string)+"/review", admin,
		map[string]any{"decision": "approve"}).must(t, 200, &approved)
	if approved.Review.State != referral.ReviewApproved || approved.Status != referral.StatusConverted {
		t.Fatalf("approved: %+v", approved)
	}
	var rewards struct {
		Total int `json:"total"`
	}
	e.do(http.MethodGet, "/v1/referral/rewards?user_id=bob", admin, nil).must(t, 200, &rewards)
	if rewards.Total != 1 {
		t.Fatalf("bob has %d rewards after approval, want the instant one", rewards.Total)
	}
	if !strings.Contains(e.log.String(), `"risk_held"`) {
		t.Errorf("no risk_held log line")
	}
}

// TestRiskRejectedApply: a rejected apply answers a generic RISK_REJECTED, counts no use, makes
// no referral, and counts toward the failed-attempt limit.
func TestRiskRejectedApply(t *testing.T) {
	e := newEnv(t, func(c *adminapi.Config) { c.Attempts.Max = 2 })
	admin := e.admin()
	e.do(http.MethodPut, "/v1/referral/risk-policy", admin, map[string]any{"same_device": "reject"}).must(t, 200, nil)
	code := e.do(http.MethodPost, "/v1/referral/codes", e.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, "phone-1").must(t, 200, nil).obj(t)
	bob := e.token(auth.RolePlayer, "bob")
	for range 2 {
		eb := e.do(http.MethodPost, "/v1/referral/apply-code", bob, map[string]any{"code": "ALICE1"},
			adminapi.DeviceIDHeader, "phone-1").fail(t, 422, "RISK_REJECTED")
		if strings.Contains(eb.Error.Message, "device") {
			t.Fatalf("the message tells the player why: %q", eb.Error.Message)
		}
	}
	e.do(http.MethodPost, "/v1/referral/apply-code", bob, map[string]any{"code": "ALICE1"}).fail(t, 429, "RATE_LIMITED")
	var c struct {
		Uses int `json:"uses"`
	}
	e.do(http.MethodGet, "/v1/referral/codes/"+code["id"].(string), admin, nil).must(t, 200, &c)
	var list struct {
		Total int `json:"total"`
	}
	e.do(http.MethodGet, "/v1/referral/referrals?referee_id=bob", admin, nil).must(t, 200, &list)
	if c.Uses != 0 || list.Total != 0 {
		t.Fatalf("uses %d, referrals %d after rejected applies; want none", c.Uses, list.Total)
	}
	if !strings.Contains(e.log.String(), `"reasons":"same_device"`) {
		t.Errorf("the rejection's reasons are not logged")
	}
}

// TestRiskRoutesTenantIsolation: another tenant's admin sees the default policy, cannot review
// or read this tenant's held referral (404) and lists none of it; signals and policies stay in
// their tenant.
func TestRiskRoutesTenantIsolation(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	adminA, adminB := a.admin(), b.admin()
	a.do(http.MethodPut, "/v1/referral/risk-policy", adminA, map[string]any{"same_address": "hold", "address_window_hours": 48}).must(t, 200, nil)
	a.do(http.MethodPost, "/v1/referral/signals", a.token(auth.RoleService, "svc"), map[string]any{"user_id": "bob", "device_id": "phone"}).must(t, 200, nil)
	a.do(http.MethodPost, "/v1/referral/signals", adminA, map[string]any{"user_id": "alice", "device_id": "phone"}).must(t, 200, nil)
	a.do(http.MethodPost, "/v1/referral/codes", a.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE1"}).must(t, 200, nil)
	held := a.do(http.MethodPost, "/v1/referral/apply-code", a.token(auth.RolePlayer, "bob"), map[string]any{"code": "ALICE1"}).must(t, 200, nil).obj(t)["id"].(string)

	var policy struct {
		SameAddress string  `json:"same_address"`
		UpdatedAt   *string `json:"updated_at"`
	}
	b.do(http.MethodGet, "/v1/referral/risk-policy", adminB, nil).must(t, 200, &policy)
	if policy.SameAddress != referral.RiskAllow || policy.UpdatedAt != nil {
		t.Fatalf("tenant B's policy %+v, want the defaults", policy)
	}
	b.do(http.MethodGet, "/v1/referral/referrals/"+held, adminB, nil).fail(t, 404, "NOT_FOUND")
	b.do(http.MethodPut, "/v1/referral/referrals/"+held+"/review", adminB, map[string]any{"decision": "approve"}).fail(t, 404, "NOT_FOUND")
	var list struct {
		Total int `json:"total"`
	}
	b.do(http.MethodGet, "/v1/referral/referrals?review=held", adminB, nil).must(t, 200, &list)
	if list.Total != 0 {
		t.Fatalf("tenant B lists %d held referrals", list.Total)
	}
	// The same users in B: nothing seen there, so nothing held.
	b.do(http.MethodPost, "/v1/referral/codes", b.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE1"}).must(t, 200, nil)
	var ref riskReferral
	id := b.do(http.MethodPost, "/v1/referral/apply-code", b.token(auth.RolePlayer, "bob"), map[string]any{"code": "ALICE1"}).must(t, 200, nil).obj(t)["id"].(string)
	b.do(http.MethodGet, "/v1/referral/referrals/"+id, adminB, nil).must(t, 200, &ref)
	if ref.Review != nil {
		t.Fatalf("tenant A's signals held tenant B's referral: %+v", ref.Review)
	}
	a.do(http.MethodPut, "/v1/referral/referrals/"+held+"/review", adminA, map[string]any{"decision": "reject", "note": "same phone"}).must(t, 200, &ref)
	if ref.Status != referral.StatusRejected || ref.Review.State != referral.ReviewRejected {
		t.Fatalf("rejected: %+v", ref)
	}
}
