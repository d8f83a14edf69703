package cache

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// The documents below are stored as JSON in the shapes the API answers with, so that a hot read
// decodes little and renders what it read.

// WalletDoc is one reward in one currency.
type WalletDoc struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// RewardsDoc is a campaign's rewards object.
type RewardsDoc struct {
	Wallet []WalletDoc `json:"wallet"`
}

// CampaignDoc is a campaign's public fields (SPEC §6).
type CampaignDoc struct {
	ID              uuid.UUID  `json:"id"`
	Name            string     `json:"name"`
	QualifyingEvent string     `json:"qualifying_event"`
	ReferrerRewards RewardsDoc `json:"referrer_rewards"`
	RefereeRewards  RewardsDoc `json:"referee_rewards"`
	StartsAt        *web.Time  `json:"starts_at"`
	EndsAt          *web.Time  `json:"ends_at"`
}

// CodeDoc is a referral code object (SPEC §4.2).
type CodeDoc struct {
	ID          uuid.UUID  `json:"id"`
	TenantID    string     `json:"tenant_id"`
	Code        string     `json:"code"`
	OwnerUserID *string    `json:"owner_user_id"`
	CampaignID  *uuid.UUID `json:"campaign_id"`
	UsageLimit  *int       `json:"usage_limit"`
	Uses        int        `json:"uses"`
	Active      bool       `json:"active"`
	ExpiresAt   *web.Time  `json:"expires_at"`
	CreatedAt   web.Time   `json:"created_at"`
	UpdatedAt   web.Time   `json:"updated_at"`
	// ReferralURL is filled on read when PHOENIX_REFERRAL_URL_TEMPLATE is set.
	ReferralURL string `json:"referral_url,omitempty"`
}

// ReferralDoc is a referral object (SPEC §4.3).
type ReferralDoc struct {
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
	CreatedAt   web.Time        `json:"created_at"`
	UpdatedAt   web.Time        `json:"updated_at"`
	ConvertedAt *web.Time       `json:"converted_at"`
	VerifiedAt  *web.Time       `json:"verified_at"`
	RejectedAt  *web.Time       `json:"rejected_at"`
}

// RewardDoc is a reward ledger row (SPEC §5.2).
type RewardDoc struct {
	ID         uuid.UUID `json:"id"`
	UserID     string    `json:"user_id"`
	Role       string    `json:"role"`
	CampaignID uuid.UUID `json:"campaign_id"`
	ReferralID uuid.UUID `json:"referral_id"`
	EventID    string    `json:"event_id"`
	CurrencyID string    `json:"currency_id"`
	Amount     int64     `json:"amount"`
	CreatedAt  web.Time  `json:"created_at"`
}

// CommissionDoc is a commission ledger row (SPEC §5.3).
type CommissionDoc struct {
	ID           uuid.UUID  `json:"id"`
	AffiliateID  uuid.UUID  `json:"affiliate_id"`
	UserID       string     `json:"user_id"`
	Level        int        `json:"level"`
	SourceUserID string     `json:"source_user_id"`
	EventID      string     `json:"event_id"`
	RuleID       uuid.UUID  `json:"rule_id"`
	TierID       *uuid.UUID `json:"tier_id"`
	Rate         RateDoc    `json:"rate"`
	BaseAmount   int64      `json:"base_amount"`
	Amount       int64      `json:"amount"`
	CurrencyID   string     `json:"currency_id"`
	CreatedAt    web.Time   `json:"created_at"`
}

// AffiliateDoc is an affiliate object (SPEC §4.5). TierID, the effective tier, depends on the
// tier ladder too and is filled on read.
type AffiliateDoc struct {
	ID                 uuid.UUID  `json:"id"`
	TenantID           string     `json:"tenant_id"`
	UserID             string     `json:"user_id"`
	AffiliateCode      string     `json:"affiliate_code"`
	Status             string     `json:"status"`
	ParentAffiliateID  *uuid.UUID `json:"parent_affiliate_id"`
	TierID             *uuid.UUID `json:"tier_id"`
	TierOverrideID     *uuid.UUID `json:"tier_override_id"`
	ConvertedReferrals int64      `json:"converted_referrals"`
	RefereeRevenue     int64      `json:"referee_revenue"`
	CreatedAt          web.Time   `json:"created_at"`
	UpdatedAt          web.Time   `json:"updated_at"`
}

// TierDoc is a tier object (SPEC §4.6).
type TierDoc struct {
	ID                uuid.UUID `json:"id"`
	TenantID          string    `json:"tenant_id"`
	Name              string    `json:"name"`
	CommissionRate    RateDoc   `json:"commission_rate"`
	MinReferrals      int64     `json:"min_referrals"`
	MinRefereeRevenue int64     `json:"min_referee_revenue"`
	Priority          int       `json:"priority"`
	CreatedAt         web.Time  `json:"created_at"`
	UpdatedAt         web.Time  `json:"updated_at"`
}

// ReferralStatDoc is what period stats need of one referral: [created_at as Unix µs, status].
type ReferralStatDoc struct {
	CreatedAt int64
	Status    string
}

// MarshalJSON writes the pair as an array.
func (d ReferralStatDoc) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{d.CreatedAt, d.Status})
}

// UnmarshalJSON reads the pair.
func (d *ReferralStatDoc) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &[]any{&d.CreatedAt, &d.Status})
}

// RewardStatDoc is what period totals need of one reward: [created_at as Unix µs, currency, amount].
type RewardStatDoc struct {
	CreatedAt  int64
	CurrencyID string
	Amount     int64
}

// MarshalJSON writes the triple as an array.
func (d RewardStatDoc) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{d.CreatedAt, d.CurrencyID, d.Amount})
}

