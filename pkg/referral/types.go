package referral

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Wallet is one reward in one currency, in the currency's minor unit.
type Wallet struct {
	CurrencyID string
	Amount     int64
}

// Campaign pays double-sided rewards when its qualifying event happens to a referee (§4.1).
type Campaign struct {
	ID               uuid.UUID
	TenantID         string
	Name             string
	QualifyingEvent  string
	QualifyingFilter *Filter
	ReferrerRewards  []Wallet
	RefereeRewards   []Wallet
	Active           bool
	StartsAt         *time.Time
	EndsAt           *time.Time
	// Clawback takes the campaign's rewards back when the event that paid them is reversed in
	// full (§10.1).
	Clawback bool
	// Milestones pay the referrer once per threshold of successful referrals (§13), in
	// increasing order of threshold.
	Milestones []Milestone
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ActiveAt reports whether the campaign is active and t lies in its window (InWindow).
func (c *Campaign) ActiveAt(t time.Time) bool {
	return c.Active && InWindow(c.StartsAt, c.EndsAt, t)
}

// InWindow reports whether t lies in a campaign's window [startsAt, endsAt) (§5.2, §6); a nil
// bound is open.
func InWindow(startsAt, endsAt *time.Time, t time.Time) bool {
	return (startsAt == nil || !t.Before(*startsAt)) && (endsAt == nil || t.Before(*endsAt))
}

// Code sources.
const (
	CodeSourcePlayer    = "player"
	CodeSourceAdmin     = "admin"
	CodeSourceAffiliate = "affiliate"
)

// Code is a referral or promo code (§4.2).
type Code struct {
	ID          uuid.UUID
	TenantID    string
	Code        string
	OwnerUserID *string
	CampaignID  *uuid.UUID
	UsageLimit  *int
	Uses        int
	Active      bool
	ExpiresAt   *time.Time
	Source      string
	Generated   bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Referral statuses.
const (
	StatusPending   = "pending"
	StatusConverted = "converted"
	StatusVerified  = "verified"
	StatusRejected  = "rejected"
)

// Referral links a referee to the code (and its owner, the referrer) they applied (§4.3).
type Referral struct {
	ID          uuid.UUID
	TenantID    string
	Code        string
	CodeID      uuid.UUID
	CampaignID  *uuid.UUID
	ReferrerID  *string
	RefereeID   string
	Status      string
	Reason      *string
	Metadata    json.RawMessage
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ConvertedAt *time.Time
	VerifiedAt  *time.Time
	RejectedAt  *time.Time
	// ImpressionID is the impression the referral is linked to (§15), nil when unlinked.
	ImpressionID *uuid.UUID
	// Review is the risk review of a held referral (§12); nil for a referral risk let through.
	Review *Review
}

// Affiliate statuses.
const (
	AffiliatePending   = "pending"
	AffiliateActive    = "active"
	AffiliateSuspended = "suspended"
)

// Affiliate is a partner earning commissions on its referees' events (§4.5).
type Affiliate struct {
	ID                 uuid.UUID
	TenantID           string
	UserID             string
	AffiliateCode      string
	CodeID             uuid.UUID
	Status             string
	ParentAffiliateID  *uuid.UUID
	Ancestors          []uuid.UUID // root first, excluding the affiliate itself
	TierID             *uuid.UUID  // effective tier (§5.4), derived on read
	TierOverrideID     *uuid.UUID
	ConvertedReferrals int64
	RefereeRevenue     int64
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Tier is a step of the affiliate ladder (§4.6).
type Tier struct {
	ID                uuid.UUID
	TenantID          string
	Name              string
	CommissionRate    Rate
	MinReferrals      int64
	MinRefereeRevenue int64
	Priority          int
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// CommissionRule says which events pay commissions and at which rate (§4.7).
type CommissionRule struct {
	ID              uuid.UUID
	TenantID        string
	Name            string
	EventType       string
	EventFilter     *Filter
	CommissionField string
	UseTierRate     bool
	CustomRate      *Rate
	CurrencyID      string
	Active          bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// HierarchyPolicy is the tenant's multi-level commission split (§4.8).
type HierarchyPolicy struct {
	TenantID   string
	MaxDepth   int
	LevelRates []Rate
	Active     bool
	UpdatedAt  time.Time
}

// Event is a qualifying event posted by the platform (§5).
type Event struct {
	TenantID   string
	EventID    string
	Type       string
	UserID     string
	OccurredAt time.Time
	Payload    json.RawMessage
	// Reverses is the event_id of an earlier event this one reverses (§10.1), "" for none;
	// ReverseAmount is the part of the original's base it reverses, nil for all that remains.
	Reverses      string
	ReverseAmount *int64
}

// Event outcome statuses.
const (
	EventProcessed = "processed"
	EventDuplicate = "duplicate"
	EventSimulated = "simulated"
	// EventDeferred is the status of an event of a referral held for review (§12): recorded,
	// paid nothing yet, processed when the review approves.
	EventDeferred = "deferred"
	EventRejected = "rejected"
)

// EventOutcome is what an event paid.
type EventOutcome struct {
	EventID     string
	Status      string
	Rewards     []Reward
	Commissions []Commission
	// Err is why a batch item was refused (Status EventRejected), nil otherwise.
	Err *Error
}

// Reward roles.
const (
	RoleReferrer = "referrer"
	RoleReferee  = "referee"
	// RoleMilestone is the role of a referrer's milestone reward (§13).
	RoleMilestone = "milestone"
)

// Reward is a row of the reward ledger (§5.2).
type Reward struct {
	ID         uuid.UUID
	TenantID   string
	UserID     string
	Role       string
	CampaignID uuid.UUID
	ReferralID uuid.UUID
	EventID    string
	CurrencyID string
	Amount     int64
	// Milestone is the threshold a milestone reward pays (RoleMilestone only).
	Milestone *int
	CreatedAt time.Time
	// ReversesID is the reward a negative (clawback) row takes back (§10.1), nil otherwise.
	ReversesID *uuid.UUID
}

// Commission is a row of the commission ledger (§5.3).
type Commission struct {
	ID           uuid.UUID
	TenantID     string
	AffiliateID  uuid.UUID
	UserID       string
	Level        int
	SourceUserID string
	EventID      string
	RuleID       uuid.UUID
	TierID       *uuid.UUID
	Rate         Rate
	BaseAmount   int64
	Amount       int64
	CurrencyID   string
	CreatedAt    time.Time
	// ReversesID is the row a negative (reversal) row reverses (§10.1), nil otherwise; Reason
	// is an admin's note on a per-row reversal.
	ReversesID *uuid.UUID
	Reason     *string
	// AvailableAt is when the row stops being held (§10.2).
	AvailableAt time.Time
	// State is the row's derived state (CommissionState) when it was read.
	State string
}

// ReferralAppliedEvent is the type of the built-in event apply-code runs (§5).
const ReferralAppliedEvent = "referral.applied"
