package queryapi

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestQryValidate runs GET /v1/referral/validate/{code} over the world for players (the check
// order of SPEC §4.3, first failure wins) and visitors (existence, active, expiry and
// exhaustion only), and checks which failures count against the caller's attempt limit.
func TestQryValidate(t *testing.T) {
	w := qryNewWorld(t)
	e, _ := w.serve(Config{Attempts: referral.AttemptLimit{Max: 3, Window: time.Minute},
		Visitors: referral.AttemptLimit{Max: 100, Window: time.Minute}})
	for _, c := range []struct {
		user, code string // user "" is a visitor
		answered   string // the code as answered: normalised when it can be
		reason     string // "" when valid
		referrer   string
		campaigns  string
	}{
		{"nina", "NOPE1", "NOPE1", referral.ECodeNotFound, "", "[]"},
		{"nina", "no!", "no!", referral.ECodeNotFound, "", "[]"},
		{"alice", "INACTIVE1", "INACTIVE1", referral.ECodeInactive, "alice", "[]"}, // inactive before self-referral
		{"nina", "EXPIRED1", "EXPIRED1", referral.ECodeExpired, "", "[]"},
		{"alice", "ALICE1", "ALICE1", referral.ESelfReferral, "alice", "[]"},
		{"bob", "PARTNER1", "PARTNER1", referral.EAlreadyReferred, "partner", "[]"},
		{"alice", "BOB1", "BOB1", referral.EReferralCycle, "bob", "[]"}, // a ring before exhaustion
		{"gus", "BOB1", "BOB1", referral.ECodeExhausted, "bob", "[]"},
		{"zed", "%20alice1", "ALICE1", "", "alice", "[Bound Welcome]"},
		{"zed", "BOUND1", "BOUND1", "", "", "[Bound]"},
		// Visitors: no caller, so neither self-referral nor ring nor an earlier referral.
		{"", "NOPE1", "NOPE1", referral.ECodeNotFound, "", "[]"},
		{"", "INACTIVE1", "INACTIVE1", referral.ECodeInactive, "alice", "[]"},
		{"", "BOB1", "BOB1", referral.ECodeExhausted, "bob", "[]"},
		{"", "ALICE1", "ALICE1", "", "alice", "[Bound Welcome]"},
	} {
		target := "/v1/referral/validate/" + c.code
		if c.user == "" {
			target += "?tenant_id=" + w.tenant
		}
		var got apishape.Validation
		w.read(e, target, c.user, &got)
		reason, referrer := "", ""
		if got.Reason != nil {
			reason = *got.Reason
		}
		if got.ReferrerID != nil {
			referrer = *got.ReferrerID
		}
		var campaigns []string
		for _, cp := range got.Campaigns {
			campaigns = append(campaigns, cp.Name)
		}
		slices.Sort(campaigns)
		if got.Valid != (c.reason == "") || got.Code != c.answered || reason != c.reason || referrer != c.referrer ||
			fmt.Sprint(campaigns) != c.campaigns {
			t.Errorf("%q validating %q: %+v (reason %q, referrer %q, campaigns %v), want code %q, reason %q, referrer %q, campaigns %s",
				c.user, c.code, got, reason, referrer, campaigns, c.answered, c.reason, c.referrer, c.campaigns)
		}
	}

	// Only CODE_NOT_FOUND, CODE_INACTIVE and CODE_EXPIRED count: nina has used her 3 attempts,
	// alice 1 of hers.
	for user, failures := range map[string]int{"nina": 3, "alice": 1, "bob": 0, "gus": 0, "zed": 0} {
		if n := qryFailuresOf(t, w.db, "player:"+user); n != failures {
			t.Errorf("%s: %d failed attempts recorded, want %d", user, n, failures)
		}
	}
	rec := w.get(e, "/v1/referral/validate/ALICE1", "nina")
	if rec.Code != http.StatusTooManyRequests || qryErrorCode(rec) != referral.ERateLimited || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %s", rec.Code, rec.Body)
	}
	w.read(e, "/v1/referral/validate/ALICE1", "alice", nil)

	// A visitor must name a valid tenant.
	for target, code := range map[string]string{
		"/v1/referral/validate/ALICE1":                     referral.ETenantRequired,
		"/v1/referral/validate/ALICE1?tenant_id=no%20such": referral.EValidation,
	} {
		if rec := w.get(e, target, ""); rec.Code != http.StatusBadRequest || qryErrorCode(rec) != code {
			t.Errorf("%s: %d %s, want 400 %s", target, rec.Code, rec.Body, code)
		}
	}
}
