package referral

import "github.com/google/uuid"

// EffectiveTier returns an affiliate's tier (§5.4): the override when it names one of tiers,
// else the tier with the highest priority (ties: higher commission rate, then older, then
// smaller id) whose thresholds the counters meet; nil when none qualifies.
func EffectiveTier(tiers []Tier, override *uuid.UUID, convertedReferrals, refereeRevenue int64) *Tier {
	if override != nil {
		for i := range tiers {
			if tiers[i].ID == *override {
				return &tiers[i]
			}
		}
	}
	var best *Tier
	for i := range tiers {
		t := &tiers[i]
		if t.MinReferrals > convertedReferrals || t.MinRefereeRevenue > refereeRevenue {
			continue
		}
		if best == nil || tierBefore(t, best) {
			best = t
		}
	}
	return best
}

// tierBefore orders tiers by preference: priority desc, commission rate desc, created_at asc, id.
func tierBefore(a, b *Tier) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if a.CommissionRate != b.CommissionRate {
		return a.CommissionRate > b.CommissionRate
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID.String() < b.ID.String()
}

// NextTier returns the tier an affiliate would reach next: among tiers ranked above current (by
// the same preference order) whose thresholds are not yet met, the one needing the least further
// progress, with how many referrals and how much revenue remain. nil when there is none.
func NextTier(tiers []Tier, current *Tier, convertedReferrals, refereeRevenue int64) (next *Tier, remainingReferrals, remainingRevenue int64) {
	for i := range tiers {
		t := &tiers[i]
		if current != nil && (t.ID == current.ID || !tierBefore(t, current)) {
			continue
		}
		if t.MinReferrals <= convertedReferrals && t.MinRefereeRevenue <= refereeRevenue {
			continue
		}
		if next == nil || t.MinReferrals < next.MinReferrals ||
			(t.MinReferrals == next.MinReferrals && t.MinRefereeRevenue < next.MinRefereeRevenue) {
			next = t
		}
	}
	if next == nil {
		return nil, 0, 0
	}
	return next, max(0, next.MinReferrals-convertedReferrals), max(0, next.MinRefereeRevenue-refereeRevenue)
}
