package queryapi

import (
	"context"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// What the in-process cache counts for a cached campaign and for each of its milestones.
const (
	milestoneCampaignCost = 512
	milestoneCost         = 96
)

// milestones returns the caller's progress towards the milestones of the tenant's campaigns
// active now (SPEC §13) for GET /v1/referral/stats. No Redis document holds it yet, so it is
// read through from PostgreSQL on the bounded, deduplicated fallback path: the tenant's
// milestone campaigns once (kept in the in-process cache, dropped with the tenant's other
// answers when the projector announces a change), and, only when there are any, the caller's
// count per campaign and paid thresholds.
func (a *API) milestones(ctx context.Context, tenant, user string) ([]apishape.MilestoneProgress, error) {
	all, err := a.milestoneCampaigns(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := a.Now()
	var live []referral.Campaign
	for _, c := range all {
		if c.ActiveAt(now) {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return []apishape.MilestoneProgress{}, nil
	}
	v, err := a.fallback(ctx, "milestones\x00"+tenant+"\x00"+user, "milestones", func(ctx context.Context) (any, error) {
		return a.store.PlayerMilestones(ctx, tenant, user, live)
	})
	if err != nil {
		return nil, err
	}
	return apishape.Slice(v.([]referral.MilestoneProgress), apishape.NewMilestoneProgress), nil
}

// milestoneCampaigns returns the tenant's active campaigns with milestones, from the in-process
// cache when it holds them.
func (a *API) milestoneCampaigns(ctx context.Context, tenant string) ([]referral.Campaign, error) {
	const key = "d\x00milestone-campaigns"
	if a.local != nil {
		if v, ok := a.local.get(tenant, key); ok {
			return v.([]referral.Campaign), nil
		}
	}
	v, err := a.fallback(ctx, "milestone-campaigns\x00"+tenant, "milestones", func(ctx context.Context) (any, error) {
		return a.store.MilestoneCampaigns(ctx, tenant)
	})
	if err != nil {
		return nil, err
	}
	cs := v.([]referral.Campaign)
	size := milestoneCampaignCost
	for _, c := range cs {
		size += milestoneCampaignCost + milestoneCost*len(c.Milestones)
	}
	a.keep(ctx, tenant, key, cs, size)
	return cs, nil
}
