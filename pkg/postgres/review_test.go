package postgres_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// heldFixture is a tenant where bob's apply of alice's code is held (same device): a campaign
// pays 5 coins to the referee on referral.applied, another 100/50 points on deposit.completed.
type heldFixture struct {
	s       *postgres.Store
	clock   *refClock
	tenant  string
	ref     referral.Referral
	applied referral.EventOutcome
}

func newHeldFixture(t *testing.T) heldFixture {
	t.Helper()
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	for _, c := range []referral.Campaign{
		{TenantID: tenant, Name: "Instant", QualifyingEvent: referral.ReferralAppliedEvent, Active: true,
			RefereeRewards: []referral.Wallet{{CurrencyID: "coins", Amount: 5}}},
		{TenantID: tenant, Name: "Deposit", QualifyingEvent: "deposit.completed", Active: true,
			ReferrerRewards: []referral.Wallet{{CurrencyID: "points", Amount: 100}},
			RefereeRewards:  []referral.Wallet{{CurrencyID: "points", Amount: 50}}},
	} {
		if _, err := s.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil); err != nil {
		t.Fatal(err)
	}
	recordRiskSignals(t, s, tenant, clock.t, riskSignal{user: "alice", device: "phone"}, riskSignal{user: "bob", device: "phone"})
	ref, out, err := s.ApplyCode(ctx, tenant, "bob", "ALICE1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ref.Held() || out.Status != referral.EventDeferred || len(out.Rewards) != 0 {
		t.Fatalf("apply: referral %+v, outcome %+v; want held with referral.applied deferred", ref.Review, out)
	}
	return heldFixture{s: s, clock: clock, tenant: tenant, ref: ref, applied: out}
}

