package adminapi

import (
	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// walletJSON is one reward in one currency.
type walletJSON struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// rewardsJSON is a campaign's rewards object: only "wallet" is defined.
type rewardsJSON struct {
	Wallet []walletJSON `json:"wallet"`
}

func toRewardsJSON(ws []referral.Wallet) rewardsJSON {
	out := rewardsJSON{Wallet: make([]walletJSON, 0, len(ws))}
	for _, w := range ws {
		out.Wallet = append(out.Wallet, walletJSON{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	return out
}

// rewardJSON is a reward ledger row.
type rewardJSON struct {
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

func toRewardJSON(r referral.Reward) rewardJSON {
	return rewardJSON{ID: r.ID, UserID: r.UserID, Role: r.Role, CampaignID: r.CampaignID,
		ReferralID: r.ReferralID, EventID: r.EventID, CurrencyID: r.CurrencyID, Amount: r.Amount,
		CreatedAt: web.Time(r.CreatedAt)}
}

func toRewardsList(rs []referral.Reward) []rewardJSON {
	out := make([]rewardJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, toRewardJSON(r))
	}
	return out
}

// commissionJSON is a commission ledger row.
type commissionJSON struct {
	ID           uuid.UUID  `json:"id"`
	AffiliateID  uuid.UUID  `json:"affiliate_id"`
	UserID       string     `json:"user_id"`
	Level        int        `json:"level"`
	SourceUserID string     `json:"source_user_id"`
	EventID      string     `json:"event_id"`
	RuleID       uuid.UUID  `json:"rule_id"`
	TierID       *uuid.UUID `json:"tier_id"`
	Rate         rateJSON   `json:"rate"`
	BaseAmount   int64      `json:"base_amount"`
	Amount       int64      `json:"amount"`
	CurrencyID   string     `json:"currency_id"`
	CreatedAt    web.Time   `json:"created_at"`
}

func toCommissionJSON(c referral.Commission) commissionJSON {
	return commissionJSON{ID: c.ID, AffiliateID: c.AffiliateID, UserID: c.UserID, Level: c.Level,
		SourceUserID: c.SourceUserID, EventID: c.EventID, RuleID: c.RuleID, TierID: c.TierID,
		Rate: rateJSON(c.Rate), BaseAmount: c.BaseAmount, Amount: c.Amount, CurrencyID: c.CurrencyID,
		CreatedAt: web.Time(c.CreatedAt)}
}

func toCommissionsList(cs []referral.Commission) []commissionJSON {
	out := make([]commissionJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, toCommissionJSON(c))
	}
	return out
}

// rateJSON is a rate as an exact JSON number with at most six decimals.
type rateJSON referral.Rate

// MarshalJSON writes the shortest exact decimal.
func (r rateJSON) MarshalJSON() ([]byte, error) { return []byte(referral.Rate(r).String()), nil }

// UnmarshalJSON reads a JSON number exactly; other types or out-of-range values fail.
func (r *rateJSON) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "" || s[0] == '"' || s == "null" || s == "true" || s == "false" || s[0] == '{' || s[0] == '[' {
		return referral.Invalid("rate", "must be a number from 0 to 1 with at most 6 decimal places")
	}
	v, err := referral.ParseRate(s)
	if err != nil {
		return referral.Invalid("rate", err.Error())
	}
	*r = rateJSON(v)
	return nil
}
