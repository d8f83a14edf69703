package projector

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// The verifier keeps exactness checked: incremental projections are only as right as every
// update ever applied, so the leader regularly recomputes a sample of users' documents from
// PostgreSQL and compares them with Redis, counting and repairing what differs.

// verifySample is how many users of each tenant one verification compares.
const verifySample = 20

// verifyEvery is how often the leader verifies when it is caught up (VerifySoon asks sooner).
const verifyEvery = time.Minute

// VerifySoon asks for a verification of every tenant at the next round that finds nothing to
// apply.
func (p *Projector) VerifySoon() { p.verifyAsked.Store(true) }

// verify recomputes, from the snapshot q, the documents of a sample of each known tenant's
// users — their sections, referral lists and leaderboard rows (counted at the tenant's
// leaderboard clock, the moment Redis holds them for) — and hands write the batches that repair what Redis holds differently. It runs only in a round
// that found no change to apply, so Redis reflects exactly q.
func (p *Projector) verify(ctx context.Context, q *sqlx.Tx, write func(*cache.Batch) error) error {
	if p.tenants == nil {
		if err := p.loadTenants(ctx, q); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(p.tenants))
	for t := range p.tenants {
		names = append(names, t)
	}
	clocks, err := p.cache.Clocks(ctx, names)
	if err != nil {
		return err
	}
	for _, tenant := range names {
		users, err := postgres.NewSource(q).SampleUsers(ctx, tenant, newToken()[:4], verifySample)
		if err != nil {
			return err
		}
		if len(users) == 0 {
			continue
		}
		tp := newTenantPlan()
		tp.touch(users, cache.Sections...)
		tp.listsOf = users
		if clock, ok := clocks[tenant]; ok {
			tp.clock = clock
			for _, u := range users {
				tp.referrers[u] = true
			}
		}
		b, err := p.build(ctx, q, tenant, tp)
		if err != nil {
			return err
		}
		drift, err := p.cache.Diff(ctx, b)
		if err != nil {
			return err
		}
		p.metrics.Verified.Add(float64(len(users)))
		if drift == 0 {
			continue
		}
		p.metrics.DriftFound.Add(float64(drift))
		p.log.Warn("readmodel_drift", "tenant", tenant, "users", len(users), "differences", drift)
		b.Drift = drift
		if err := write(b); err != nil {
			return err
		}
	}
	return nil
}
