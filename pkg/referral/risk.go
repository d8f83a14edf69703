package referral

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Risk actions (§12), from the mildest to the strictest.
const (
	RiskAllow  = "allow"
	RiskHold   = "hold"
	RiskReject = "reject"
)

// RiskActions lists the actions a policy may name, mildest first.
var RiskActions = []string{RiskAllow, RiskHold, RiskReject}

// Risk reasons: the signals a policy checks at apply-code (§12).
const (
	ReasonSameDevice  = "same_device"
	ReasonSameAddress = "same_address"
	ReasonVelocity    = "velocity"
)

// Review states of a referral that risk held (§12).
const (
	ReviewHeld     = "held"
	ReviewApproved = "approved"
	ReviewRejected = "rejected"
)

// ReviewStates lists every review state, in the order of a review's life.
var ReviewStates = []string{ReviewHeld, ReviewApproved, ReviewRejected}

// Review decisions an admin sends.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Bounds of a risk policy and of signals (§12).
const (
	MaxAddressWindowHours     = 720
	DefaultAddressWindowHours = 24
	MaxVelocityHours          = 720
	MaxVelocityReferrals      = 1_000_000
	MaxDeviceIDLength         = 128
	MaxReviewNoteLength       = MaxReasonLength
	// DefaultSignalRetention is how long signals are kept (PHOENIX_SIGNAL_RETENTION).
	DefaultSignalRetention = 90 * 24 * time.Hour
)

// Velocity is a policy's limit on how many referrals one referrer makes in a period.
type Velocity struct {
	MaxReferrals int
	PerHours     int
	Action       string
}

// RiskPolicy is a tenant's risk policy singleton (§12).
type RiskPolicy struct {
	TenantID           string
	Active             bool
	SameDevice         string
	SameAddress        string
	AddressWindowHours int
	Velocity           *Velocity
	// UpdatedAt is zero for the default policy of a tenant that never set one.
	UpdatedAt time.Time
}

// DefaultRiskPolicy is the policy of a tenant that never set one: active, same device holds,
// same address allows, no velocity limit.
func DefaultRiskPolicy(tenant string) RiskPolicy {
	return RiskPolicy{TenantID: tenant, Active: true, SameDevice: RiskHold, SameAddress: RiskAllow,
		AddressWindowHours: DefaultAddressWindowHours}
}

// AddressWindow is the span before an apply within which a shared address counts.
func (p RiskPolicy) AddressWindow() time.Duration {
	return time.Duration(p.AddressWindowHours) * time.Hour
}

// Validate checks p: every action among RiskActions, address_window_hours 1–720, velocity
// max_referrals 1–1,000,000 and per_hours 1–720. Errors: VALIDATION_FAILED.
func (p RiskPolicy) Validate() error {
	fe := FieldErrors{}
	action := func(field, a string) {
		if !isRiskAction(a) {
			fe.Add(field, "must be allow, hold or reject")
		}
	}
	action("same_device", p.SameDevice)
	action("same_address", p.SameAddress)
	if p.AddressWindowHours < 1 || p.AddressWindowHours > MaxAddressWindowHours {
		fe.Add("address_window_hours", "must be an integer from 1 to 720")
	}
	if v := p.Velocity; v != nil {
		if v.MaxReferrals < 1 || v.MaxReferrals > MaxVelocityReferrals {
			fe.Add("velocity.max_referrals", "must be an integer from 1 to 1000000")
		}
		if v.PerHours < 1 || v.PerHours > MaxVelocityHours {
			fe.Add("velocity.per_hours", "must be an integer from 1 to 720")
		}
		action("velocity.action", v.Action)
	}
	return fe.Err()
}

func isRiskAction(a string) bool { return riskRank(a) >= 0 }

// riskRank orders the actions by strictness; -1 for an unknown one.
func riskRank(a string) int {
	for i, x := range RiskActions {
		if x == a {
			return i
		}
	}
	return -1
}

// RiskFacts is what storage found about an apply: whether the referee and the referrer share a
// device (within the signal retention) or an address (within the policy's address window), and
// how many referrals the referrer made within the velocity period (counted at most up to the
// policy's max_referrals).
type RiskFacts struct {
	SameDevice      bool
	SameAddress     bool
	RecentReferrals int
}

// RiskDecision is the risk policy's verdict on an apply: the strictest action among the
// triggered checks (allow when none triggered) and the reasons that triggered a hold or a
// reject, in the order same_device, same_address, velocity.
type RiskDecision struct {
	Action  string
	Reasons []string
}

