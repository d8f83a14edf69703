package queryapi

import (
	"github.com/phoenix-referral/phoenix/pkg/cache"
)

// The response shapes of SPEC §6. Objects shared with the Admin Gateway (codes, referrals,
// rewards, commissions, affiliates, tiers) are the read-model documents of package cache, which
// are stored in exactly those shapes.

// itemsJSON is an unpaginated list.
type itemsJSON[T any] struct {
	Items []T `json:"items"`
}

// validateJSON answers GET /v1/referral/validate/{code}.
type validateJSON struct {
	Valid      bool                `json:"valid"`
	Code       string              `json:"code"`
	Reason     *string             `json:"reason"`
	ReferrerID *string             `json:"referrer_id"`
	Campaigns  []cache.CampaignDoc `json:"campaigns"`
}

// meJSON answers GET /v1/referral/me.
type meJSON struct {
	UserID   string             `json:"user_id"`
	Referral *cache.ReferralDoc `json:"referral"`
}

// amountJSON is a total in one currency.
type amountJSON struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// statsJSON answers GET /v1/referral/stats.
type statsJSON struct {
	Period              string       `json:"period"`
	TotalReferrals      int          `json:"total_referrals"`
	SuccessfulReferrals int          `json:"successful_referrals"`
	PendingReferrals    int          `json:"pending_referrals"`
	RejectedReferrals   int          `json:"rejected_referrals"`
	ConversionRate      float64      `json:"conversion_rate"`
	Rewards             []amountJSON `json:"rewards"`
}

// leaderJSON is one leaderboard row.
type leaderJSON struct {
	Rank                int    `json:"rank"`
	UserID              string `json:"user_id"`
	SuccessfulReferrals int    `json:"successful_referrals"`
	TotalReferrals      int    `json:"total_referrals"`
}

// leaderboardJSON answers GET /v1/referral/leaderboard.
type leaderboardJSON struct {
	Period string       `json:"period"`
	Items  []leaderJSON `json:"items"`
	Me     *leaderJSON  `json:"me"`
}

// nextTierJSON is the tier an affiliate reaches next, with what remains.
type nextTierJSON struct {
	cache.TierDoc
	RemainingReferrals int64 `json:"remaining_referrals"`
	RemainingRevenue   int64 `json:"remaining_revenue"`
}

// affiliateMeJSON answers GET /v1/affiliate/me.
type affiliateMeJSON struct {
	cache.AffiliateDoc
	Tier     *cache.TierDoc `json:"tier"`
	NextTier *nextTierJSON  `json:"next_tier"`
}

// downlineJSON is an affiliate under the caller's, with its level.
type downlineJSON struct {
	cache.AffiliateDoc
	Level int `json:"level"`
}

// levelAmountJSON is a commission total of one hierarchy level in one currency.
type levelAmountJSON struct {
	Level      int    `json:"level"`
	Amount     int64  `json:"amount"`
	CurrencyID string `json:"currency_id"`
}

// affiliateStatsJSON answers GET /v1/affiliate/stats.
type affiliateStatsJSON struct {
	Period             string            `json:"period"`
	Commissions        []amountJSON      `json:"commissions"`
	ByLevel            []levelAmountJSON `json:"by_level"`
	ConvertedReferrals int64             `json:"converted_referrals"`
	RefereeRevenue     int64             `json:"referee_revenue"`
	DownlineSize       int               `json:"downline_size"`
}
