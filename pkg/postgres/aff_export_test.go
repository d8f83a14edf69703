package postgres

import (
	"context"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// The helpers the events engine calls inside its transaction, exposed to this package's
// external tests.

func (s *Store) AffLoadTiers(ctx context.Context, tenant string) ([]referral.Tier, error) {
	return loadTiers(ctx, s.db, tenant)
}

func (s *Store) AffConvertedReferrals(ctx context.Context, tenant, userID string) (int64, error) {
	return s.convertedReferrals(ctx, s.db, tenant, userID)
}

func (s *Store) AffLoadAffiliateByUser(ctx context.Context, tenant, userID string) (*referral.Affiliate, error) {
	return s.loadAffiliateByUser(ctx, s.db, tenant, userID)
}
