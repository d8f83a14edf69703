package apishape

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Wallet is one reward in one currency.
type Wallet struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// Rewards is a campaign's rewards object: only "wallet" is defined.
type Rewards struct {
	Wallet []Wallet `json:"wallet"`
}

// NewRewards converts a campaign's wallet rewards.
func NewRewards(ws []referral.Wallet) Rewards {
	return Rewards{Wallet: Slice(ws, func(w referral.Wallet) Wallet {
		return Wallet{CurrencyID: w.CurrencyID, Amount: w.Amount}
	})}
}

// Campaign is a campaign as the Admin Gateway shows it (SPEC §4.1).
type Campaign struct {
	ID               uuid.UUID        `json:"id"`
	TenantID         string           `json:"tenant_id"`
	Name             string           `json:"name"`
	QualifyingEvent  string           `json:"qualifying_event"`
	QualifyingFilter *referral.Filter `json:"qualifying_filter"`
	ReferrerRewards  Rewards          `json:"referrer_rewards"`
	RefereeRewards   Rewards          `json:"referee_rewards"`
	Active           bool             `json:"active"`
	StartsAt         *Time            `json:"starts_at"`
	EndsAt           *Time            `json:"ends_at"`
	Clawback         bool             `json:"clawback"`
	Milestones       []Milestone      `json:"milestones"`
	CreatedAt        Time             `json:"created_at"`
	UpdatedAt        Time             `json:"updated_at"`
}

// NewCampaign converts a campaign.
func NewCampaign(c referral.Campaign) Campaign {
	return Campaign{
		ID: c.ID, TenantID: c.TenantID, Name: c.Name, QualifyingEvent: c.QualifyingEvent,
		QualifyingFilter: c.QualifyingFilter, ReferrerRewards: NewRewards(c.ReferrerRewards),
		RefereeRewards: NewRewards(c.RefereeRewards), Active: c.Active,
		StartsAt: TimePtr(c.StartsAt), EndsAt: TimePtr(c.EndsAt), Clawback: c.Clawback, Milestones: NewMilestones(c.Milestones),
		CreatedAt: Time(c.CreatedAt), UpdatedAt: Time(c.UpdatedAt),
	}
}

// PublicCampaign is a campaign's public fields, as the Query Gateway shows them to players and
// visitors (SPEC §6).
type PublicCampaign struct {
	ID              uuid.UUID `json:"id"`
	Name            string    `json:"name"`
	QualifyingEvent string    `json:"qualifying_event"`
	ReferrerRewards Rewards   `json:"referrer_rewards"`
	RefereeRewards  Rewards   `json:"referee_rewards"`
	StartsAt        *Time     `json:"starts_at"`
	EndsAt          *Time     `json:"ends_at"`
}

// NewPublicCampaign converts a campaign to its public fields.
func NewPublicCampaign(c referral.Campaign) PublicCampaign {
	return PublicCampaign{ID: c.ID, Name: c.Name, QualifyingEvent: c.QualifyingEvent,
		ReferrerRewards: NewRewards(c.ReferrerRewards), RefereeRewards: NewRewards(c.RefereeRewards),
		StartsAt: TimePtr(c.StartsAt), EndsAt: TimePtr(c.EndsAt)}
}

// Code is a referral code (SPEC §4.2).
type Code struct {
	ID          uuid.UUID  `json:"id"`
	TenantID    string     `json:"tenant_id"`
	Code        string     `json:"code"`
	OwnerUserID *string    `json:"owner_user_id"`
	CampaignID  *uuid.UUID `json:"campaign_id"`
	UsageLimit  *int       `json:"usage_limit"`
	Uses        int        `json:"uses"`
	Active      bool       `json:"active"`
	ExpiresAt   *Time      `json:"expires_at"`
	CreatedAt   Time       `json:"created_at"`
	UpdatedAt   Time       `json:"updated_at"`
	// ReferralURL is present when PHOENIX_REFERRAL_URL_TEMPLATE is set; it is filled when the
	// answer is rendered (see WithReferralURL), never stored.
	ReferralURL string `json:"referral_url,omitempty"`
}

