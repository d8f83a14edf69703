package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A tenant's leaderboard for a period is a sorted set of its referrers. The order of SPEC §4.4
// — successful referrals descending, then total descending, then user id ascending in byte order
// — is the set's own order when the score is the negated pair (successful, total) packed into
// one integer: ascending scores put the best first, and members of equal score sort by their
// bytes. Ranks come from ZRANK; a new referral costs one ZADD per period (O(log n)).

// leaderShift packs (successful, total): total must stay below 2^26 (67 million referrals by one
// referrer), successful below 2^27, so the packed value stays exact in a float64 (2^53).
const leaderShift = 1 << 26

// LeaderScore is the sorted-set score of a referrer's counts.
func LeaderScore(successful, total int64) float64 {
	return -float64(successful*leaderShift + min(total, leaderShift-1))
}

// LeaderCounts unpacks a score into (successful, total).
func LeaderCounts(score float64) (successful, total int64) {
	v := int64(math.Round(-score))
	return v / leaderShift, v % leaderShift
}

// LeaderClockKey returns the key holding when (Unix µs) the tenant's leaderboards were last
// brought up to date with the passing of time (referrals leaving a period's window).
func LeaderClockKey(tenant string) string { return TenantKey(tenant, "lbclock") }

// LeaderRow is one referrer's place in a leaderboard.
type LeaderRow struct {
	Rank       int
	UserID     string
	Successful int64
	Total      int64
}

// Leaderboard is what one read of a leaderboard returns.
type Leaderboard struct {
	// Epoch is the tenant's epoch: "" when the tenant has no projected documents, and then the
	// rows mean nothing (read from PostgreSQL instead).
	Epoch string
	// Top are the first rows.
	Top []LeaderRow
	// Me is the asking user's row, nil when the user is not ranked.
	Me *LeaderRow
}

// Leaderboard reads the first n rows of the tenant's leaderboard for a period and the user's
// row, together with the tenant's epoch, in one transaction (one round trip, one state).
func (s *Store) Leaderboard(ctx context.Context, tenant, period string, n int, user string) (Leaderboard, error) {
	key := LeaderboardKey(tenant, period)
	var (
		epoch *redis.StringCmd
		top   *redis.ZSliceCmd
		rank  *redis.IntCmd
		score *redis.FloatCmd
	)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		epoch = p.Get(ctx, EpochKey(tenant))
		top = p.ZRangeWithScores(ctx, key, 0, int64(n-1))
		rank = p.ZRank(ctx, key, user)
		score = p.ZScore(ctx, key, user)
		return nil
	})
	var out Leaderboard
	if err != nil && !errors.Is(err, redis.Nil) {
		return out, fmt.Errorf("redis leaderboard: %w", err)
	}
	out.Epoch = epoch.Val()
	for i, z := range top.Val() {
		sc, tot := LeaderCounts(z.Score)
		out.Top = append(out.Top, LeaderRow{Rank: i + 1, UserID: z.Member.(string), Successful: sc, Total: tot})
	}
	if rank.Err() == nil && score.Err() == nil {
		sc, tot := LeaderCounts(score.Val())
		out.Me = &LeaderRow{Rank: int(rank.Val()) + 1, UserID: user, Successful: sc, Total: tot}
	}
	return out, nil
}

// Rank sets a referrer's counts in a leaderboard (a total of 0 removes the referrer).
func (b *Batch) Rank(key, user string, successful, total int64) {
	m := b.zset(key)
	if total <= 0 {
		m[user] = ""
		return
	}
	m[user] = strconv.FormatFloat(LeaderScore(successful, total), 'f', -1, 64)
}

// SetOnce sets a string document unless it exists.
func (b *Batch) SetOnce(key string, val []byte) { b.setnx[key] = val }

// Clocks returns the leaderboard clocks of tenants (tenants without one are absent).
func (s *Store) Clocks(ctx context.Context, tenants []string) (map[string]time.Time, error) {
	cmds := make([]*redis.StringCmd, len(tenants))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tenants {
			cmds[i] = p.Get(ctx, LeaderClockKey(t))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis leaderboard clocks: %w", err)
	}
	out := make(map[string]time.Time, len(tenants))
	for i, c := range cmds {
		if us, err := c.Int64(); err == nil {
			out[tenants[i]] = time.UnixMicro(us)
		}
	}
	return out, nil
}
