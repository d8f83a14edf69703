package queryapi

import (
	"context"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// milestones returns the caller's progress towards the milestones of the tenant's active
// campaigns (SPEC §13) for GET /v1/referral/stats. It is read through from PostgreSQL on every
// stats answer that is not served from the in-process cache (no Redis document holds it yet),
// through the bounded, deduplicated fallback path: the campaigns, the caller's count per
// campaign and the paid thresholds, in one snapshot.
func (a *API) milestones(ctx context.Context, tenant, user string) ([]apishape.MilestoneProgress, error) {
	v, err := a.fallback(ctx, "milestones\x00"+tenant+"\x00"+user, "milestones", func(ctx context.Context) (any, error) {
		return a.store.PlayerMilestones(ctx, tenant, user)
	})
	if err != nil {
		return nil, err
	}
	return apishape.Slice(v.([]referral.MilestoneProgress), apishape.NewMilestoneProgress), nil
}