func (f heldFixture) event(t *testing.T, id string, at time.Time) referral.EventOutcome {
	t.Helper()
	out, err := f.s.ProcessEvent(context.Background(), referral.Event{TenantID: f.tenant, EventID: id,
		Type: "deposit.completed", UserID: "bob", OccurredAt: at, Payload: json.RawMessage(`{"amount": 10}`)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f heldFixture) rewards(t *testing.T) []referral.Reward {
	t.Helper()
	rs, _, err := f.s.ListRewards(context.Background(), f.tenant, referral.RewardLedgerFilter{Ascending: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestReviewApproveReplaysOnce: a held referral's events are deferred (and their repeats
// answer deferred); eight concurrent approvals process them exactly once, in occurred_at order
// with their own occurred_at (referral.applied converts it as of its creation; the earlier
// deposit, received second, is the one the deposit campaign pays), and the others answer INVALID_TRANSITION; afterwards repeats are
// duplicates and new events pay as usual.
func TestReviewApproveReplaysOnce(t *testing.T) {
	f := newHeldFixture(t)
	ctx := context.Background()
	created := f.ref.CreatedAt
	late, early := created.Add(2*time.Minute), created.Add(time.Minute)
	f.clock.t = created.Add(3 * time.Minute)
	// Received late first, early second: the replay goes by occurred_at.
	for _, ev := range []struct {
		id string
		at time.Time
	}{{"dep_late", late}, {"dep_early", early}, {"dep_late", late}} {
		if out := f.event(t, ev.id, ev.at); out.Status != referral.EventDeferred || len(out.Rewards) != 0 {
			t.Fatalf("%s: %+v, want deferred with nothing paid", ev.id, out)
		}
	}
	if rs := f.rewards(t); len(rs) != 0 {
		t.Fatalf("a held referral earned %+v", rs)
	}
	held, _, err := f.s.ListReferrals(ctx, f.tenant, referral.ReferralFilter{Review: ptr(referral.ReviewHeld), Limit: 10})
	if err != nil || len(held) != 1 || held[0].ID != f.ref.ID {
		t.Fatalf("review=held lists %+v (%v)", held, err)
	}

	const approvers = 8
	var wg sync.WaitGroup
	errs := make([]error, approvers)
	outs := make([]referral.Referral, approvers)
	for i := range approvers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = f.s.ReviewReferral(ctx, f.tenant, f.ref.ID, referral.DecisionApprove, ptr("checked"))
		}()
	}
	wg.Wait()
	approved := 0
	for i, err := range errs {
		switch {
		case err == nil:
			approved++
			if r := outs[i]; r.Review.State != referral.ReviewApproved || *r.Review.Note != "checked" || r.Status != referral.StatusConverted ||
				!r.ConvertedAt.Equal(created) || r.Review.ReviewedAt == nil {
				t.Errorf("approved referral %+v review %+v", r, r.Review)
			}
		case referral.ErrorCode(err) != referral.EInvalidTransition:
			t.Errorf("approval %d: %v", i, err)
		}
	}
	if approved != 1 {
		t.Fatalf("%d approvals succeeded, want 1", approved)
	}
	type row struct {
		event, user, role, currency string
		amount                      int64
	}
	var got []row
	for _, r := range f.rewards(t) {
		got = append(got, row{r.EventID, r.UserID, r.Role, r.CurrencyID, r.Amount})
	}
	applied := "referral.applied:" + f.ref.ID.String()
	want := []row{
		{applied, "bob", referral.RoleReferee, "coins", 5},
		{"dep_early", "bob", referral.RoleReferee, "points", 50},
		{"dep_early", "alice", referral.RoleReferrer, "points", 100},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ledger after approval\n got %v\nwant %v", got, want)
	}
	if out := f.event(t, "dep_early", early); out.Status != referral.EventDuplicate || len(out.Rewards) != 2 {
		t.Fatalf("repeat after approval: %+v, want duplicate of the replayed outcome", out)
	}
	if out := f.event(t, "dep_late", late); out.Status != referral.EventDuplicate || len(out.Rewards) != 0 {
		t.Fatalf("repeat of the second deposit: %+v, want duplicate paying nothing (campaign paid once)", out)
	}
	if out := f.event(t, "dep_new", f.clock.t); out.Status != referral.EventProcessed {
		t.Fatalf("new event after approval: %+v", out)
	}
}

// TestReviewRejectPaysNothing: rejecting a held referral makes it rejected, its deferred events
// (referral.applied included) earn nothing, their repeats are plain duplicates, and a second
// review is refused.
func TestReviewRejectPaysNothing(t *testing.T) {
	f := newHeldFixture(t)
	ctx := context.Background()
	at := f.ref.CreatedAt.Add(time.Minute)
	f.clock.t = at
	if out := f.event(t, "dep_1", at); out.Status != referral.EventDeferred {
		t.Fatalf("deposit: %+v, want deferred", out)
	}
	// What the reversal path asks: which originals wait for which held referral.
	if got, err := f.s.DeferredOriginals(ctx, f.tenant, []string{"dep_1", "unknown"}); err != nil || len(got) != 1 || got["dep_1"] != f.ref.ID {
		t.Fatalf("deferred originals %v (%v), want dep_1 under the held referral", got, err)
	}
	if _, err := f.s.SetReferralStatus(ctx, f.tenant, f.ref.ID, referral.StatusRejected, nil); referral.ErrorCode(err) != referral.EInvalidTransition {
		t.Fatalf("status change of a held referral: %v, want INVALID_TRANSITION (the review decides)", err)
	}
	r, err := f.s.ReviewReferral(ctx, f.tenant, f.ref.ID, referral.DecisionReject, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != referral.StatusRejected || r.Review.State != referral.ReviewRejected || r.RejectedAt == nil {
		t.Fatalf("rejected referral %+v review %+v", r, r.Review)
	}
	for _, id := range []string{"dep_1", "dep_2"} {
		if out := f.event(t, id, at); len(out.Rewards) != 0 || out.Status == referral.EventDeferred {
			t.Fatalf("%s after the rejection: %+v", id, out)
		}
	}
	if out := f.event(t, "dep_1", at); out.Status != referral.EventDuplicate {
		t.Fatalf("repeat of a deferred event after rejection: %s, want duplicate", out.Status)
	}
	if rs := f.rewards(t); len(rs) != 0 {
		t.Fatalf("a rejected referral earned %+v", rs)
	}
	if got, err := f.s.DeferredOriginals(ctx, f.tenant, []string{"dep_1"}); err != nil || len(got) != 0 {
		t.Fatalf("deferred originals after the review: %v (%v), want none", got, err)
	}
	if _, err := f.s.ReviewReferral(ctx, f.tenant, f.ref.ID, referral.DecisionApprove, nil); referral.ErrorCode(err) != referral.EInvalidTransition {
		t.Fatalf("second review: %v, want INVALID_TRANSITION", err)
	}
	if _, err := f.s.ReviewReferral(ctx, "other-"+f.tenant, f.ref.ID, referral.DecisionApprove, nil); referral.ErrorCode(err) != referral.ENotFound {
		t.Fatalf("review from another tenant: %v, want NOT_FOUND", err)
	}
}

// TestReviewBatchDefersOnlyTheHeld: in one batch, the held referee's event is deferred (and so
// is its repeat inside the batch) while another referee's event is processed; simulating the
// held referee's event answers deferred and writes nothing.
func TestReviewBatchDefersOnlyTheHeld(t *testing.T) {
	f := newHeldFixture(t)
	ctx := context.Background()
	if _, _, err := f.s.ApplyCode(ctx, f.tenant, "carol", "ALICE1", nil, nil); err != nil {
		t.Fatal(err)
	}
	at := f.clock.t.Add(time.Minute)
	f.clock.t = at
	dep := func(id, user string) referral.Event {
		return referral.Event{TenantID: f.tenant, EventID: id, Type: "deposit.completed", UserID: user, OccurredAt: at,
			Payload: json.RawMessage(`{}`)}
	}
	sim, err := f.s.Simulate(ctx, dep("sim_bob", "bob"))
	if err != nil || sim.Status != referral.EventDeferred || len(sim.Rewards) != 0 {
		t.Fatalf("simulate for bob: %+v (%v), want deferred", sim, err)
	}
	outs, err := f.s.ProcessBatch(ctx, f.tenant, []referral.Event{dep("b1", "bob"), dep("c1", "carol"), dep("b1", "bob")})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{outs[0].Status, outs[1].Status, outs[2].Status}
	if !slices.Equal(got, []string{referral.EventDeferred, referral.EventProcessed, referral.EventDeferred}) || len(outs[1].Rewards) == 0 {
		t.Fatalf("batch statuses %v (carol's rewards %d)", got, len(outs[1].Rewards))
	}
	r, err := f.s.ReviewReferral(ctx, f.tenant, f.ref.ID, referral.DecisionApprove, nil)
	if err != nil || r.Status != referral.StatusConverted {
		t.Fatalf("approve: %+v, %v", r, err)
	}
	var bob int
	for _, rw := range f.rewards(t) {
		if rw.UserID == "bob" && rw.EventID == "b1" {
			bob++
		}
		if rw.EventID == "sim_bob" {
			t.Fatalf("the simulated event was replayed: %+v", rw)
		}
	}
	if bob != 1 {
		t.Fatalf("bob has %d rewards for b1 after approval, want 1", bob)
	}
}

// TestReviewEventsDuringApproval: events of the held referee arrive while an approval runs
// (and repeats of them); afterwards none is left deferred, each was processed exactly once —
// replayed by the approval or processed after it — and the deposit campaign paid once.
func TestReviewEventsDuringApproval(t *testing.T) {
	f := newHeldFixture(t)
	ctx := context.Background()
	at := f.ref.CreatedAt.Add(time.Minute)
	f.clock.t = at.Add(time.Minute)
	const events = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*events+1)
	start := make(chan struct{})
	for i := range events {
		for range 2 { // each event twice, concurrently
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := f.s.ProcessEvent(ctx, referral.Event{TenantID: f.tenant, EventID: "dep_" + strconv.Itoa(i),
					Type: "deposit.completed", UserID: "bob", OccurredAt: at.Add(time.Duration(i) * time.Millisecond), Payload: json.RawMessage(`{}`)})
				errs <- err
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		_, err := f.s.ReviewReferral(ctx, f.tenant, f.ref.ID, referral.DecisionApprove, nil)
		errs <- err
	}()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var left, deferred int
	if err := f.s.DB().GetContext(ctx, &left, `SELECT count(*) FROM events WHERE tenant_id = $1 AND outcome ? 'deferred'`, f.tenant); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DB().GetContext(ctx, &deferred, `SELECT count(*) FROM deferred_events WHERE tenant_id = $1`, f.tenant); err != nil {
		t.Fatal(err)
	}
	if left != 0 || deferred != 0 {
		t.Fatalf("%d events still deferred (%d waiting) after the approval", left, deferred)
	}
	var points int
	for _, r := range f.rewards(t) {
		if r.CurrencyID == "points" {
			points++
		}
	}
	if points != 2 {
		t.Fatalf("%d points rows, want the deposit campaign's two, once", points)
	}
	for i := range events {
		out, err := f.s.ProcessEvent(ctx, referral.Event{TenantID: f.tenant, EventID: "dep_" + strconv.Itoa(i),
			Type: "deposit.completed", UserID: "bob", OccurredAt: at, Payload: json.RawMessage(`{}`)})
		if err != nil || out.Status != referral.EventDuplicate {
			t.Fatalf("repeat of dep_%d: %+v, %v", i, out, err)
		}
	}
}

// TestReviewDefersCommissionsAndCounters: the referrer is an active affiliate; a held referee's
// deposit moves no counter and earns no commission until the approval, which earns both once.
func TestReviewDefersCommissionsAndCounters(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	aff, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "partner", AffiliateCode: "PARTNER1",
		Status: referral.AffiliateActive})
	if err != nil {
		t.Fatal(err)
	}
	rate, _ := referral.ParseRate("0.1")
	if _, err := s.CreateCommissionRule(ctx, referral.CommissionRule{TenantID: tenant, Name: "Deposits", EventType: "deposit.completed",
		CommissionField: "amount", CustomRate: &rate, CurrencyID: "EUR", Active: true}); err != nil {
		t.Fatal(err)
	}
	recordRiskSignals(t, s, tenant, clock.t, riskSignal{user: "partner", device: "pc"}, riskSignal{user: "gus", device: "pc"})
	ref, _, err := s.ApplyCode(ctx, tenant, "gus", "PARTNER1", nil, nil)
	if err != nil || !ref.Held() {
		t.Fatalf("apply: %+v, %v; want held", ref.Review, err)
	}
	clock.t = clock.t.Add(time.Minute)
	ev := referral.Event{TenantID: tenant, EventID: "dep_gus", Type: "deposit.completed", UserID: "gus", OccurredAt: clock.t,
		Payload: json.RawMessage(`{"amount": 5000}`)}
	if out, err := s.ProcessEvent(ctx, ev); err != nil || out.Status != referral.EventDeferred || len(out.Commissions) != 0 {
		t.Fatalf("deposit: %+v, %v", out, err)
	}
	commissions := func() int {
		cs, _, err := s.ListCommissions(ctx, tenant, referral.CommissionLedgerFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	if a, _ := s.GetAffiliate(ctx, tenant, aff.ID); a.RefereeRevenue != 0 || commissions() != 0 {
		t.Fatalf("while held: revenue %d, %d commissions; want none", a.RefereeRevenue, commissions())
	}
	if _, err := s.ReviewReferral(ctx, tenant, ref.ID, referral.DecisionApprove, nil); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.GetAffiliate(ctx, tenant, aff.ID); a.RefereeRevenue != 5000 || commissions() != 1 {
		t.Fatalf("after approval: revenue %d, %d commissions; want 5000 and 1", a.RefereeRevenue, commissions())
	}
}
