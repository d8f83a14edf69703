package cache

import "encoding/json"

// The read model stores the API objects in the shapes of package apishape, so that a hot read
// decodes little and renders what it read. The documents below are its own compact forms, of
// figures computed at read time.

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
