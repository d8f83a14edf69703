package apishape

import (
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Affiliate is an affiliate (SPEC §4.5); tier_id is the effective tier.
type Affiliate struct {
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
	CreatedAt          Time       `json:"created_at"`
	UpdatedAt          Time       `json:"updated_at"`
}

// NewAffiliate converts an affiliate.
func NewAffiliate(a referral.Affiliate) Affiliate {
	return Affiliate{ID: a.ID, TenantID: a.TenantID, UserID: a.UserID, AffiliateCode: a.AffiliateCode,
		Status: a.Status, ParentAffiliateID: a.ParentAffiliateID, TierID: a.TierID,
		TierOverrideID: a.TierOverrideID, ConvertedReferrals: a.ConvertedReferrals,
		RefereeRevenue: a.RefereeRevenue, CreatedAt: Time(a.CreatedAt), UpdatedAt: Time(a.UpdatedAt)}
}

// DownlineAffiliate is an affiliate in a downline with its distance below the node (1 = direct
// child).
type DownlineAffiliate struct {
	Affiliate
	Level int `json:"level"`
}

// NewDownlineAffiliate converts an affiliate at level below a node.
func NewDownlineAffiliate(a referral.Affiliate, level int) DownlineAffiliate {
	return DownlineAffiliate{Affiliate: NewAffiliate(a), Level: level}
}

// Tier is a tier of the affiliate ladder (SPEC §4.6).
type Tier struct {
	ID                uuid.UUID `json:"id"`
	TenantID          string    `json:"tenant_id"`
	Name              string    `json:"name"`
	CommissionRate    Rate      `json:"commission_rate"`
	MinReferrals      int64     `json:"min_referrals"`
	MinRefereeRevenue int64     `json:"min_referee_revenue"`
	Priority          int       `json:"priority"`
	CreatedAt         Time      `json:"created_at"`
	UpdatedAt         Time      `json:"updated_at"`
}

// NewTier converts a tier.
func NewTier(t referral.Tier) Tier {
	return Tier{ID: t.ID, TenantID: t.TenantID, Name: t.Name, CommissionRate: Rate(t.CommissionRate),
		MinReferrals: t.MinReferrals, MinRefereeRevenue: t.MinRefereeRevenue, Priority: t.Priority,
		CreatedAt: Time(t.CreatedAt), UpdatedAt: Time(t.UpdatedAt)}
}

// Domain converts a tier read back from the read model to the domain, for the tier rules.
func (t Tier) Domain() referral.Tier {
	return referral.Tier{ID: t.ID, TenantID: t.TenantID, Name: t.Name, CommissionRate: referral.Rate(t.CommissionRate),
		MinReferrals: t.MinReferrals, MinRefereeRevenue: t.MinRefereeRevenue, Priority: t.Priority,
		CreatedAt: time.Time(t.CreatedAt), UpdatedAt: time.Time(t.UpdatedAt)}
}

// NextTier is the tier an affiliate reaches next, with what it still needs.
type NextTier struct {
	Tier
	RemainingReferrals int64 `json:"remaining_referrals"`
	RemainingRevenue   int64 `json:"remaining_revenue"`
}

// AffiliateMe is the answer of GET /v1/affiliate/me: the caller's affiliate with its effective
// tier and the next one up the ladder (each null when there is none).
type AffiliateMe struct {
	Affiliate
	Tier     *Tier     `json:"tier"`
	NextTier *NextTier `json:"next_tier"`
}

// CommissionRule is a commission rule (SPEC §4.7).
type CommissionRule struct {
	ID              uuid.UUID        `json:"id"`
	TenantID        string           `json:"tenant_id"`
	Name            string           `json:"name"`
	EventType       string           `json:"event_type"`
	EventFilter     *referral.Filter `json:"event_filter"`
	CommissionField string           `json:"commission_field"`
	UseTierRate     bool             `json:"use_tier_rate"`
	CustomRate      *Rate            `json:"custom_rate"`
	CurrencyID      string           `json:"currency_id"`
	Active          bool             `json:"active"`
	CreatedAt       Time             `json:"created_at"`
	UpdatedAt       Time             `json:"updated_at"`
}

// NewCommissionRule converts a commission rule.
func NewCommissionRule(r referral.CommissionRule) CommissionRule {
	return CommissionRule{ID: r.ID, TenantID: r.TenantID, Name: r.Name, EventType: r.EventType,
		EventFilter: r.EventFilter, CommissionField: r.CommissionField, UseTierRate: r.UseTierRate,
		CustomRate: ratePtr(r.CustomRate), CurrencyID: r.CurrencyID, Active: r.Active,
		CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt)}
}

