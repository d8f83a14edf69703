package referral

import (
	"errors"
	"slices"
	"testing"
)

func TestEvaluateRisk(t *testing.T) {
	def := DefaultRiskPolicy("t")
	strict := RiskPolicy{Active: true, SameDevice: RiskReject, SameAddress: RiskHold, AddressWindowHours: 24,
		Velocity: &Velocity{MaxReferrals: 3, PerHours: 1, Action: RiskHold}}
	off := strict
	off.Active = false
	velocityReject := def
	velocityReject.Velocity = &Velocity{MaxReferrals: 2, PerHours: 24, Action: RiskReject}
	allowAll := RiskPolicy{Active: true, SameDevice: RiskAllow, SameAddress: RiskAllow, AddressWindowHours: 1,
		Velocity: &Velocity{MaxReferrals: 1, PerHours: 1, Action: RiskAllow}}
	all := RiskFacts{SameDevice: true, SameAddress: true, RecentReferrals: 10}
	tests := []struct {
		name    string
		p       RiskPolicy
		f       RiskFacts
		action  string
		reasons []string
	}{
		{"default, nothing matched", def, RiskFacts{}, RiskAllow, nil},
		{"default, same device holds", def, RiskFacts{SameDevice: true}, RiskHold, []string{ReasonSameDevice}},
		{"default, same address allows", def, RiskFacts{SameAddress: true}, RiskAllow, nil},
		{"default, no velocity limit", def, RiskFacts{RecentReferrals: 1000}, RiskAllow, nil},
		{"strictest wins: reject over hold", strict, all, RiskReject, []string{ReasonSameDevice, ReasonSameAddress, ReasonVelocity}},
		{"hold from address alone", strict, RiskFacts{SameAddress: true}, RiskHold, []string{ReasonSameAddress}},
		{"velocity below the limit", strict, RiskFacts{RecentReferrals: 2}, RiskAllow, nil},
		{"velocity at the limit", strict, RiskFacts{RecentReferrals: 3}, RiskHold, []string{ReasonVelocity}},
		{"velocity rejects over a device hold", velocityReject, RiskFacts{SameDevice: true, RecentReferrals: 2}, RiskReject, []string{ReasonSameDevice, ReasonVelocity}},
		{"inactive policy allows all", off, all, RiskAllow, nil},
		{"allow actions give no reasons", allowAll, all, RiskAllow, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EvaluateRisk(tt.p, tt.f)
			if got.Action != tt.action || !slices.Equal(got.Reasons, tt.reasons) {
				t.Errorf("EvaluateRisk = %+v, want %s %v", got, tt.action, tt.reasons)
			}
		})
	}
}

func TestRiskPolicyValidate(t *testing.T) {
	ok := DefaultRiskPolicy("t")
	if err := ok.Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	tests := []struct {
		name   string
		edit   func(*RiskPolicy)
		fields []string
	}{
		{"unknown action", func(p *RiskPolicy) { p.SameDevice = "block" }, []string{"same_device"}},
		{"empty action", func(p *RiskPolicy) { p.SameAddress = "" }, []string{"same_address"}},
		{"window 0", func(p *RiskPolicy) { p.AddressWindowHours = 0 }, []string{"address_window_hours"}},
		{"window 721", func(p *RiskPolicy) { p.AddressWindowHours = 721 }, []string{"address_window_hours"}},
		{"window 720", func(p *RiskPolicy) { p.AddressWindowHours = 720 }, nil},
		{"velocity bounds", func(p *RiskPolicy) { p.Velocity = &Velocity{MaxReferrals: 0, PerHours: 721, Action: "x"} },
			[]string{"velocity.max_referrals", "velocity.per_hours", "velocity.action"}},
		{"velocity ok", func(p *RiskPolicy) { p.Velocity = &Velocity{MaxReferrals: 5, PerHours: 24, Action: RiskReject} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			err := p.Validate()
			var e *Error
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.As(err, &e) || e.Code != EValidation {
				t.Fatalf("Validate = %v, want VALIDATION_FAILED", err)
			}
			var got []string
			for k := range e.Fields {
				got = append(got, k)
			}
			slices.Sort(got)
			want := slices.Clone(tt.fields)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("fields %v, want %v", got, want)
			}
		})
	}
}

