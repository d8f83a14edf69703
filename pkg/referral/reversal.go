package referral

import (
	"context"
	"math/big"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxReversalReasonLength bounds, in characters, an admin's reason for a per-row reversal.
const MaxReversalReasonLength = 1000

// checkReversal adds to fe what is wrong with ev's reversal fields (§10.1): reverses names an
// event id (1–128 characters without NUL) and is not the event itself; reverse_amount, when
// set, is a positive integer and needs reverses.
func checkReversal(ev Event, fe FieldErrors) {
	if ev.Reverses != "" {
		if utf8.RuneCountInString(ev.Reverses) > MaxEventIDLength || !storableText(ev.Reverses) {
			fe.Add("reverses", "must be an event_id: 1 to 128 characters without NUL")
		} else if ev.Reverses == ev.EventID {
			fe.Add("reverses", "must name another event")
		}
	}
	if ev.ReverseAmount != nil {
		switch {
		case *ev.ReverseAmount <= 0:
			fe.Add("reverse_amount", "must be a positive integer")
		case ev.Reverses == "":
			fe.Add("reverse_amount", "needs reverses")
		}
	}
}

// ReversedNet is what remains of a commission row of base b at rate after reversals totalling
// reversed of the original event's base total: floor(b × (total − reversed) / total × rate),
// computed exactly in integers (§10.1). It is never negative and never above floor(b × rate);
// a total of zero (an original without commissions) leaves nothing.
func ReversedNet(b, total, reversed int64, rate Rate) int64 {
	if total <= 0 || b <= 0 || rate <= 0 || reversed >= total {
		return 0
	}
	reversed = max(reversed, 0)
	num := new(big.Int).Mul(big.NewInt(b), big.NewInt(total-reversed))
	num.Mul(num, big.NewInt(int64(rate)))
	den := new(big.Int).Mul(big.NewInt(total), big.NewInt(RateScale))
	return num.Quo(num, den).Int64()
}

// ReversalState is what a reversal of an original event acts on, as storage loaded it.
type ReversalState struct {
	// Commissions are the positive rows the original event created, every level.
	Commissions []Commission
	// Net is each of those rows' current net (its amount plus every negative row naming it).
	Net map[uuid.UUID]int64
	// Rewards are the reward rows the original paid that a reversal may claw back: those of
	// campaigns with clawback set (milestone rewards are never among them), not clawed back yet.
	Rewards []Reward
	// Reversed is R, the part of the base already reversed by earlier reversal events.
	Reversed int64
	// Reversals counts the earlier reversal events (an original without commissions is
	// reversed once, in full).
	Reversals int
	// Revenue is what the original added to its affiliate's referee_revenue (RevenueAffiliate,
	// nil when nothing).
	Revenue          int64
	RevenueAffiliate *uuid.UUID
}

// Base is B: the largest base among the original's commission rows (the one §5.4 counts).
func (s *ReversalState) Base() int64 {
	var b int64
	for _, c := range s.Commissions {
		b = max(b, c.BaseAmount)
	}
	return b
}

// ReversalPlan is what one reversal event writes.
type ReversalPlan struct {
	// Amount is the part of the base this reversal takes back (what R grows by).
	Amount int64
	// Commissions and Rewards are the negative rows; ID, CreatedAt and AvailableAt are
	// storage's to assign.
	Commissions []Commission
	Rewards     []Reward
	// RevenueDrop is how much the affiliate's referee_revenue decreases (Affiliate; nil when
	// there is none).
	RevenueDrop int64
	Affiliate   *uuid.UUID
}

// PlanReversal decides what reversal event ev does to the original described by s (§10.1):
// ev.ReverseAmount of the base (nil: all that remains) comes back from every commission row in
// proportion, each row's net becoming ReversedNet (a row an admin already reversed stays at
// zero); the affiliate's referee_revenue loses the same share of what the original added; and
// the reversal that brings R to B (for an original without commissions, its one full reversal)
// claws back s.Rewards. Errors: VALIDATION_FAILED (a reverse_amount for an original without
// commissions), NOT_REVERSIBLE (already reversed in full, or more than remains).
func PlanReversal(ev Event, s *ReversalState) (ReversalPlan, error) {
	total := s.Base()
	var p ReversalPlan
	full := false
	switch {
	case total == 0 && ev.ReverseAmount != nil:
		return p, Invalid("reverse_amount", "the reversed event paid no commission: it can only be reversed in full")
	case total == 0 && s.Reversals > 0, total > 0 && s.Reversed >= total:
		return p, Errorf(ENotReversible, "event %q is already reversed in full", ev.Reverses)
	case total == 0:
		full = true
	case ev.ReverseAmount == nil:
		p.Amount = total - s.Reversed
	case *ev.ReverseAmount > total-s.Reversed:
		return p, Errorf(ENotReversible, "reverse_amount %d is more than the %d that remains of event %q",
			*ev.ReverseAmount, total-s.Reversed, ev.Reverses)
	default:
		p.Amount = *ev.ReverseAmount
	}
	after := s.Reversed + p.Amount
	if total > 0 {
		full = after == total
	}
	for _, c := range s.Commissions {
		target := ReversedNet(c.BaseAmount, total, after, c.Rate)
		if back := s.Net[c.ID] - target; back > 0 {
			p.Commissions = append(p.Commissions, reversalRow(c, ev.EventID, back))
		}
	}
	if s.RevenueAffiliate != nil && s.Revenue > 0 {
		remains := func(r int64) int64 {
			if total == 0 {
				return 0
			}
			return ReversedNet(s.Revenue, total, r, RateScale)
		}
		before := s.Revenue
		if total > 0 {
			before = remains(s.Reversed)
		}
		if drop := before - remains(after); drop > 0 {
			p.RevenueDrop, p.Affiliate = drop, s.RevenueAffiliate
		}
	}
	if full {
		for _, r := range s.Rewards {
			id := r.ID
			p.Rewards = append(p.Rewards, Reward{TenantID: r.TenantID, UserID: r.UserID, Role: r.Role,
				CampaignID: r.CampaignID, ReferralID: r.ReferralID, EventID: ev.EventID,
				CurrencyID: r.CurrencyID, Amount: -r.Amount, ReversesID: &id})
		}
	}
	return p, nil
}

// PlanRowReversal returns the negative row an admin's reversal of row c writes (§10.1): all of
// its current net comes back, with reason. Errors: NOT_REVERSIBLE (a reversal row, or nothing
// remains).
func PlanRowReversal(c Commission, net int64, reason *string) (Commission, error) {
	if c.ReversesID != nil {
		return Commission{}, Errorf(ENotReversible, "commission %s is itself a reversal", c.ID)
	}
	if net <= 0 {
		return Commission{}, Errorf(ENotReversible, "nothing remains of commission %s", c.ID)
	}
	out := reversalRow(c, c.EventID, net)
	out.Reason = reason
	return out, nil
}

// reversalRow is the negative row taking back amount of c, written for event eventID.
func reversalRow(c Commission, eventID string, amount int64) Commission {
	id := c.ID
	return Commission{TenantID: c.TenantID, AffiliateID: c.AffiliateID, UserID: c.UserID, Level: c.Level,
		SourceUserID: c.SourceUserID, EventID: eventID, RuleID: c.RuleID, TierID: c.TierID, Rate: c.Rate,
		BaseAmount: c.BaseAmount, Amount: -amount, CurrencyID: c.CurrencyID, ReversesID: &id}
}

// CheckRowReversalReason validates an admin's reason for a per-row reversal: at most
// MaxReversalReasonLength characters of storable text.
func CheckRowReversalReason(reason *string) error {
	if reason != nil && (utf8.RuneCountInString(*reason) > MaxReversalReasonLength || !storableText(*reason)) {
		return Invalid("reason", "must be at most 1000 characters without NUL")
	}
	return nil
}

// ReversalService reverses single commission rows (§10.1); event reversals go through
// EventService with Event.Reverses set.
type ReversalService interface {
	// ReverseCommission reverses commission row id of the tenant in full with reason and returns
	// the negative row. Errors: NOT_FOUND, NOT_REVERSIBLE.
	ReverseCommission(ctx context.Context, tenant string, id uuid.UUID, reason *string) (Commission, error)
}