// EvaluateRisk decides an apply under policy p from facts (§12): each check that matches
// triggers its action, the strictest triggered action wins, and the reasons are the checks
// whose action is not allow. An inactive policy allows everything.
func EvaluateRisk(p RiskPolicy, f RiskFacts) RiskDecision {
	d := RiskDecision{Action: RiskAllow}
	if !p.Active {
		return d
	}
	trigger := func(matched bool, action, reason string) {
		if !matched || riskRank(action) <= 0 {
			return
		}
		d.Reasons = append(d.Reasons, reason)
		if riskRank(action) > riskRank(d.Action) {
			d.Action = action
		}
	}
	trigger(f.SameDevice, p.SameDevice, ReasonSameDevice)
	trigger(f.SameAddress, p.SameAddress, ReasonSameAddress)
	if v := p.Velocity; v != nil {
		trigger(f.RecentReferrals >= v.MaxReferrals, v.Action, ReasonVelocity)
	}
	return d
}

// RiskRejection is the error of an apply the risk policy rejected. The client sees only the
// generic RISK_REJECTED (Unwrap); Reasons are for logs and metrics.
type RiskRejection struct {
	Reasons []string
}

// Error implements error.
func (r *RiskRejection) Error() string {
	return fmt.Sprintf("%s (%s)", ERiskRejected, strings.Join(r.Reasons, ", "))
}

// Unwrap returns the error the client sees: RISK_REJECTED with a generic message that does not
// say which signal matched.
func (r *RiskRejection) Unwrap() error {
	return Errorf(ERiskRejected, "the referral was not accepted")
}

// Review is the risk review of a referral that was held (§12).
type Review struct {
	State      string
	Reasons    []string
	Note       *string
	ReviewedAt *time.Time
}

// Held reports whether the referral is held for review: it earns nothing until approved.
func (r *Referral) Held() bool {
	return r.Review != nil && r.Review.State == ReviewHeld
}

// CheckReview reports whether a referral may be reviewed: only a held one. Errors:
// INVALID_TRANSITION.
func CheckReview(r Referral) error {
	if !r.Held() {
		return Errorf(EInvalidTransition, "only a held referral can be reviewed")
	}
	return nil
}

// CheckStatusChange reports whether an admin may move referral r to status to (§4.4): a held
// referral is decided by its review only (its deferred events would otherwise wait forever),
// any other follows CheckTransition. Errors: INVALID_TRANSITION.
func CheckStatusChange(r Referral, to string) error {
	if r.Held() {
		return Errorf(EInvalidTransition, "a held referral is decided by its review (PUT .../review)")
	}
	return CheckTransition(r.Status, to)
}

// Signal is one sighting of a user's device or address (§12); at least one of them is set.
// AddressHash is AddressHash(key, address): the address itself is never stored.
type Signal struct {
	TenantID    string
	UserID      string
	DeviceID    string
	AddressHash []byte
	SeenAt      time.Time
}

// ValidDeviceID reports whether s may be a device id: 1–128 characters of valid UTF-8 without
// NUL or control characters.
func ValidDeviceID(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > MaxDeviceIDLength || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// ParseAddress parses a reported client address (IPv4 or IPv6, no zone).
func ParseAddress(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// RiskService records risk signals and holds the tenant's risk policy and the reviews of held
// referrals (§12). Apply-code's risk check runs inside ReferralService.ApplyCode.
type RiskService interface {
	// RecordSignals stores sightings of users' devices and addresses, keeping per user and
	// value the latest time seen.
	RecordSignals(ctx context.Context, sigs []Signal) error
	// GetRiskPolicy returns the tenant's policy, DefaultRiskPolicy when none was set.
	GetRiskPolicy(ctx context.Context, tenant string) (RiskPolicy, error)
	// PutRiskPolicy creates or replaces the tenant's policy and returns it. Errors:
	// VALIDATION_FAILED (RiskPolicy.Validate).
	PutRiskPolicy(ctx context.Context, p RiskPolicy) (RiskPolicy, error)
	// ReviewReferral approves (DecisionApprove: its deferred events are processed) or rejects
	// (DecisionReject: it becomes rejected, its deferred events earn nothing) a held referral.
	// Errors: NOT_FOUND, INVALID_TRANSITION (not held).
	ReviewReferral(ctx context.Context, tenant string, id uuid.UUID, decision string, note *string) (Referral, error)
}
