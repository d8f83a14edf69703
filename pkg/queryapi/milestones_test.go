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

// TestStatsMilestones: the player's stats list the milestones of the active campaigns (not the
// inactive one's, nor those of the one that starts tomorrow), each with the player's all-time count and when it was paid — a threshold
// added after alice's first success is paid at her next one.
func TestStatsMilestones(t *testing.T) {
	w := qryNewWorld(t)
	ctx := context.Background()
	s := postgres.NewStore(w.db)
	points := func(n int64) []referral.Wallet { return []referral.Wallet{{CurrencyID: "points", Amount: n}} }
	for _, name := range []string{"Welcome", "Dormant", "Later"} {
		c, err := s.GetCampaign(ctx, w.tenant, w.ids[name])
		if err != nil {
			t.Fatal(err)
		}
		c.Milestones = []referral.Milestone{{SuccessfulReferrals: 1, Rewards: points(10)}, {SuccessfulReferrals: 3, Rewards: points(30)}}
		if _, err := s.ReplaceCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.ApplyCode(ctx, w.tenant, "fay", "ALICE1", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProcessEvent(ctx, referral.Event{TenantID: w.tenant, EventID: "dep-fay", Type: "deposit.completed",
		UserID: "fay", OccurredAt: time.Now().UTC(), Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	e, _ := w.serve(Config{})
	var alice apishape.PlayerStats
	w.read(e, "/v1/referral/stats?period=7d", "alice", &alice)
	welcome := w.ids["Welcome"]
	if len(alice.Milestones) != 2 {
		t.Fatalf("alice's milestones %+v, want Welcome's two", alice.Milestones)
	}
	first, second := alice.Milestones[0], alice.Milestones[1]
	if first.CampaignID != welcome || first.SuccessfulReferrals != 1 || first.ReachedAt == nil || first.Progress != 2 {
		t.Errorf("threshold 1: %+v, want reached with progress 2", first)
	}
	if second.CampaignID != welcome || second.SuccessfulReferrals != 3 || second.ReachedAt != nil || second.Progress != 2 {
		t.Errorf("threshold 3: %+v, want not reached with progress 2", second)
	}
	// The same user in another tenant sees none of this tenant's milestones.
	if other, err := s.MilestoneCampaigns(ctx, "other-"+w.tenant); err != nil || len(other) != 0 {
		t.Errorf("another tenant's alice: %+v, %v", other, err)
	}
	var bob apishape.PlayerStats
	w.read(e, "/v1/referral/stats", "bob", &bob)
	if len(bob.Milestones) != 2 || bob.Milestones[0].Progress != 0 || bob.Milestones[0].ReachedAt != nil {
		t.Errorf("bob's milestones %+v, want Welcome's with no progress", bob.Milestones)
	}
}