// HierarchyPolicy is the tenant's hierarchy policy singleton (SPEC §4.8).
type HierarchyPolicy struct {
	TenantID   string `json:"tenant_id"`
	MaxDepth   int    `json:"max_depth"`
	LevelRates []Rate `json:"level_rates"`
	Active     bool   `json:"active"`
	UpdatedAt  Time   `json:"updated_at"`
}

// NewHierarchyPolicy converts a hierarchy policy.
func NewHierarchyPolicy(p referral.HierarchyPolicy) HierarchyPolicy {
	return HierarchyPolicy{TenantID: p.TenantID, MaxDepth: p.MaxDepth,
		LevelRates: Slice(p.LevelRates, func(r referral.Rate) Rate { return Rate(r) }),
		Active:     p.Active, UpdatedAt: Time(p.UpdatedAt)}
}

// Commission is a commission ledger row (SPEC §5.3).
type Commission struct {
	ID           uuid.UUID  `json:"id"`
	AffiliateID  uuid.UUID  `json:"affiliate_id"`
	UserID       string     `json:"user_id"`
	Level        int        `json:"level"`
	SourceUserID string     `json:"source_user_id"`
	EventID      string     `json:"event_id"`
	RuleID       uuid.UUID  `json:"rule_id"`
	TierID       *uuid.UUID `json:"tier_id"`
	Rate         Rate       `json:"rate"`
	BaseAmount   int64      `json:"base_amount"`
	Amount       int64      `json:"amount"`
	CurrencyID   string     `json:"currency_id"`
	CreatedAt    Time       `json:"created_at"`
	ReversesID   *uuid.UUID `json:"reverses_id"`
	Reason       *string    `json:"reason"`
	AvailableAt  Time       `json:"available_at"`
	State        string     `json:"state"`
}

// NewCommission converts a commission row; its state is the one storage derived when it read
// the row.
func NewCommission(c referral.Commission) Commission {
	return Commission{ID: c.ID, AffiliateID: c.AffiliateID, UserID: c.UserID, Level: c.Level,
		SourceUserID: c.SourceUserID, EventID: c.EventID, RuleID: c.RuleID, TierID: c.TierID,
		Rate: Rate(c.Rate), BaseAmount: c.BaseAmount, Amount: c.Amount, CurrencyID: c.CurrencyID,
		CreatedAt: Time(c.CreatedAt), ReversesID: c.ReversesID, Reason: c.Reason,
		AvailableAt: Time(c.AvailableAt), State: c.State}
}

// LevelAmount is a commission total of one hierarchy level in one currency.
type LevelAmount struct {
	Level      int    `json:"level"`
	Amount     int64  `json:"amount"`
	CurrencyID string `json:"currency_id"`
}

// AffiliateStats is the answer of GET /v1/affiliate/stats.
type AffiliateStats struct {
	Period             string        `json:"period"`
	Commissions        []Amount      `json:"commissions"`
	ByLevel            []LevelAmount `json:"by_level"`
	ConvertedReferrals int64         `json:"converted_referrals"`
	RefereeRevenue     int64         `json:"referee_revenue"`
	DownlineSize       int           `json:"downline_size"`
}

// EventOutcome is the answer for one event (SPEC §5): what it paid.
type EventOutcome struct {
	EventID     string       `json:"event_id"`
	Status      string       `json:"status"`
	Rewards     []Reward     `json:"rewards"`
	Commissions []Commission `json:"commissions"`
}

// NewEventOutcome converts an event's outcome.
func NewEventOutcome(o referral.EventOutcome) EventOutcome {
	return EventOutcome{EventID: o.EventID, Status: o.Status, Rewards: Slice(o.Rewards, NewReward),
		Commissions: Slice(o.Commissions, NewCommission)}
}

// RejectedEvent is a batch item that was not processed, with why.
type RejectedEvent struct {
	EventID *string     `json:"event_id,omitempty"`
	Status  string      `json:"status"`
	Error   ErrorDetail `json:"error"`
}

// EventBatchResult is the answer of POST /v1/events/batch: one result per event, in order, each
// an EventOutcome or a RejectedEvent.
type EventBatchResult struct {
	Results []any `json:"results"`
}
