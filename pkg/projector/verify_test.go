package projector

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/cache"
)

// TestQryProjectorVerifier: documents that drifted from PostgreSQL — a section, a leaderboard
// score, a list entry — are found by a verification, counted, and repaired; a verification of
// correct documents finds nothing.
func TestQryProjectorVerifier(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	qryLeaderSeed(t, p, "t1", 5, 60)
	qryRound(t, p)
	p.VerifySoon()
	p.lastSweep = p.Now()
	qryRound(t, p)
	if got := qryCount(p.metrics.DriftFound); got != 0 || qryCount(p.metrics.Verified) == 0 {
		t.Fatalf("verifying correct documents: drift %v, verified %v", got, qryCount(p.metrics.Verified))
	}

	rdb.HSet(ctx, cache.UserKey("t1", "r1"), cache.SectionCodes, `[]`)
	rdb.ZAdd(ctx, cache.LeaderboardKey("t1", "all"), redis.Z{Score: cache.LeaderScore(99, 99), Member: "r2"})
	ids := rdb.ZRange(ctx, cache.ReferralsKey("t1", "r3", ""), 0, 0).Val()
	if len(ids) != 1 {
		t.Fatal("r3 has no referrals")
	}
	rdb.ZRem(ctx, cache.ReferralsKey("t1", "r3", ""), ids[0])
	want := rdb.HGet(ctx, cache.ReferralObjectsKey("t1"), ids[0]).Val()
	rdb.HSet(ctx, cache.ReferralObjectsKey("t1"), ids[0], `{}`)

	p.VerifySoon()
	p.lastSweep = p.Now()
	qryRound(t, p)
	found, repaired := qryCount(p.metrics.DriftFound), qryCount(p.metrics.DriftRepaired)
	if found < 4 || repaired != found {
		t.Fatalf("drift found %v, repaired %v; want at least 4, all repaired", found, repaired)
	}
	if s := rdb.HGet(ctx, cache.UserKey("t1", "r1"), cache.SectionCodes).Val(); s == `[]` {
		t.Fatal("the codes section was not repaired")
	}
	if sc, tot := cache.LeaderCounts(rdb.ZScore(ctx, cache.LeaderboardKey("t1", "all"), "r2").Val()); sc == 99 || tot == 99 {
		t.Fatal("the leaderboard row was not repaired")
	}
	if rdb.ZScore(ctx, cache.ReferralsKey("t1", "r3", ""), ids[0]).Err() != nil ||
		rdb.HGet(ctx, cache.ReferralObjectsKey("t1"), ids[0]).Val() != want {
		t.Fatal("the list entry was not repaired")
	}
	p.VerifySoon()
	p.lastSweep = p.Now()
	qryRound(t, p)
	if got := qryCount(p.metrics.DriftFound); got != found {
		t.Fatalf("drift %v after the repair, want still %v", got, found)
	}
}
