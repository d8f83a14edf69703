package apishape

import (
	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Impression is the answer of POST /v1/referral/impressions (SPEC §15): the recorded
// impression's id (null when the code is unknown, inactive, expired or exhausted, and nothing
// was recorded), the code and whether it is valid.
type Impression struct {
	ImpressionID *uuid.UUID `json:"impression_id"`
	Code         string     `json:"code"`
	Valid        bool       `json:"valid"`
}

// NewImpression converts the outcome of recording an impression of code.
func NewImpression(code string, r referral.RecordedImpression) Impression {
	return Impression{ImpressionID: r.ID, Code: code, Valid: r.Valid}
}

// Funnel is the answer of GET /v1/referral/funnel (SPEC §15).
type Funnel struct {
	Period              string         `json:"period"`
	Impressions         int64          `json:"impressions"`
	Referrals           int64          `json:"referrals"`
	LinkedReferrals     int64          `json:"linked_referrals"`
	SuccessfulReferrals int64          `json:"successful_referrals"`
	BySource            []FunnelSource `json:"by_source"`
}

// FunnelSource is one source's share of a funnel; a null source holds impressions without one
// and referrals not linked to an impression.
type FunnelSource struct {
	Source              *string `json:"source"`
	Impressions         int64   `json:"impressions"`
	Referrals           int64   `json:"referrals"`
	SuccessfulReferrals int64   `json:"successful_referrals"`
}

// NewFunnel converts a funnel of period.
func NewFunnel(period referral.Period, f referral.Funnel) Funnel {
	return Funnel{Period: string(period), Impressions: f.Impressions, Referrals: f.Referrals,
		LinkedReferrals: f.LinkedReferrals, SuccessfulReferrals: f.Successful,
		BySource: Slice(f.BySource, func(s referral.FunnelSource) FunnelSource {
			return FunnelSource{Source: s.Source, Impressions: s.Impressions, Referrals: s.Referrals,
				SuccessfulReferrals: s.Successful}
		})}
}
