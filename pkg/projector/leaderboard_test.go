package projector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// qryLeaderSeed gives tenant one code per referrer and n referrals spread over referrers and
// the last 100 days, with every status.
func qryLeaderSeed(t *testing.T, p *Projector, tenant string, referrers, n int) {
	t.Helper()
	const codes = `INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'LB' || i, 'r' || i, true, 'player', now(), now() FROM generate_series(1, $2) i`
	if _, err := p.db.Exec(codes, tenant, referrers); err != nil {
		t.Fatal(err)
	}
	qryLeaderRefer(t, p, tenant, referrers, n, "p")
}

// qryLeaderRefer adds n referrals of random referrers among the first referrers, created at
// random times in the last 100 days with random statuses, for referees prefix0…
func qryLeaderRefer(t *testing.T, p *Projector, tenant string, referrers, n int, prefix string) {
	t.Helper()
	const refs = `INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, created_at, updated_at)
		SELECT gen_random_uuid(), $1, c.id, c.code, c.owner_user_id, $4 || i,
		       (ARRAY['pending', 'converted', 'verified', 'rejected'])[1 + (i * 7 + $5) % 4],
		       now() - make_interval(secs => (i * 7919 + $5) % (100 * 86400)), now()
		FROM generate_series(1, $2) i
		JOIN referral_codes c ON c.tenant_id = $1 AND c.code = 'LB' || (1 + (i * 31 + $5) % $3)`
	if _, err := p.db.Exec(refs, tenant, n, referrers, prefix, rand.IntN(1000)); err != nil {
		t.Fatal(err)
	}
}

// qryLeaderMatches checks every period's sorted set against PostgreSQL's leaderboard at the
// projector's clock, row by row (order, ranks, counts).
func qryLeaderMatches(t *testing.T, p *Projector, rdb *redis.Client, tenant, when string) {
	t.Helper()
	ctx := context.Background()
	for _, per := range referral.PeriodNames {
		want, err := postgres.NewSource(p.db).Leaderboard(ctx, tenant, referral.Period(per).Start(p.Now()))
		if err != nil {
			t.Fatal(err)
		}
		zs, err := rdb.ZRangeWithScores(ctx, cache.LeaderboardKey(tenant, per), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, z := range zs {
			s, tot := cache.LeaderCounts(z.Score)
			got = append(got, fmt.Sprintf("%d %s %d/%d", i+1, z.Member, s, tot))
		}
		var exp []string
		for _, e := range want {
			exp = append(exp, fmt.Sprintf("%d %s %d/%d", e.Rank, e.UserID, e.Successful, e.Total))
		}
		if strings.Join(got, "\n") != strings.Join(exp, "\n") {
			t.Fatalf("%s, %s: Redis\n%s\nPostgreSQL\n%s", when, per, strings.Join(got, "\n"), strings.Join(exp, "\n"))
		}
	}
}

// TestQryProjectorLeaderboards: the leaderboards are sorted sets whose order is SPEC §4.4's
// (successful, total, user id), equal to PostgreSQL's after a rebuild, after new referrals and
// status changes, and after time passes with no write at all (referrals leave the 7/30/90-day
// windows); and one new referral costs one ZADD per period however big the tenant.
func TestQryProjectorLeaderboards(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	qryLeaderSeed(t, p, "big", 300, 3000)
	qryRound(t, p)
	qryLeaderMatches(t, p, rdb, "big", "after the rebuild")

	qryLeaderRefer(t, p, "big", 300, 40, "q")
	if _, err := p.db.Exec(`UPDATE referrals SET status = 'converted' WHERE tenant_id = 'big' AND id IN
		(SELECT id FROM referrals WHERE tenant_id = 'big' AND status = 'pending' ORDER BY id LIMIT 25)`); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	qryLeaderMatches(t, p, rdb, "big", "after new referrals and conversions")

	// Five days pass without a write: the sweep moves the windows.
	start := time.Now()
	p.Now = func() time.Time { return time.Now().Add(5 * 24 * time.Hour) }
	qryRound(t, p)
	qryLeaderMatches(t, p, rdb, "big", "five days later")
	p.Now = func() time.Time { return start.Add(5*24*time.Hour + time.Since(start)) }

	// One new referral: a ZADD per period and two list entries (all, its status), out of the
	// other statuses' lists — not a rewrite of the tenant's rankings or of the referrer's list.
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	p.lastSweep = p.Now() // no sweep in this round
	qryLeaderRefer(t, p, "big", 300, 1, "one")
	qryRound(t, p)
	stats := rdb.Info(ctx, "commandstats").Val()
	if !strings.Contains(stats, "cmdstat_zadd:calls=6,") || !strings.Contains(stats, "cmdstat_zrem:calls=3,") {
		t.Fatalf("one new referral: want 6 ZADD and 3 ZREM calls, commandstats:\n%s", stats)
	}
	qryLeaderMatches(t, p, rdb, "big", "after one more")
}
