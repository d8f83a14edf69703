package apishape

import (
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Review is the risk review of a held referral (SPEC §12), shown to admins only.
type Review struct {
	State      string   `json:"state"`
	Reasons    []string `json:"reasons"`
	Note       *string  `json:"note"`
	ReviewedAt *Time    `json:"reviewed_at"`
}

// AdminReferral is a referral as the Admin Gateway's admin routes show it: the referral and its
// risk review (null when risk let it through). Players never see the review: apply-code answers
// an AppliedReferral and the Query Gateway a Referral.
type AdminReferral struct {
	Referral
	Review *Review `json:"review"`
}

// NewAdminReferral converts a referral with its review.
func NewAdminReferral(r referral.Referral) AdminReferral {
	out := AdminReferral{Referral: NewReferral(r)}
	if rv := r.Review; rv != nil {
		out.Review = &Review{State: rv.State, Reasons: append([]string{}, rv.Reasons...), Note: rv.Note,
			ReviewedAt: TimePtr(rv.ReviewedAt)}
	}
	return out
}

// Velocity is a risk policy's limit on a referrer's referrals per period.
type Velocity struct {
	MaxReferrals int    `json:"max_referrals"`
	PerHours     int    `json:"per_hours"`
	Action       string `json:"action"`
}

// RiskPolicy is the tenant's risk policy singleton (SPEC §12); updated_at is null for the
// defaults of a tenant that never set one.
type RiskPolicy struct {
	TenantID           string    `json:"tenant_id"`
	Active             bool      `json:"active"`
	SameDevice         string    `json:"same_device"`
	SameAddress        string    `json:"same_address"`
	AddressWindowHours int       `json:"address_window_hours"`
	Velocity           *Velocity `json:"velocity"`
	UpdatedAt          *Time     `json:"updated_at"`
}

// NewRiskPolicy converts a risk policy.
func NewRiskPolicy(p referral.RiskPolicy) RiskPolicy {
	out := RiskPolicy{TenantID: p.TenantID, Active: p.Active, SameDevice: p.SameDevice,
		SameAddress: p.SameAddress, AddressWindowHours: p.AddressWindowHours}
	if v := p.Velocity; v != nil {
		out.Velocity = &Velocity{MaxReferrals: v.MaxReferrals, PerHours: v.PerHours, Action: v.Action}
	}
	if !p.UpdatedAt.IsZero() {
		out.UpdatedAt = TimePtr(&p.UpdatedAt)
	}
	return out
}

// Signal is the answer of POST /v1/referral/signals: what was recorded. The address itself is
// never echoed or stored, only whether one was recorded.
type Signal struct {
	UserID          string  `json:"user_id"`
	DeviceID        *string `json:"device_id"`
	AddressRecorded bool    `json:"address_recorded"`
	SeenAt          Time    `json:"seen_at"`
}

// NewSignal converts a recorded signal.
func NewSignal(s referral.Signal) Signal {
	out := Signal{UserID: s.UserID, AddressRecorded: len(s.AddressHash) > 0, SeenAt: Time(s.SeenAt.UTC().Truncate(time.Microsecond))}
	if s.DeviceID != "" {
		d := s.DeviceID
		out.DeviceID = &d
	}
	return out
}

// Milestone is one of a campaign's milestones (SPEC §13).
type Milestone struct {
	SuccessfulReferrals int     `json:"successful_referrals"`
	Rewards             Rewards `json:"rewards"`
}

// NewMilestones converts a campaign's milestones ([] when none).
func NewMilestones(ms []referral.Milestone) []Milestone {
	return Slice(ms, func(m referral.Milestone) Milestone {
		return Milestone{SuccessfulReferrals: m.SuccessfulReferrals, Rewards: NewRewards(m.Rewards)}
	})
}

// MilestoneProgress is one milestone in a player's stats (SPEC §13): the campaign, the
// threshold, when it was paid to the player (null: not yet) and the player's current count.
type MilestoneProgress struct {
	CampaignID          uuid.UUID `json:"campaign_id"`
	SuccessfulReferrals int       `json:"successful_referrals"`
	ReachedAt           *Time     `json:"reached_at"`
	Progress            int64     `json:"progress"`
}

// NewMilestoneProgress converts a milestone's progress.
func NewMilestoneProgress(m referral.MilestoneProgress) MilestoneProgress {
	return MilestoneProgress{CampaignID: m.CampaignID, SuccessfulReferrals: m.SuccessfulReferrals,
		ReachedAt: TimePtr(m.ReachedAt), Progress: m.Progress}
}