func TestRiskRejectionIsGeneric(t *testing.T) {
	err := error(&RiskRejection{Reasons: []string{ReasonSameDevice}})
	var e *Error
	if !errors.As(err, &e) || e.Code != ERiskRejected {
		t.Fatalf("errors.As = %v, want RISK_REJECTED", err)
	}
	if e.Message != "the referral was not accepted" {
		t.Errorf("client message %q names more than a generic refusal", e.Message)
	}
}

func TestReviewStates(t *testing.T) {
	held := Referral{Review: &Review{State: ReviewHeld}}
	for _, r := range []Referral{{}, {Review: &Review{State: ReviewApproved}}, {Review: &Review{State: ReviewRejected}}} {
		if r.Held() || ErrorCode(CheckReview(r)) != EInvalidTransition {
			t.Errorf("review %+v: Held %v, CheckReview %v", r.Review, r.Held(), CheckReview(r))
		}
	}
	if !held.Held() || CheckReview(held) != nil {
		t.Errorf("held referral: Held %v, CheckReview %v", held.Held(), CheckReview(held))
	}
}

func TestCheckStatusChange(t *testing.T) {
	held := Referral{Status: StatusPending, Review: &Review{State: ReviewHeld}}
	if ErrorCode(CheckStatusChange(held, StatusRejected)) != EInvalidTransition {
		t.Error("a held referral's status changed outside its review")
	}
	approved := Referral{Status: StatusConverted, Review: &Review{State: ReviewApproved}}
	if err := CheckStatusChange(approved, StatusVerified); err != nil {
		t.Errorf("approved converted → verified: %v", err)
	}
	if ErrorCode(CheckStatusChange(Referral{Status: StatusPending}, StatusVerified)) != EInvalidTransition {
		t.Error("pending → verified allowed")
	}
}

func TestValidDeviceID(t *testing.T) {
	long := string(make([]rune, 129))
	for s, want := range map[string]bool{"dev-1": true, "": false, "a\x00b": false, "a\nb": false,
		"\xff": false, long: false, "é设备": true} {
		if got := ValidDeviceID(s); got != want {
			t.Errorf("ValidDeviceID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	for s, want := range map[string]string{"203.0.113.7": "203.0.113.7", "::ffff:203.0.113.7": "203.0.113.7",
		"2001:db8::1": "2001:db8::1", "fe80::1%eth0": "", "nonsense": "", "": ""} {
		a, ok := ParseAddress(s)
		if (want == "") == ok || (ok && a.String() != want) {
			t.Errorf("ParseAddress(%q) = %v %v, want %q", s, a, ok, want)
		}
	}
}

func TestEngineDefersHeldReferral(t *testing.T) {
	c := Campaign{ID: [16]byte{1}, QualifyingEvent: "deposit", Active: true,
		ReferrerRewards: []Wallet{{CurrencyID: "pts", Amount: 10}}}
	ref := "alice"
	rs := &ReferralState{Referral: Referral{ID: [16]byte{2}, ReferrerID: &ref, RefereeID: "bob", Status: StatusPending,
		Review: &Review{State: ReviewHeld, Reasons: []string{ReasonSameDevice}}}}
	e := &Engine{Campaigns: []Campaign{c}, Referrals: map[string]*ReferralState{"bob": rs}}
	ev := Event{EventID: "e1", Type: "deposit", UserID: "bob", OccurredAt: rs.Referral.CreatedAt}
	if d := e.Decide(ev, nil); !d.Deferred || len(d.Rewards) != 0 || d.Converted {
		t.Fatalf("held: %+v, want deferred with nothing paid", d)
	}
	rs.Referral.Review.State = ReviewApproved
	if d := e.Decide(ev, nil); d.Deferred || len(d.Rewards) != 1 || !d.Converted {
		t.Fatalf("approved: %+v, want paid and converted", d)
	}
}
