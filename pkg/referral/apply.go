package referral

import "time"

// MaxMetadataBytes bounds the metadata a player attaches to a referral, compacted (§4.3).
const MaxMetadataBytes = 4 << 10

// ApplyFacts is what storage (or the read model) knows of the players around an apply-code or a
// validation, beyond the code itself. A visitor's check uses none of it.
type ApplyFacts struct {
	// RefereeReferred reports that the referee already has a referral in the tenant.
	RefereeReferred bool
	// OwnerReferredByReferee reports that the code's owner was referred by the referee, so
	// applying the code would close an A↔B ring.
	OwnerReferredByReferee bool
}

// CheckApply runs the checks of apply-code (§4.3) in the contract's order and returns the first
// failure, or nil when referee may apply code at now. A nil code is one that does not exist in the
// tenant. An empty referee is a visitor validating a code before sign-up (§6): only existence,
// active, expiry and exhaustion are checked.
//
// Errors: CODE_NOT_FOUND, CODE_INACTIVE, CODE_EXPIRED, SELF_REFERRAL, ALREADY_REFERRED,
// REFERRAL_CYCLE, CODE_EXHAUSTED.
func CheckApply(code *Code, referee string, f ApplyFacts, now time.Time) error {
	switch {
	case code == nil:
		return Errorf(ECodeNotFound, "code not found")
	case !code.Active:
		return Errorf(ECodeInactive, "code is not active")
	case code.ExpiresAt != nil && !now.Before(*code.ExpiresAt):
		return Errorf(ECodeExpired, "code has expired")
	}
	if referee != "" {
		switch {
		case code.OwnerUserID != nil && *code.OwnerUserID == referee:
			return Errorf(ESelfReferral, "players cannot apply their own code")
		case f.RefereeReferred:
			return Errorf(EAlreadyReferred, "player has already been referred")
		case f.OwnerReferredByReferee:
			return Errorf(EReferralCycle, "the code's owner was referred by this player")
		}
	}
	if code.UsageLimit != nil && code.Uses >= *code.UsageLimit {
		return Errorf(ECodeExhausted, "code has reached its usage limit")
	}
	return nil
}

// FailedAttempt reports whether an apply or validate attempt that answered the error code
// counts against the failed-attempt limit (§4.3): the answers a guesser learns from —
// CODE_NOT_FOUND, CODE_INACTIVE and CODE_EXPIRED — and an apply the risk policy rejected
// (RISK_REJECTED, §12), so a multi-accounter cannot probe the policy without limit.
func FailedAttempt(code string) bool {
	switch code {
	case ECodeNotFound, ECodeInactive, ECodeExpired, ERiskRejected:
		return true
	}
	return false
}
