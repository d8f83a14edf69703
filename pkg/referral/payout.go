package referral

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Commission row states (§10.2), derived from a row's available_at and the payout holding it.
const (
	CommissionPending   = "pending"
	CommissionAvailable = "available"
	CommissionInPayout  = "in_payout"
	CommissionPaid      = "paid"
)

// CommissionStates lists every commission state, in the order of a row's life.
var CommissionStates = []string{CommissionPending, CommissionAvailable, CommissionInPayout, CommissionPaid}

// Payout statuses (§10.3).
const (
	PayoutPending = "pending"
	PayoutPaid    = "paid"
	PayoutFailed  = "failed"
)

// PayoutStatuses lists every payout status.
var PayoutStatuses = []string{PayoutPending, PayoutPaid, PayoutFailed}

// CommissionState is the state of a commission row at now (§10.2): in a pending payout it is
// in_payout, in a paid one paid; otherwise (no payout, or a failed one, which releases its rows)
// pending until availableAt, then available. PostgreSQL's phoenix_commission_state (migration
// 00006) is the same rule for queries.
func CommissionState(availableAt time.Time, payoutStatus string, now time.Time) string {
	switch payoutStatus {
	case PayoutPaid:
		return CommissionPaid
	case PayoutPending:
		return CommissionInPayout
	}
	if !availableAt.After(now) {
		return CommissionAvailable
	}
	return CommissionPending
}

// AvailableAt is when a commission row of amount written at createdAt under a hold of holdDays
// becomes available: a negative row at once, so it nets against the next payout (§10.2).
func AvailableAt(createdAt time.Time, holdDays int, amount int64) time.Time {
	if amount < 0 {
		return createdAt
	}
	return createdAt.AddDate(0, 0, holdDays)
}

// Limits of the payout policy (§10.2).
const (
	MaxHoldDays     = 365
	DefaultHoldDays = 30
	// MaxPayoutReferenceLength bounds, in characters, a payout's reference.
	MaxPayoutReferenceLength = 200
)

// PayoutPolicy is the tenant's hold and payout policy (§10.2). UpdatedAt is nil until one is
// put: the defaults apply.
type PayoutPolicy struct {
	TenantID      string
	HoldDays      int
	MinimumPayout []Wallet
	UpdatedAt     *time.Time
}

// DefaultPayoutPolicy is the policy of a tenant that never put one: a 30-day hold, no minimum.
func DefaultPayoutPolicy(tenant string) PayoutPolicy {
	return PayoutPolicy{TenantID: tenant, HoldDays: DefaultHoldDays, MinimumPayout: []Wallet{}}
}

// Validate checks the policy: hold_days 0–365; each minimum a currency_id of 1–64 characters,
// named once, with an amount ≥ 0. Errors: VALIDATION_FAILED.
func (p *PayoutPolicy) Validate() error {
	fe := FieldErrors{}
	if p.HoldDays < 0 || p.HoldDays > MaxHoldDays {
		fe.Add("hold_days", "must be an integer from 0 to 365")
	}
	seen := map[string]bool{}
	for _, w := range p.MinimumPayout {
		n := utf8.RuneCountInString(w.CurrencyID)
		switch {
		case n < 1 || n > 64 || !storableText(w.CurrencyID):
			fe.Add("minimum_payout", "each currency_id must be 1 to 64 characters without NUL")
		case seen[w.CurrencyID]:
			fe.Add("minimum_payout", "names currency "+w.CurrencyID+" twice")
		case w.Amount < 0:
			fe.Add("minimum_payout", "each amount must be an integer ≥ 0")
		}
		seen[w.CurrencyID] = true
	}
	return fe.Err()
}

// Minimum is the policy's minimum payout in currency (0 when none is set).
func (p *PayoutPolicy) Minimum(currency string) int64 {
	for _, w := range p.MinimumPayout {
		if w.CurrencyID == currency {
			return w.Amount
		}
	}
	return 0
}

// Payout pays an affiliate the net of the available rows it covers (§10.3).
type Payout struct {
	ID          uuid.UUID
	TenantID    string
	AffiliateID uuid.UUID
	UserID      string
	CurrencyID  string
	Amount      int64
	Rows        int
	Status      string
	Reference   *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	PaidAt      *time.Time
}

// CheckPayoutTransition reports whether a payout may move from status from to status to:
// pending → paid and pending → failed only. Errors: INVALID_TRANSITION.
func CheckPayoutTransition(from, to string) error {
	if from == PayoutPending && (to == PayoutPaid || to == PayoutFailed) {
		return nil
	}
	return Errorf(EInvalidTransition, "a %s payout cannot become %s", from, to)
}

// CheckPayoutReference validates a payout's reference: at most 200 characters without NUL.
func CheckPayoutReference(ref *string) error {
	return CheckNote("reference", ref, MaxPayoutReferenceLength)
}

// CheckNote refuses an admin's free text in field (a review note, a payout reference) longer
// than max characters or holding NUL or invalid UTF-8; nil (none given) passes.
func CheckNote(field string, s *string, max int) error {
	if s != nil && (utf8.RuneCountInString(*s) > max || !storableText(*s)) {
		return Invalid(field, fmt.Sprintf("must be at most %d characters without NUL", max))
	}
	return nil
}

