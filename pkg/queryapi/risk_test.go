package queryapi

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestValidateIgnoresRisk: validate never answers RISK_REJECTED (SPEC §12) — a player whose
// apply the risk policy would reject still sees a valid code.
func TestValidateIgnoresRisk(t *testing.T) {
	w := qryNewWorld(t)
	ctx := context.Background()
	s := postgres.NewStore(w.db)
	p := referral.DefaultRiskPolicy(w.tenant)
	p.SameDevice = referral.RiskReject
	if _, err := s.PutRiskPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.RecordSignals(ctx, []referral.Signal{
		{TenantID: w.tenant, UserID: "alice", DeviceID: "phone", SeenAt: now},
		{TenantID: w.tenant, UserID: "zed", DeviceID: "phone", SeenAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplyCode(ctx, w.tenant, "zed", "ALICE1", nil, nil); referral.ErrorCode(err) != referral.ERiskRejected {
		t.Fatalf("apply: %v, want RISK_REJECTED", err)
	}
	e, _ := w.serve(Config{})
	var v apishape.Validation
	w.read(e, "/v1/referral/validate/ALICE1", "zed", &v)
	if !v.Valid || v.Reason != nil {
		t.Fatalf("validate for zed: %+v, want valid", v)
	}
}

// TestHeldReferralPlayerView: on the Query Gateway a held referral is the player's pending
// referral, without its review (SPEC §12).
func TestHeldReferralPlayerView(t *testing.T) {
	w := qryNewWorld(t)
	ctx := context.Background()
	s := postgres.NewStore(w.db)
	now := time.Now().UTC()
	if err := s.RecordSignals(ctx, []referral.Signal{
		{TenantID: w.tenant, UserID: "alice", DeviceID: "phone", SeenAt: now},
		{TenantID: w.tenant, UserID: "yan", DeviceID: "phone", SeenAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	ref, _, err := s.ApplyCode(ctx, w.tenant, "yan", "ALICE1", nil, nil)
	if err != nil || !ref.Held() {
		t.Fatalf("apply: %+v, %v; want held", ref.Review, err)
	}
	e, _ := w.serve(Config{})
	var me struct {
		Referral map[string]any `json:"referral"`
	}
	if err := json.Unmarshal(w.read(e, "/v1/referral/me", "yan", nil), &me); err != nil {
		t.Fatal(err)
	}
	if _, ok := me.Referral["review"]; ok || me.Referral["status"] != referral.StatusPending {
		t.Fatalf("the player's referral: %v", me.Referral)
	}
}
