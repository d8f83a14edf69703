package referral

import (
	"testing"
	"time"
)

func TestCheckApply(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	owner := "alice"
	limit := 1
	later, earlier := now.Add(time.Second), now
	code := func(edit func(*Code)) *Code {
		c := &Code{Code: "ALICE", OwnerUserID: &owner, Active: true, Uses: 0}
		if edit != nil {
			edit(c)
		}
		return c
	}
	inactive := func(c *Code) { c.Active = false }
	expired := func(c *Code) { c.ExpiresAt = &earlier }
	exhausted := func(c *Code) { c.UsageLimit, c.Uses = &limit, 1 }
	all := ApplyFacts{RefereeReferred: true, OwnerReferredByReferee: true}
	tests := []struct {
		name    string
		code    *Code
		referee string
		facts   ApplyFacts
		want    string // "" = may apply
	}{
		{"valid", code(nil), "bob", ApplyFacts{}, ""},
		{"not expired yet", code(func(c *Code) { c.ExpiresAt = &later }), "bob", ApplyFacts{}, ""},
		{"uses left", code(func(c *Code) { c.UsageLimit, c.Uses = &limit, 0 }), "bob", ApplyFacts{}, ""},
		{"admin code", code(func(c *Code) { c.OwnerUserID = nil }), "bob", ApplyFacts{}, ""},
		{"missing", nil, "bob", all, ECodeNotFound},
		{"inactive before anything else", code(func(c *Code) { inactive(c); expired(c); exhausted(c) }), "alice", all, ECodeInactive},
		{"expired at the instant", code(func(c *Code) { expired(c); exhausted(c) }), "alice", all, ECodeExpired},
		{"self before referred", code(exhausted), "alice", all, ESelfReferral},
		{"referred before cycle", code(exhausted), "bob", all, EAlreadyReferred},
		{"cycle before exhausted", code(exhausted), "bob", ApplyFacts{OwnerReferredByReferee: true}, EReferralCycle},
		{"exhausted", code(exhausted), "bob", ApplyFacts{}, ECodeExhausted},
		{"visitor: valid whatever the facts", code(nil), "", all, ""},
		{"visitor: own code cannot be told", code(nil), "", ApplyFacts{}, ""},
		{"visitor: missing", nil, "", ApplyFacts{}, ECodeNotFound},
		{"visitor: inactive", code(inactive), "", ApplyFacts{}, ECodeInactive},
		{"visitor: expired", code(expired), "", ApplyFacts{}, ECodeExpired},
		{"visitor: exhausted", code(exhausted), "", all, ECodeExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckApply(tt.code, tt.referee, tt.facts, now)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckApply = %v, want nil", err)
				}
				return
			}
			if got := ErrorCode(err); got != tt.want {
				t.Fatalf("CheckApply = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestFailedAttempt(t *testing.T) {
	counted := map[string]bool{ECodeNotFound: true, ECodeInactive: true, ECodeExpired: true, ERiskRejected: true}
	for _, code := range []string{ECodeNotFound, ECodeInactive, ECodeExpired, ERiskRejected, ESelfReferral, EAlreadyReferred,
		EReferralCycle, ECodeExhausted, EValidation, ERateLimited, EInternal, EUnavailable, ""} {
		if got := FailedAttempt(code); got != counted[code] {
			t.Errorf("FailedAttempt(%q) = %v, want %v", code, got, counted[code])
		}
	}
}
