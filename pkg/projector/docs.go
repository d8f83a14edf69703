package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// chunk is how many users one batched read loads.
const chunk = 500

// UserSections loads the given sections of users from PostgreSQL as the JSON documents the
// cache stores: section → user → document. Every requested user gets every requested section
// (an empty list or null when it has none).
func UserSections(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string, sections []string) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	for start := 0; start < len(users); start += chunk {
		part := users[start:min(len(users), start+chunk)]
		for _, sec := range sections {
			docs, err := loadSection(ctx, q, tenant, part, sec)
			if err != nil {
				return nil, err
			}
			m := out[sec]
			if m == nil {
				m = map[string][]byte{}
				out[sec] = m
			}
			for _, u := range part {
				b, err := json.Marshal(docs[u])
				if err != nil {
					return nil, fmt.Errorf("encode %s: %w", sec, err)
				}
				m[u] = b
			}
		}
	}
	return out, nil
}

// loadSection returns one section per user as a value ready to encode.
func loadSection(ctx context.Context, q sqlx.QueryerContext, tenant string, users []string, sec string) (map[string]any, error) {
	out := make(map[string]any, len(users))
	switch sec {
	case cache.SectionCodes:
		m, err := postgres.NewSource(q).UserCodes(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out[u] = apishape.Slice(m[u], apishape.NewCode)
		}
	case cache.SectionMe:
		m, err := postgres.NewSource(q).RefereeReferrals(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if r, ok := m[u]; ok {
				d := apishape.NewReferral(r)
				out[u] = &d
			} else {
				out[u] = (*apishape.Referral)(nil)
			}
		}
	case cache.SectionReferrals:
		m, err := postgres.NewSource(q).ReferrerReferrals(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out[u] = apishape.Slice(m[u], apishape.NewReferral)
		}
	case cache.SectionReferralStats:
		m, err := postgres.NewSource(q).ReferrerReferrals(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			docs := make([]cache.ReferralStatDoc, 0, len(m[u]))
			for _, r := range m[u] {
				docs = append(docs, cache.ReferralStatDoc{CreatedAt: r.CreatedAt.UnixMicro(), Status: r.Status})
			}
			out[u] = docs
		}
	case cache.SectionRewardStats:
		m, err := postgres.NewSource(q).UserRewards(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			docs := make([]cache.RewardStatDoc, 0, len(m[u]))
			for _, r := range m[u] {
				docs = append(docs, cache.RewardStatDoc{CreatedAt: r.CreatedAt.UnixMicro(), CurrencyID: r.CurrencyID, Amount: r.Amount})
			}
			out[u] = docs
		}
	case cache.SectionRewards:
		m, err := postgres.NewSource(q).UserRewards(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out[u] = apishape.Slice(m[u], apishape.NewReward)
		}
	case cache.SectionAffiliate:
		m, err := postgres.NewSource(q).UserAffiliates(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if a, ok := m[u]; ok {
				d := apishape.NewAffiliate(a)
				d.TierID = nil // the effective tier depends on the ladder too: derived on read
				out[u] = &d
			} else {
				out[u] = (*apishape.Affiliate)(nil)
			}
		}
	case cache.SectionCommissions:
		m, err := postgres.NewSource(q).UserCommissions(ctx, tenant, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out[u] = apishape.Slice(m[u], apishape.NewCommission)
		}
	default:
		return nil, fmt.Errorf("unknown section %q", sec)
	}
	return out, nil
}

// CampaignsDoc loads the tenant's active campaigns (whatever their window: the window is
// checked on read, so the document stays right as time passes).
func CampaignsDoc(ctx context.Context, q sqlx.QueryerContext, tenant string) ([]byte, error) {
	cs, err := postgres.NewSource(q).Campaigns(ctx, tenant)
	if err != nil {
		return nil, err
	}
	docs := make([]ActiveCampaign, 0, len(cs))
	for _, c := range cs {
		if c.Active {
			docs = append(docs, ActiveCampaign{PublicCampaign: apishape.NewPublicCampaign(c)})
		}
	}
	return json.Marshal(docs)
}

// ActiveCampaign is an active campaign as the campaigns document stores it.
type ActiveCampaign struct {
	apishape.PublicCampaign
}

// ActiveAt reports whether now lies inside the campaign's window (referral.InWindow).
func (c ActiveCampaign) ActiveAt(now time.Time) bool {
	return referral.InWindow((*time.Time)(c.StartsAt), (*time.Time)(c.EndsAt), now)
}

// TiersDoc loads the tenant's tier ladder, priority descending.
func TiersDoc(ctx context.Context, q sqlx.QueryerContext, tenant string) ([]byte, error) {
	ts, err := postgres.NewSource(q).Tiers(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return json.Marshal(apishape.Slice(ts, apishape.NewTier))
}

// CodeDocs loads the live codes with the given strings: code → document ("null" when none).
func CodeDocs(ctx context.Context, q sqlx.QueryerContext, tenant string, codes []string) (map[string][]byte, error) {
	m, err := postgres.NewSource(q).CodesByString(ctx, tenant, codes)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(codes))
	for _, code := range codes {
		var b []byte
		if c, ok := m[code]; ok {
			b, err = json.Marshal(apishape.NewCode(c))
		} else {
			b, err = json.Marshal(nil)
		}
		if err != nil {
			return nil, fmt.Errorf("encode code: %w", err)
		}
		out[code] = b
	}
	return out, nil
}