// Why a payout run passes an affiliate over (skip reasons, not error codes).
const (
	SkipBelowMinimum     = "BELOW_MINIMUM_PAYOUT"
	SkipNothingAvailable = "NOTHING_AVAILABLE"
	SkipNotActive        = "AFFILIATE_NOT_ACTIVE"
)

// PayoutCandidate is an affiliate a payout run considers, with the available rows not yet in a
// live payout: their net and how many there are.
type PayoutCandidate struct {
	AffiliateID uuid.UUID
	UserID      string
	Status      string
	// Deleted affiliates are considered only when the run lists them: their rows stay payable.
	Deleted bool
	Net     int64
	Rows    int
}

// PayoutSkip is an affiliate a run did not pay, with why.
type PayoutSkip struct {
	AffiliateID uuid.UUID
	Reason      string
}

// DecidePayout says whether a run pays candidate c under minimum, or why not (§10.3): an
// affiliate that is not active is skipped (a deleted one is paid when listed, which is the only
// way a run considers it); a net ≤ 0 is NOTHING_AVAILABLE; a net below the minimum is
// BELOW_MINIMUM_PAYOUT.
func DecidePayout(c PayoutCandidate, minimum int64) (pay bool, reason string) {
	switch {
	case !c.Deleted && c.Status != AffiliateActive:
		return false, SkipNotActive
	case c.Net <= 0 || c.Rows == 0:
		return false, SkipNothingAvailable
	case c.Net < minimum:
		return false, SkipBelowMinimum
	}
	return true, ""
}

// PayoutRun is the answer of a payout run: the payouts it created and the affiliates it skipped.
type PayoutRun struct {
	Payouts []Payout
	Skipped []PayoutSkip
}

// Balance is an affiliate's commission balance in one currency (§10.3): the signed sums of its
// rows by state (they add up to the ledger's net; Available may be negative) and, for
// information, the positive total of its negative rows.
type Balance struct {
	CurrencyID string
	Pending    int64
	Available  int64
	InPayout   int64
	Paid       int64
	Reversed   int64
}

// StateSum is the signed sum of an affiliate's rows of one currency in one state, and the
// positive total of the negative ones among them.
type StateSum struct {
	CurrencyID string
	State      string
	Sum        int64
	Reversed   int64
}

// Balances folds state sums into one Balance per currency, in order of first appearance.
func Balances(sums []StateSum) []Balance {
	out := []Balance{}
	at := map[string]int{}
	for _, s := range sums {
		i, ok := at[s.CurrencyID]
		if !ok {
			i = len(out)
			at[s.CurrencyID] = i
			out = append(out, Balance{CurrencyID: s.CurrencyID})
		}
		b := &out[i]
		switch s.State {
		case CommissionPending:
			b.Pending += s.Sum
		case CommissionAvailable:
			b.Available += s.Sum
		case CommissionInPayout:
			b.InPayout += s.Sum
		case CommissionPaid:
			b.Paid += s.Sum
		}
		b.Reversed += s.Reversed
	}
	return out
}

// PayoutFilter selects payouts for ListPayouts; a nil field does not filter.
type PayoutFilter struct {
	AffiliateID *uuid.UUID
	Status      *string
	CurrencyID  *string
	Limit       int
	Offset      int
}

// PayoutService holds the payout policy and runs and follows payouts (§10.2, §10.3).
type PayoutService interface {
	// GetPayoutPolicy returns the tenant's policy, DefaultPayoutPolicy until one is put.
	GetPayoutPolicy(ctx context.Context, tenant string) (PayoutPolicy, error)
	// PutPayoutPolicy creates or replaces the tenant's policy and returns it; rows written
	// later are held by it. Errors: VALIDATION_FAILED (PayoutPolicy.Validate).
	PutPayoutPolicy(ctx context.Context, p PayoutPolicy) (PayoutPolicy, error)
	// CreatePayouts runs a payout in currency over the tenant's affiliates (all live ones, or
	// those listed, deleted ones included): one pending payout per affiliate DecidePayout pays,
	// covering every available row not yet in a live payout. Errors: VALIDATION_FAILED (an
	// unknown affiliate id).
	CreatePayouts(ctx context.Context, tenant, currency string, affiliates []uuid.UUID) (PayoutRun, error)
	// GetPayout returns a payout of the tenant. Errors: NOT_FOUND.
	GetPayout(ctx context.Context, tenant string, id uuid.UUID) (Payout, error)
	// ListPayouts returns a page of the tenant's payouts, newest first, and how many match f.
	ListPayouts(ctx context.Context, tenant string, f PayoutFilter) ([]Payout, int, error)
	// SetPayoutStatus moves a payout to paid (with reference) or failed (its rows are released).
	// Errors: NOT_FOUND, INVALID_TRANSITION.
	SetPayoutStatus(ctx context.Context, tenant string, id uuid.UUID, status string, reference *string) (Payout, error)
	// AffiliateBalance returns the balance of affiliate id (deleted ones included) per currency.
	// Errors: NOT_FOUND.
	AffiliateBalance(ctx context.Context, tenant string, id uuid.UUID) ([]Balance, error)
}
