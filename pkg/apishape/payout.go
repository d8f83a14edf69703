package apishape

import (
	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// PayoutPolicy is the tenant's hold and payout policy singleton (SPEC §10.2); updated_at is
// null until one is put.
type PayoutPolicy struct {
	HoldDays      int      `json:"hold_days"`
	MinimumPayout []Wallet `json:"minimum_payout"`
	UpdatedAt     *Time    `json:"updated_at"`
}

// NewPayoutPolicy converts a payout policy.
func NewPayoutPolicy(p referral.PayoutPolicy) PayoutPolicy {
	return PayoutPolicy{HoldDays: p.HoldDays, UpdatedAt: TimePtr(p.UpdatedAt),
		MinimumPayout: Slice(p.MinimumPayout, func(w referral.Wallet) Wallet {
			return Wallet{CurrencyID: w.CurrencyID, Amount: w.Amount}
		})}
}

// Payout is a payout to one affiliate (SPEC §10.3).
type Payout struct {
	ID          uuid.UUID `json:"id"`
	AffiliateID uuid.UUID `json:"affiliate_id"`
	UserID      string    `json:"user_id"`
	CurrencyID  string    `json:"currency_id"`
	Amount      int64     `json:"amount"`
	Rows        int       `json:"rows"`
	Status      string    `json:"status"`
	Reference   *string   `json:"reference"`
	CreatedAt   Time      `json:"created_at"`
	PaidAt      *Time     `json:"paid_at"`
}

// NewPayout converts a payout.
func NewPayout(p referral.Payout) Payout {
	return Payout{ID: p.ID, AffiliateID: p.AffiliateID, UserID: p.UserID, CurrencyID: p.CurrencyID,
		Amount: p.Amount, Rows: p.Rows, Status: p.Status, Reference: p.Reference,
		CreatedAt: Time(p.CreatedAt), PaidAt: TimePtr(p.PaidAt)}
}

// PayoutSkip is an affiliate a payout run passed over, with the reason.
type PayoutSkip struct {
	AffiliateID uuid.UUID `json:"affiliate_id"`
	Reason      string    `json:"reason"`
}

// PayoutRun is the answer of POST /v1/affiliate/payouts.
type PayoutRun struct {
	Items   []Payout     `json:"items"`
	Skipped []PayoutSkip `json:"skipped"`
}

// NewPayoutRun converts a payout run.
func NewPayoutRun(r referral.PayoutRun) PayoutRun {
	return PayoutRun{Items: Slice(r.Payouts, NewPayout), Skipped: Slice(r.Skipped, func(s referral.PayoutSkip) PayoutSkip {
		return PayoutSkip{AffiliateID: s.AffiliateID, Reason: s.Reason}
	})}
}

// Balance is an affiliate's commission balance in one currency (SPEC §10.3).
type Balance struct {
	CurrencyID string `json:"currency_id"`
	Pending    int64  `json:"pending"`
	Available  int64  `json:"available"`
	InPayout   int64  `json:"in_payout"`
	Paid       int64  `json:"paid"`
	Reversed   int64  `json:"reversed"`
}

// Balances is the answer of the balance routes: one item per currency.
type Balances struct {
	Items []Balance `json:"items"`
}

// NewBalances converts balances.
func NewBalances(bs []referral.Balance) Balances {
	return Balances{Items: Slice(bs, func(b referral.Balance) Balance {
		return Balance{CurrencyID: b.CurrencyID, Pending: b.Pending, Available: b.Available,
			InPayout: b.InPayout, Paid: b.Paid, Reversed: b.Reversed}
	})}
}
