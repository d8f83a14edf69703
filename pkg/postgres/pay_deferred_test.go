package postgres_test

import (
	"context"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestReversalOfDeferredEvent: a reversal of an event deferred for a review is deferred with it
// (its repeats answer deferred, it reverses nothing yet); approval replays the original, then
// the reversal, as a reversal; rejection drops both.
func TestReversalOfDeferredEvent(t *testing.T) {
	ctx := context.Background()
	for _, decision := range []string{referral.DecisionApprove, referral.DecisionReject} {
		t.Run(decision, func(t *testing.T) {
			f := newHeldFixture(t)
			if out := f.event(t, "dep1", f.clock.t); out.Status != referral.EventDeferred {
				t.Fatalf("dep1: %s", out.Status)
			}
			rev := referral.Event{TenantID: f.tenant, EventID: "ref1", Type: "deposit.refunded", UserID: "bob",
				OccurredAt: f.clock.t, Reverses: "dep1"}
			for range 2 {
				out, err := f.s.ProcessEvent(ctx, rev)
				if err != nil || out.Status != referral.EventDeferred || len(out.Rewards)+len(out.Commissions) != 0 {
					t.Fatalf("ref1 before the review: %+v, %v", out, err)
				}
			}
			count := func(q string) int {
				t.Helper()
				var n int
				if err := f.s.DB().Get(&n, q, f.tenant); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(`SELECT count(*) FROM event_reversals WHERE tenant_id = $1`); n != 0 {
				t.Fatalf("%d reversals processed before the review", n)
			}
			if _, err := f.s.ReviewReferral(ctx, f.tenant, f.ref.ID, decision, nil); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{referral.DecisionApprove: 1, referral.DecisionReject: 0}[decision]
			if n := count(`SELECT count(*) FROM event_reversals WHERE tenant_id = $1 AND event_id = 'ref1' AND reverses_event_id = 'dep1'`); n != want {
				t.Fatalf("%d reversals of dep1 after %s, want %d", n, decision, want)
			}
			if n := count(`SELECT count(*) FROM deferred_reversals WHERE tenant_id = $1 AND event_id = 'ref1'`); decision == referral.DecisionApprove && n != 0 {
				t.Fatalf("the replayed reversal is still kept as deferred")
			}
			out, err := f.s.ProcessEvent(ctx, rev)
			if err != nil || out.Status != referral.EventDuplicate {
				t.Fatalf("ref1 after the review: %+v, %v", out, err)
			}
			// After approval the original is reversed in full: another reversal is refused.
			out, err = f.s.ProcessEvent(ctx, referral.Event{TenantID: f.tenant, EventID: "ref2", Type: "deposit.refunded",
				UserID: "bob", OccurredAt: f.clock.t, Reverses: "dep1"})
			if decision == referral.DecisionApprove && (err != nil || out.Err == nil || out.Err.Code != referral.ENotReversible) {
				t.Fatalf("ref2 after approval: %+v, %v", out, err)
			}
		})
	}
}