// NewCode converts a code (without its referral_url).
func NewCode(c referral.Code) Code {
	return Code{ID: c.ID, TenantID: c.TenantID, Code: c.Code, OwnerUserID: c.OwnerUserID,
		CampaignID: c.CampaignID, UsageLimit: c.UsageLimit, Uses: c.Uses, Active: c.Active,
		ExpiresAt: TimePtr(c.ExpiresAt), CreatedAt: Time(c.CreatedAt), UpdatedAt: Time(c.UpdatedAt)}
}

// Domain converts a code read back from the read model to the domain, for the apply-code checks
// (referral.CheckApply). Source and Generated are not part of the shape and stay zero.
func (c Code) Domain() referral.Code {
	return referral.Code{ID: c.ID, TenantID: c.TenantID, Code: c.Code, OwnerUserID: c.OwnerUserID,
		CampaignID: c.CampaignID, UsageLimit: c.UsageLimit, Uses: c.Uses, Active: c.Active,
		ExpiresAt: (*time.Time)(c.ExpiresAt), CreatedAt: time.Time(c.CreatedAt), UpdatedAt: time.Time(c.UpdatedAt)}
}

// WithReferralURL returns the code with its referral_url rendered from template (none when the
// template is empty).
func (c Code) WithReferralURL(template string) Code {
	c.ReferralURL = referral.ReferralURL(template, c.Code)
	return c
}

// Claim is one referral made with a code, as code stats list it.
type Claim struct {
	ReferralID uuid.UUID `json:"referral_id"`
	RefereeID  string    `json:"referee_id"`
	Status     string    `json:"status"`
	ClaimedAt  Time      `json:"claimed_at"`
}

// CodeStats is the answer of GET /v1/referral/codes/{id}/stats: the code and one page of its
// claims.
type CodeStats struct {
	Code        Code    `json:"code"`
	TotalClaims int     `json:"total_claims"`
	Claims      []Claim `json:"claims"`
	Limit       int     `json:"limit"`
	Offset      int     `json:"offset"`
	// Impressions counts every impression recorded of the code (SPEC §15).
	Impressions int64 `json:"impressions"`
}

// Referral is a referral (SPEC §4.3).
type Referral struct {
	ID          uuid.UUID       `json:"id"`
	TenantID    string          `json:"tenant_id"`
	Code        string          `json:"code"`
	CodeID      uuid.UUID       `json:"code_id"`
	CampaignID  *uuid.UUID      `json:"campaign_id"`
	ReferrerID  *string         `json:"referrer_id"`
	RefereeID   string          `json:"referee_id"`
	Status      string          `json:"status"`
	Reason      *string         `json:"reason"`
	Metadata    json.RawMessage `json:"metadata"`
	CreatedAt   Time            `json:"created_at"`
	UpdatedAt   Time            `json:"updated_at"`
	ConvertedAt *Time           `json:"converted_at"`
	VerifiedAt  *Time           `json:"verified_at"`
	RejectedAt  *Time           `json:"rejected_at"`
	// ImpressionID is the impression the referral is linked to (SPEC §15), read-only.
	ImpressionID *uuid.UUID `json:"impression_id"`
}

// NewReferral converts a referral; missing metadata renders as {}.
func NewReferral(r referral.Referral) Referral {
	meta := r.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage(`{}`)
	}
	return Referral{
		ID: r.ID, TenantID: r.TenantID, Code: r.Code, CodeID: r.CodeID, CampaignID: r.CampaignID,
		ReferrerID: r.ReferrerID, RefereeID: r.RefereeID, Status: r.Status, Reason: r.Reason,
		Metadata: meta, CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt),
		ConvertedAt: TimePtr(r.ConvertedAt), VerifiedAt: TimePtr(r.VerifiedAt),
		RejectedAt: TimePtr(r.RejectedAt), ImpressionID: r.ImpressionID,
	}
}

