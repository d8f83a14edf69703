package referral

import (
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
)

// MaxMilestones bounds how many milestones one campaign may define (§13).
const MaxMilestones = 20

// Milestone pays a campaign's referrer Rewards once, when the referrer's count of successful
// referrals attributed to the campaign reaches SuccessfulReferrals (§13).
type Milestone struct {
	SuccessfulReferrals int
	Rewards             []Wallet
}

// ValidateMilestones checks a campaign's milestones: at most MaxMilestones, each threshold at
// least 1 and strictly greater than the one before. It adds each failure to fe under field
// ("milestones", "milestones[2].successful_referrals"). Rewards are checked by the caller with
// the campaign's other rewards.
func ValidateMilestones(fe FieldErrors, field string, ms []Milestone) {
	if len(ms) > MaxMilestones {
		fe.Add(field, fmt.Sprintf("must hold at most %d milestones", MaxMilestones))
		return
	}
	prev := 0
	for i, m := range ms {
		f := fmt.Sprintf("%s[%d].successful_referrals", field, i)
		switch {
		case m.SuccessfulReferrals < 1 || m.SuccessfulReferrals > math.MaxInt32:
			fe.Add(f, "must be an integer from 1 to 2147483647")
		case m.SuccessfulReferrals <= prev:
			fe.Add(f, "must be greater than the threshold before it (thresholds strictly increase)")
		}
		prev = max(prev, m.SuccessfulReferrals)
	}
}

// MilestonesReached returns the milestones of ms (in order) whose threshold count has reached
// and that paid has not recorded yet: what a referrer whose count just became count is owed.
// A threshold added after the referrer passed it is therefore paid at the next success.
func MilestonesReached(ms []Milestone, count int64, paid map[int]bool) []Milestone {
	var out []Milestone
	for _, m := range ms {
		if int64(m.SuccessfulReferrals) <= count && !paid[m.SuccessfulReferrals] {
			out = append(out, m)
		}
	}
	return out
}

// MilestoneProgress is one milestone as a referrer's stats show it (§13): the campaign and the
// threshold, when it was paid to the referrer (nil: not yet) and the referrer's current count of
// successful referrals attributed to the campaign.
type MilestoneProgress struct {
	CampaignID          uuid.UUID
	SuccessfulReferrals int
	ReachedAt           *time.Time
	Progress            int64
}
