package referral

import "slices"

// ReferralStatuses lists every referral status, in the order of a referral's life.
var ReferralStatuses = []string{StatusPending, StatusConverted, StatusVerified, StatusRejected}

// MaxReasonLength bounds, in characters, the reason an admin gives for a status change.
const MaxReasonLength = 1000

// Successful reports whether a referral of the status counts as successful in stats, on the
// leaderboard and towards an affiliate's converted_referrals: converted or verified (§4.4,
// §5.4). PostgreSQL's phoenix_successful (migration 00004) is the same rule for queries.
func Successful(status string) bool {
	return status == StatusConverted || status == StatusVerified
}

// referralTransitions lists the status changes an admin may make (§4.4); conversion is the
// event engine's, never an admin's.
var referralTransitions = map[string][]string{
	StatusPending:   {StatusRejected},
	StatusConverted: {StatusVerified, StatusRejected},
	StatusVerified:  {StatusRejected},
}

// CheckTransition reports whether an admin may move a referral from status from to status to.
// Errors: INVALID_TRANSITION.
func CheckTransition(from, to string) error {
	if slices.Contains(referralTransitions[from], to) {
		return nil
	}
	return Errorf(EInvalidTransition, "a %s referral cannot become %s", from, to)
}