// AppliedReferral is the answer of apply-code: the referral plus what its referral.applied
// event paid.
type AppliedReferral struct {
	Referral
	Rewards []Reward `json:"rewards"`
}

// NewAppliedReferral converts a referral just made and the outcome of its referral.applied event.
func NewAppliedReferral(r referral.Referral, o referral.EventOutcome) AppliedReferral {
	return AppliedReferral{Referral: NewReferral(r), Rewards: Slice(o.Rewards, NewReward)}
}

// Validation is the answer of GET /v1/referral/validate/{code}.
type Validation struct {
	Valid      bool             `json:"valid"`
	Code       string           `json:"code"`
	Reason     *string          `json:"reason"`
	ReferrerID *string          `json:"referrer_id"`
	Campaigns  []PublicCampaign `json:"campaigns"`
}

// Me is the answer of GET /v1/referral/me: the referral that referred the caller, or null.
type Me struct {
	UserID   string    `json:"user_id"`
	Referral *Referral `json:"referral"`
}

// Reward is a reward ledger row (SPEC §5.2).
type Reward struct {
	ID         uuid.UUID `json:"id"`
	UserID     string    `json:"user_id"`
	Role       string    `json:"role"`
	CampaignID uuid.UUID `json:"campaign_id"`
	ReferralID uuid.UUID `json:"referral_id"`
	EventID    string    `json:"event_id"`
	CurrencyID string    `json:"currency_id"`
	Amount     int64     `json:"amount"`
	// Milestone is the threshold a milestone reward pays (role "milestone" only, SPEC §13).
	Milestone  *int       `json:"milestone,omitempty"`
	CreatedAt  Time       `json:"created_at"`
	ReversesID *uuid.UUID `json:"reverses_id"`
}

// NewReward converts a reward row.
func NewReward(r referral.Reward) Reward {
	return Reward{ID: r.ID, UserID: r.UserID, Role: r.Role, CampaignID: r.CampaignID,
		ReferralID: r.ReferralID, EventID: r.EventID, CurrencyID: r.CurrencyID, Amount: r.Amount,
		Milestone: r.Milestone, CreatedAt: Time(r.CreatedAt), ReversesID: r.ReversesID}
}

// ReferralStats is the answer of the Admin Gateway's GET /v1/referral/stats, and the counts of
// a player's stats.
type ReferralStats struct {
	Period              string  `json:"period"`
	TotalReferrals      int64   `json:"total_referrals"`
	SuccessfulReferrals int64   `json:"successful_referrals"`
	PendingReferrals    int64   `json:"pending_referrals"`
	RejectedReferrals   int64   `json:"rejected_referrals"`
	ConversionRate      float64 `json:"conversion_rate"`
}

// PlayerStats is the answer of the Query Gateway's GET /v1/referral/stats: the caller's counts
// and the rewards it earned in the period.
type PlayerStats struct {
	ReferralStats
	Rewards []Amount `json:"rewards"`
	// Milestones is the caller's progress towards the milestones of the active campaigns (all
	// time, whatever the period; SPEC §13).
	Milestones []MilestoneProgress `json:"milestones"`
	// Impressions counts the clicks and scans of the caller's codes in the period (SPEC §15).
	Impressions int64 `json:"impressions"`
}

// Amount is a total in one currency.
type Amount struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// LeaderboardRow is one leaderboard row.
type LeaderboardRow struct {
	Rank                int    `json:"rank"`
	UserID              string `json:"user_id"`
	SuccessfulReferrals int64  `json:"successful_referrals"`
	TotalReferrals      int64  `json:"total_referrals"`
}

// Leaderboard is the answer of the Admin Gateway's GET /v1/referral/leaderboard.
type Leaderboard struct {
	Period string           `json:"period"`
	Items  []LeaderboardRow `json:"items"`
}

// PlayerLeaderboard is the answer of the Query Gateway's GET /v1/referral/leaderboard: the
// leaderboard and the caller's own row (whatever the limit), or null.
type PlayerLeaderboard struct {
	Leaderboard
	Me *LeaderboardRow `json:"me"`
}