// UnmarshalJSON reads the triple.
func (d *RewardStatDoc) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &[]any{&d.CreatedAt, &d.CurrencyID, &d.Amount})
}

// LeaderDoc is one referrer's counts in a leaderboard document.
type LeaderDoc struct {
	UserID     string `json:"u"`
	Successful int    `json:"s"`
	Total      int    `json:"t"`
}

// RateDoc is an exact rate rendered as a JSON number with at most six decimals.
type RateDoc referral.Rate

// MarshalJSON writes the shortest exact decimal.
func (r RateDoc) MarshalJSON() ([]byte, error) { return []byte(referral.Rate(r).String()), nil }

// UnmarshalJSON reads the number exactly.
func (r *RateDoc) UnmarshalJSON(b []byte) error {
	v, err := referral.ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = RateDoc(v)
	return nil
}

func timePtr(t *time.Time) *web.Time { return web.TimePtr(t) }

func toRewardsDoc(ws []referral.Wallet) RewardsDoc {
	out := RewardsDoc{Wallet: make([]WalletDoc, 0, len(ws))}
	for _, w := range ws {
		out.Wallet = append(out.Wallet, WalletDoc{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	return out
}

// ToCampaignDoc converts a campaign to its public document.
func ToCampaignDoc(c referral.Campaign) CampaignDoc {
	return CampaignDoc{ID: c.ID, Name: c.Name, QualifyingEvent: c.QualifyingEvent,
		ReferrerRewards: toRewardsDoc(c.ReferrerRewards), RefereeRewards: toRewardsDoc(c.RefereeRewards),
		StartsAt: timePtr(c.StartsAt), EndsAt: timePtr(c.EndsAt)}
}

// ToCodeDoc converts a code.
func ToCodeDoc(c referral.Code) CodeDoc {
	return CodeDoc{ID: c.ID, TenantID: c.TenantID, Code: c.Code, OwnerUserID: c.OwnerUserID,
		CampaignID: c.CampaignID, UsageLimit: c.UsageLimit, Uses: c.Uses, Active: c.Active,
		ExpiresAt: timePtr(c.ExpiresAt), CreatedAt: web.Time(c.CreatedAt), UpdatedAt: web.Time(c.UpdatedAt)}
}

// ToReferralDoc converts a referral.
func ToReferralDoc(r referral.Referral) ReferralDoc {
	md := r.Metadata
	if len(md) == 0 {
		md = json.RawMessage(`{}`)
	}
	return ReferralDoc{ID: r.ID, TenantID: r.TenantID, Code: r.Code, CodeID: r.CodeID,
		CampaignID: r.CampaignID, ReferrerID: r.ReferrerID, RefereeID: r.RefereeID, Status: r.Status,
		Reason: r.Reason, Metadata: md, CreatedAt: web.Time(r.CreatedAt), UpdatedAt: web.Time(r.UpdatedAt),
		ConvertedAt: timePtr(r.ConvertedAt), VerifiedAt: timePtr(r.VerifiedAt), RejectedAt: timePtr(r.RejectedAt)}
}

// ToRewardDoc converts a reward row.
func ToRewardDoc(r referral.Reward) RewardDoc {
	return RewardDoc{ID: r.ID, UserID: r.UserID, Role: r.Role, CampaignID: r.CampaignID,
		ReferralID: r.ReferralID, EventID: r.EventID, CurrencyID: r.CurrencyID, Amount: r.Amount,
		CreatedAt: web.Time(r.CreatedAt)}
}

// ToCommissionDoc converts a commission row.
func ToCommissionDoc(c referral.Commission) CommissionDoc {
	return CommissionDoc{ID: c.ID, AffiliateID: c.AffiliateID, UserID: c.UserID, Level: c.Level,
		SourceUserID: c.SourceUserID, EventID: c.EventID, RuleID: c.RuleID, TierID: c.TierID,
		Rate: RateDoc(c.Rate), BaseAmount: c.BaseAmount, Amount: c.Amount, CurrencyID: c.CurrencyID,
		CreatedAt: web.Time(c.CreatedAt)}
}

// ToAffiliateDoc converts an affiliate (its TierID is left for the reader).
func ToAffiliateDoc(a referral.Affiliate) AffiliateDoc {
	return AffiliateDoc{ID: a.ID, TenantID: a.TenantID, UserID: a.UserID, AffiliateCode: a.AffiliateCode,
		Status: a.Status, ParentAffiliateID: a.ParentAffiliateID, TierOverrideID: a.TierOverrideID,
		ConvertedReferrals: a.ConvertedReferrals, RefereeRevenue: a.RefereeRevenue,
		CreatedAt: web.Time(a.CreatedAt), UpdatedAt: web.Time(a.UpdatedAt)}
}

// ToTierDoc converts a tier.
func ToTierDoc(t referral.Tier) TierDoc {
	return TierDoc{ID: t.ID, TenantID: t.TenantID, Name: t.Name, CommissionRate: RateDoc(t.CommissionRate),
		MinReferrals: t.MinReferrals, MinRefereeRevenue: t.MinRefereeRevenue, Priority: t.Priority,
		CreatedAt: web.Time(t.CreatedAt), UpdatedAt: web.Time(t.UpdatedAt)}
}

// Tier converts a tier document back to the domain (for EffectiveTier and NextTier).
func (t TierDoc) Tier() referral.Tier {
	return referral.Tier{ID: t.ID, TenantID: t.TenantID, Name: t.Name, CommissionRate: referral.Rate(t.CommissionRate),
		MinReferrals: t.MinReferrals, MinRefereeRevenue: t.MinRefereeRevenue, Priority: t.Priority,
		CreatedAt: time.Time(t.CreatedAt), UpdatedAt: time.Time(t.UpdatedAt)}
}
