package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// tierFixture is a tenant with a one-step tier ladder, the affiliate alice and her referee bob.
type tierFixture struct {
	s      *postgres.Store
	tenant string
	tier   referral.Tier
	aff    referral.Affiliate
	ref    referral.Referral
}

func newTierFixture(t *testing.T, tier referral.Tier) *tierFixture {
	t.Helper()
	ctx := context.Background()
	f := &tierFixture{s: postgres.NewStore(pgtest.DB(t)), tenant: pgtest.Tenant(t)}
	tier.TenantID, tier.Name = f.tenant, "bronze"
	var err error
	if f.tier, err = f.s.CreateTier(ctx, tier); err != nil {
		t.Fatal(err)
	}
	if f.aff, err = f.s.CreateAffiliate(ctx, referral.Affiliate{TenantID: f.tenant, UserID: "alice", Status: referral.AffiliateActive}); err != nil {
		t.Fatal(err)
	}
	if f.ref, _, err = f.s.ApplyCode(ctx, f.tenant, "bob", f.aff.AffiliateCode, nil, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tierFixture) deposit(t *testing.T, id string, amount int) {
	t.Helper()
	out, err := f.s.ProcessEvent(context.Background(), referral.Event{TenantID: f.tenant, EventID: id, Type: "deposit.completed",
		UserID: "bob", OccurredAt: time.Now(), Payload: json.RawMessage(fmt.Sprintf(`{"amount": %d}`, amount))})
	if err != nil || out.Status != referral.EventProcessed {
		t.Fatalf("event %s: %+v, %v", id, out, err)
	}
}

// tierChanges returns every affiliate.tier_changed event of the tenant, checking that there are
// want of them.
func (f *tierFixture) tierChanges(t *testing.T, want int) []apishape.AffiliateTierChange {
	t.Helper()
	readFeed(t, f.s, f.tenant, nil, []string{outbox.AffiliateTierChanged}, want)
	page, err := f.s.Feed(context.Background(), f.tenant, outbox.FeedFilter{Types: []string{outbox.AffiliateTierChanged}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != want {
		t.Fatalf("%d affiliate.tier_changed events, want %d", len(page.Events), want)
	}
	out := make([]apishape.AffiliateTierChange, len(page.Events))
	for i, e := range page.Events {
		if err := json.Unmarshal(e.Data, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkMove checks a tier change of alice from one tier to another (nil: none).
func (f *tierFixture) checkMove(t *testing.T, c apishape.AffiliateTierChange, from, to *uuid.UUID) {
	t.Helper()
	if c.ID != f.aff.ID || fmt.Sprint(c.PreviousTierID) != fmt.Sprint(from) || fmt.Sprint(c.TierID) != fmt.Sprint(to) {
		t.Fatalf("tier change %+v, want %v → %v", c, from, to)
	}
}

// TestTierChangedByConversionWithoutRuleAndStatusChange: with no commission rule for the event
// type the engine loads no affiliate, yet the conversion moves the referrer up the ladder; a
// status change that keeps the referral successful publishes no tier change, a rejection moves
// the referrer back down.
func TestTierChangedByConversionWithoutRuleAndStatusChange(t *testing.T) {
	f := newTierFixture(t, referral.Tier{MinReferrals: 1})
	ctx := context.Background()
	if _, err := f.s.CreateCampaign(ctx, referral.Campaign{TenantID: f.tenant, Name: "welcome", QualifyingEvent: "deposit.completed",
		ReferrerRewards: []referral.Wallet{{CurrencyID: "points", Amount: 100}}, Active: true}); err != nil {
		t.Fatal(err)
	}
	f.deposit(t, "dep1", 100)
	up := f.tierChanges(t, 1)[0]
	f.checkMove(t, up, nil, &f.tier.ID)
	if up.ConvertedReferrals != 1 {
		t.Fatalf("converted_referrals %d, want 1", up.ConvertedReferrals)
	}
	if _, err := f.s.SetReferralStatus(ctx, f.tenant, f.ref.ID, referral.StatusVerified, nil); err != nil {
		t.Fatal(err)
	}
	f.tierChanges(t, 1) // verified still counts: no move
	if _, err := f.s.SetReferralStatus(ctx, f.tenant, f.ref.ID, referral.StatusRejected, nil); err != nil {
		t.Fatal(err)
	}
	down := f.tierChanges(t, 2)[1]
	f.checkMove(t, down, &f.tier.ID, nil)
	if down.ConvertedReferrals != 0 {
		t.Fatalf("converted_referrals %d, want 0", down.ConvertedReferrals)
	}
}

// TestTierChangedByReversal: the revenue an event brought moves the referrer up, its reversal
// takes it back and moves the referrer down again, in the reversal's transaction.
func TestTierChangedByReversal(t *testing.T) {
	f := newTierFixture(t, referral.Tier{MinRefereeRevenue: 1000})
	ctx := context.Background()
	rate, _ := referral.ParseRate("0.05")
	if _, err := f.s.CreateCommissionRule(ctx, referral.CommissionRule{TenantID: f.tenant, Name: "deposits", EventType: "deposit.completed",
		CommissionField: "amount", CustomRate: &rate, CurrencyID: "EUR", Active: true}); err != nil {
		t.Fatal(err)
	}
	f.deposit(t, "dep1", 5000)
	f.checkMove(t, f.tierChanges(t, 1)[0], nil, &f.tier.ID)
	out, err := f.s.ProcessEvent(ctx, referral.Event{TenantID: f.tenant, EventID: "rev1", Type: "deposit.refunded",
		UserID: "bob", OccurredAt: time.Now(), Reverses: "dep1"})
	if err != nil || out.Status != referral.EventProcessed {
		t.Fatalf("reversal: %+v, %v", out, err)
	}
	down := f.tierChanges(t, 2)[1]
	f.checkMove(t, down, &f.tier.ID, nil)
	if down.RefereeRevenue != 0 {
		t.Fatalf("referee_revenue %d, want 0", down.RefereeRevenue)
	}
}

// TestAffiliateDeletionPublishesReparentedChildren: deleting an affiliate publishes
// affiliate.updated for each child it re-parents (with the new parent), and none for deeper
// descendants, whose parent stays.
func TestAffiliateDeletionPublishesReparentedChildren(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	affs := map[string]referral.Affiliate{}
	for _, u := range []string{"root", "mid", "kid1", "kid2", "grandkid"} {
		a, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: u, Status: referral.AffiliateActive})
		if err != nil {
			t.Fatal(err)
		}
		affs[u] = a
	}
	for child, parent := range map[string]string{"mid": "root", "kid1": "mid", "kid2": "mid", "grandkid": "kid1"} {
		id := affs[parent].ID
		if _, err := s.SetUpline(ctx, tenant, affs[child].ID, &id); err != nil {
			t.Fatal(err)
		}
	}
	after, err := s.Feed(ctx, tenant, outbox.FeedFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAffiliate(ctx, tenant, affs["mid"].ID); err != nil {
		t.Fatal(err)
	}
	got, _ := readFeed(t, s, tenant, &after.Next, nil, 3)
	if got[0].Type != outbox.AffiliateDeleted {
		t.Fatalf("first event %s, want %s", got[0].Type, outbox.AffiliateDeleted)
	}
	moved := map[uuid.UUID]bool{}
	for _, e := range got[1:] {
		var a apishape.Affiliate
		if err := json.Unmarshal(e.Data, &a); err != nil {
			t.Fatal(err)
		}
		cur, err := s.GetAffiliate(ctx, tenant, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(apishape.NewAffiliate(cur))
		if e.Type != outbox.AffiliateUpdated || string(e.Data) != string(want) {
			t.Errorf("event %s %s, want %s %s", e.Type, e.Data, outbox.AffiliateUpdated, want)
		}
		if a.ParentAffiliateID == nil || *a.ParentAffiliateID != affs["root"].ID {
			t.Errorf("child %s has parent %v, want root", a.UserID, a.ParentAffiliateID)
		}
		moved[a.ID] = true
	}
	if !moved[affs["kid1"].ID] || !moved[affs["kid2"].ID] {
		t.Fatalf("re-parented children published: %v", moved)
	}
	rest, err := s.Feed(ctx, tenant, outbox.FeedFilter{After: &after.Next, Limit: 500})
	if err != nil || len(rest.Events) != 3 {
		t.Fatalf("the deletion published %d events (%v), want 3: the grandchild's parent did not change", len(rest.Events), err)
	}
}

// TestTierChangedConcurrentConversions: 30 referees of one affiliate convert at once by an event
// type without commission rules, across a ladder of 5, 10 and 20 conversions: the feed holds
// exactly one tier change per step climbed, each starting where the one before ended.
func TestTierChangedConcurrentConversions(t *testing.T) {
	f := newTierFixture(t, referral.Tier{MinReferrals: 5, Priority: 1})
	ctx := context.Background()
	ladder := []uuid.UUID{f.tier.ID}
	for i, min := range []int64{10, 20} {
		tier, err := f.s.CreateTier(ctx, referral.Tier{TenantID: f.tenant, Name: fmt.Sprintf("step%d", i), MinReferrals: min, Priority: i + 2})
		if err != nil {
			t.Fatal(err)
		}
		ladder = append(ladder, tier.ID)
	}
	if _, err := f.s.CreateCampaign(ctx, referral.Campaign{TenantID: f.tenant, Name: "welcome", QualifyingEvent: "deposit.completed",
		ReferrerRewards: []referral.Wallet{{CurrencyID: "points", Amount: 1}}, Active: true}); err != nil {
		t.Fatal(err)
	}
	const referees = 30
	for i := 1; i < referees; i++ { // bob, the fixture's referee, is the first
		if _, _, err := f.s.ApplyCode(ctx, f.tenant, fmt.Sprintf("p%02d", i), f.aff.AffiliateCode, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, referees)
	for i := range referees {
		user := "bob"
		if i > 0 {
			user = fmt.Sprintf("p%02d", i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.s.ProcessEvent(ctx, referral.Event{TenantID: f.tenant, EventID: "dep-" + user, Type: "deposit.completed",
				UserID: user, OccurredAt: time.Now(), Payload: json.RawMessage(`{}`)})
			if err == nil && out.Status != referral.EventProcessed {
				err = fmt.Errorf("%s: %s", user, out.Status)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The feed orders concurrent transactions by their ids, not their commits; the count of
	// conversions each change saw orders them as they committed.
	changes := f.tierChanges(t, len(ladder))
	slices.SortFunc(changes, func(a, b apishape.AffiliateTierChange) int { return int(a.ConvertedReferrals - b.ConvertedReferrals) })
	var from *uuid.UUID
	for i, c := range changes {
		f.checkMove(t, c, from, &ladder[i])
		from = c.TierID
	}
}

// TestTierChangedByReviewApproval: a held referral's conversion waits for its review; the
// approval's replay of the deferred event (no commission rule) moves the referrer's tier.
func TestTierChangedByReviewApproval(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	tier, err := s.CreateTier(ctx, referral.Tier{TenantID: tenant, Name: "bronze", MinReferrals: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "Deposit", QualifyingEvent: "deposit.completed",
		ReferrerRewards: []referral.Wallet{{CurrencyID: "points", Amount: 100}}, Active: true}); err != nil {
		t.Fatal(err)
	}
	aff, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "alice", Status: referral.AffiliateActive})
	if err != nil {
		t.Fatal(err)
	}
	recordRiskSignals(t, s, tenant, clock.t, riskSignal{user: "alice", device: "phone"}, riskSignal{user: "bob", device: "phone"})
	ref, _, err := s.ApplyCode(ctx, tenant, "bob", aff.AffiliateCode, nil, nil)
	if err != nil || !ref.Held() {
		t.Fatalf("apply: %+v, %v; want held", ref.Review, err)
	}
	clock.t = clock.t.Add(time.Minute)
	out, err := s.ProcessEvent(ctx, deposit(tenant, "dep1", "bob", clock.t))
	if err != nil || out.Status != referral.EventDeferred {
		t.Fatalf("deposit: %+v, %v; want deferred", out, err)
	}
	f := &tierFixture{s: s, tenant: tenant, tier: tier, aff: aff}
	f.tierChanges(t, 0)
	if _, err := s.ReviewReferral(ctx, tenant, ref.ID, referral.DecisionApprove, nil); err != nil {
		t.Fatal(err)
	}
	f.checkMove(t, f.tierChanges(t, 1)[0], nil, &tier.ID)
}
