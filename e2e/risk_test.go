package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRiskAndMilestonesThroughTheBinaries runs the real gateways: a player's own requests
// record the device (X-Device-Id), a shared device holds the referral (the default policy), the
// player still sees a pending referral, the Admin Gateway's /metrics counts the hold by reason,
// the approval pays the deferred deposit and its milestone, and the Query Gateway's stats show
// the milestone reached.
func TestRiskAndMilestonesThroughTheBinaries(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	e := s.tenant(qg)
	admin := "http://" + s.admin.addr
	var camp qryObj
	e.write("POST", "/v1/referral/campaigns", e.admin, map[string]any{
		"name": "Refer friends", "qualifying_event": "deposit.completed",
		"referrer_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 100}}},
		"milestones": []any{map[string]any{"successful_referrals": 1,
			"rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 500}}}}},
	}, &camp)
	code := "ALICE-" + strings.ToUpper(e.tenant[4:])
	qryDo(t, "POST", admin+"/v1/referral/codes", e.player("alice"), map[string]any{"code": code},
		"X-Device-Id", "phone-1").must(t, 200, nil)
	var applied map[string]any
	qryDo(t, "POST", admin+"/v1/referral/apply-code", e.player("bob"), map[string]any{"code": code},
		"X-Device-Id", "phone-1").must(t, 200, &applied)
	if _, ok := applied["review"]; ok || applied["status"] != "pending" {
		t.Fatalf("the player's apply answer: %v", applied)
	}
	ref := applied["id"].(string)
	var got struct {
		Review *struct {
			State   string   `json:"state"`
			Reasons []string `json:"reasons"`
		} `json:"review"`
		Status string `json:"status"`
	}
	qryDo(t, "GET", admin+"/v1/referral/referrals/"+ref, e.admin, nil).must(t, 200, &got)
	if got.Review == nil || got.Review.State != "held" || strings.Join(got.Review.Reasons, ",") != "same_device" {
		t.Fatalf("admin view: %+v", got.Review)
	}
	metrics := qryDo(t, "GET", admin+"/metrics", "", nil)
	if !strings.Contains(string(metrics.Body), `phoenix_risk_decisions_total{action="hold",reason="same_device"} 1`) {
		t.Fatalf("/metrics does not count the hold:\n%s", qryTail(string(metrics.Body), 2000))
	}
	var out struct {
		Status string `json:"status"`
	}
	e.write("POST", "/v1/events", e.svc, map[string]any{"event_id": "dep-bob", "type": "deposit.completed",
		"user_id": "bob", "payload": map[string]any{}}, &out)
	if out.Status != "deferred" {
		t.Fatalf("the held referee's deposit: %s, want deferred", out.Status)
	}
	e.write("PUT", "/v1/referral/referrals/"+ref+"/review", e.admin, map[string]any{"decision": "approve"}, &got)
	if got.Status != "converted" || got.Review.State != "approved" {
		t.Fatalf("approved: %+v", got)
	}
	var rewards struct {
		Items []struct {
			Role      string `json:"role"`
			Milestone *int   `json:"milestone"`
			Amount    int64  `json:"amount"`
		} `json:"items"`
	}
	qryDo(t, "GET", admin+"/v1/referral/rewards?user_id=alice", e.admin, nil).must(t, 200, &rewards)
	if len(rewards.Items) != 2 {
		t.Fatalf("alice's rewards: %+v, want the referrer reward and the milestone", rewards.Items)
	}
	s.waitProjected(t, 5*time.Second)
	qryEventually(t, 5*time.Second, func() error {
		return qryContains(e.read("/v1/referral/stats", e.player("alice")).Body,
			`"milestones":[{"campaign_id":"`+camp.ID+`","successful_referrals":1,"reached_at":"`, `"progress":1}]`)
	})
}
