package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// milestoneRewards returns the tenant's milestone reward rows by threshold.
func milestoneRewards(t *testing.T, s *postgres.Store, tenant string) map[int][]referral.Reward {
	t.Helper()
	rs, _, err := s.ListRewards(context.Background(), tenant, referral.RewardLedgerFilter{UserID: ptr("alice"), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]referral.Reward{}
	for _, r := range rs {
		if r.Role == referral.RoleMilestone {
			out[*r.Milestone] = append(out[*r.Milestone], r)
		}
	}
	return out
}

func deposit(tenant, id, user string, at time.Time) referral.Event {
	return referral.Event{TenantID: tenant, EventID: id, Type: "deposit.completed", UserID: user,
		OccurredAt: at, Payload: json.RawMessage(`{}`)}
}

// TestMilestonesConcurrentConversions: 50 of one referrer's referrals convert at once, across
// the thresholds 1, 25 and 50 (and short of 60): each reached threshold is paid exactly once,
// to the referrer, by one of the converting events, in the same transaction.
func TestMilestonesConcurrentConversions(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	camp, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "Refer friends",
		QualifyingEvent: "deposit.completed", Active: true,
		Milestones: []referral.Milestone{
			{SuccessfulReferrals: 1, Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 10}}},
			{SuccessfulReferrals: 25, Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 250}, {CurrencyID: "gems", Amount: 1}}},
			{SuccessfulReferrals: 50, Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 500}}},
			{SuccessfulReferrals: 60, Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 600}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if _, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("r%02d", i), "ALICE1", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	at := clock.t.Add(time.Minute)
	clock.t = at
	var wg sync.WaitGroup
	outs := make([]referral.EventOutcome, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.ProcessEvent(ctx, deposit(tenant, fmt.Sprintf("dep%02d", i), fmt.Sprintf("r%02d", i), at))
		}()
	}
	wg.Wait()
	paidBy := map[int]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		for _, r := range outs[i].Rewards {
			if r.Role == referral.RoleMilestone {
				if prev, ok := paidBy[*r.Milestone]; ok && prev != r.EventID {
					t.Errorf("milestone %d paid by %s and %s", *r.Milestone, prev, r.EventID)
				}
				paidBy[*r.Milestone] = r.EventID
			}
		}
	}
	got := milestoneRewards(t, s, tenant)
	want := map[int]int{1: 1, 25: 2, 50: 1} // rows: one per currency
	if len(got) != len(want) {
		t.Fatalf("milestones paid %v, want thresholds 1, 25 and 50", got)
	}
	for m, rows := range got {
		if len(rows) != want[m] {
			t.Errorf("milestone %d: %d rows, want %d", m, len(rows), want[m])
		}
		for _, r := range rows {
			if r.CampaignID != camp.ID || r.UserID != "alice" || r.EventID != paidBy[m] {
				t.Errorf("milestone %d row %+v (answered by %s)", m, r, paidBy[m])
			}
		}
	}
	var payments int
	if err := s.DB().GetContext(ctx, &payments, `SELECT count(*) FROM milestone_payments WHERE tenant_id = $1`, tenant); err != nil {
		t.Fatal(err)
	}
	if payments != 3 {
		t.Fatalf("%d milestone payments recorded, want 3", payments)
	}
}

// TestMilestonesLaterThresholdsAndUndo: a threshold added after the referrer passed it pays at
// the next success; a referral rejected later or a threshold removed never undoes a paid
// milestone and never pays it twice; conversions attributed to another campaign do not count.
func TestMilestonesLaterThresholdsAndUndo(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	camp, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "C", QualifyingEvent: "deposit.completed", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(time.Second) // the older campaign is the one referrals are attributed to
	other, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "Other", QualifyingEvent: "deposit.completed", Active: true,
		Milestones: []referral.Milestone{{SuccessfulReferrals: 1, Rewards: []referral.Wallet{{CurrencyID: "x", Amount: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil); err != nil {
		t.Fatal(err)
	}
	convert := func(user string) referral.EventOutcome {
		t.Helper()
		ref, _, err := s.ApplyCode(ctx, tenant, user, "ALICE1", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		clock.t = clock.t.Add(time.Second)
		out, err := s.ProcessEvent(ctx, deposit(tenant, "dep-"+user, user, clock.t))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetReferral(ctx, tenant, ref.ID); got.CampaignID == nil || *got.CampaignID != camp.ID {
			t.Fatalf("referral attributed to %v, want the oldest campaign", got.CampaignID)
		}
		return out
	}
	var first uuid.UUID
	for i, u := range []string{"u1", "u2", "u3"} {
		convert(u)
		if i == 0 {
			refs, _, _ := s.ListReferrals(ctx, tenant, referral.ReferralFilter{RefereeID: ptr("u1"), Limit: 1})
			first = refs[0].ID
		}
	}
	if got := milestoneRewards(t, s, tenant); len(got) != 0 {
		t.Fatalf("paid %v before any milestone was defined (or for the other campaign)", got)
	}
	camp.Milestones = []referral.Milestone{
		{SuccessfulReferrals: 2, Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 20}}},
		{SuccessfulReferrals: 5, Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 50}}},
	}
	if _, err := s.ReplaceCampaign(ctx, camp); err != nil {
		t.Fatal(err)
	}
	out := convert("u4")
	if len(out.Rewards) != 1 || out.Rewards[0].Role != referral.RoleMilestone || *out.Rewards[0].Milestone != 2 || out.Rewards[0].Amount != 20 {
		t.Fatalf("the success after adding threshold 2 paid %+v", out.Rewards)
	}
	// Rejecting a counted referral lowers the count to 3; threshold 2 stays paid, once.
	if _, err := s.SetReferralStatus(ctx, tenant, first, referral.StatusRejected, nil); err != nil {
		t.Fatal(err)
	}
	convert("u5") // count 4
	if out := convert("u6"); len(out.Rewards) != 1 || *out.Rewards[0].Milestone != 5 {
		t.Fatalf("count 5 paid %+v, want threshold 5", out.Rewards)
	}
	camp.Milestones = camp.Milestones[1:]
	if _, err := s.ReplaceCampaign(ctx, camp); err != nil {
		t.Fatal(err)
	}
	convert("u7")
	got := milestoneRewards(t, s, tenant)
	if len(got) != 2 || len(got[2]) != 1 || len(got[5]) != 1 {
		t.Fatalf("milestone rows %v, want thresholds 2 and 5 once each", got)
	}
	if rs, _, err := s.ListRewards(ctx, tenant, referral.RewardLedgerFilter{CampaignID: &other.ID, Limit: 10}); err != nil || len(rs) != 0 {
		t.Fatalf("the other campaign paid %+v (%v)", rs, err)
	}
}
