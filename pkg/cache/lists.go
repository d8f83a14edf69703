package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The referrals a user made, the rewards paid to a user and the commissions a user earned are kept as sorted sets of referral ids scored by created_at (Unix
// µs) — one of all of them and one per status — and the referral objects in one hash of the
// tenant. Newest first is the sets' reverse order: equal scores fall back to the ids' bytes, which
// for uuids is PostgreSQL's id order. A new referral, or a status change, touches its own entries
// only (O(log n)); a page is a ZREVRANGE and an HMGET; period stats are ZCOUNTs.

// ReferralsKey returns the sorted set of the referrals user made, of one status ("" = all).
func ReferralsKey(tenant, user, status string) string {
	if status == "" {
		return TenantKey(tenant, "ra", user)
	}
	return TenantKey(tenant, "rs", status, user)
}

// ReferralObjectsKey returns the hash of the tenant's referral objects (id → apishape.Referral).
func ReferralObjectsKey(tenant string) string { return TenantKey(tenant, "obj", "referral") }

// RewardsKey returns the sorted set of the rewards paid to user, scored by created_at (µs).
func RewardsKey(tenant, user string) string { return TenantKey(tenant, "wa", user) }

// RewardObjectsKey returns the hash of the tenant's reward objects (id → apishape.Reward).
func RewardObjectsKey(tenant string) string { return TenantKey(tenant, "obj", "reward") }

// RewardAmountsKey returns the hash of the tenant's reward amounts (id → "amount currency"),
// what period totals read.
func RewardAmountsKey(tenant string) string { return TenantKey(tenant, "amt", "reward") }

// CommissionsKey returns the sorted set of the commissions user earned, scored by created_at.
func CommissionsKey(tenant, user string) string { return TenantKey(tenant, "ca", user) }

// CommissionObjectsKey returns the hash of the tenant's commission objects (id →
// apishape.Commission).
func CommissionObjectsKey(tenant string) string { return TenantKey(tenant, "obj", "commission") }

// CommissionAmountsKey returns the hash of the tenant's commission amounts (id → "amount level
// currency": the currency last, whatever it holds).
func CommissionAmountsKey(tenant string) string { return TenantKey(tenant, "amt", "commission") }

// PutCommission adds a commission (its JSON object doc) to its earner's list.
func (b *Batch) PutCommission(id, user string, level int, currency string, amount, createdAtMicro int64, doc []byte) {
	b.HSet(CommissionObjectsKey(b.Tenant), id, doc)
	b.HSet(CommissionAmountsKey(b.Tenant), id, []byte(fmt.Sprintf("%d %d %s", amount, level, currency)))
	b.zset(CommissionsKey(b.Tenant, user))[id] = fmt.Sprint(createdAtMicro)
}

// PutReward adds a reward (its JSON object doc) to its beneficiary's list.
func (b *Batch) PutReward(id, user, currency string, amount, createdAtMicro int64, doc []byte) {
	b.HSet(RewardObjectsKey(b.Tenant), id, doc)
	b.HSet(RewardAmountsKey(b.Tenant), id, []byte(fmt.Sprintf("%d %s", amount, currency)))
	b.zset(RewardsKey(b.Tenant, user))[id] = fmt.Sprint(createdAtMicro)
}

// PutReferral adds a referral (its JSON object doc) to its referrer's lists: the all-list and
// the list of status, and out of every other status's list.
func (b *Batch) PutReferral(id, referrer, status string, createdAtMicro int64, doc []byte, statuses []string) {
	b.HSet(ReferralObjectsKey(b.Tenant), id, doc)
	score := fmt.Sprint(createdAtMicro)
	b.zset(ReferralsKey(b.Tenant, referrer, ""))[id] = score
	for _, s := range statuses {
		if s == status {
			b.zset(ReferralsKey(b.Tenant, referrer, s))[id] = score
		} else {
			b.zset(ReferralsKey(b.Tenant, referrer, s))[id] = ""
		}
	}
}

func (b *Batch) zset(key string) map[string]string {
	m := b.zsets[key]
	if m == nil {
		m = map[string]string{}
		b.zsets[key] = m
	}
	return m
}

// pageScript reads one page of a list: KEYS[1] epoch, KEYS[2] sorted set, KEYS[3] objects;
// ARGV[1] offset, ARGV[2] limit. It returns false without an epoch, else {total, objects…}.
var pageScript = redis.NewScript(`
if not redis.call('GET', KEYS[1]) then return false end
local total = redis.call('ZCARD', KEYS[2])
local ids = redis.call('ZREVRANGE', KEYS[2], ARGV[1], tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)
local out = {total}
if #ids > 0 then
  local docs = redis.call('HMGET', KEYS[3], unpack(ids))
  for i = 1, #docs do out[i + 1] = docs[i] end
end
return out`)

// ReferralPage returns one page (newest first) of the referrals user made, of one status (""
// = all), and how many there are, in one round trip; served is false when the tenant has no
// epoch (its documents are not served: read PostgreSQL).
func (s *Store) ReferralPage(ctx context.Context, tenant, user, status string, offset, limit int) (served bool, total int, docs []json.RawMessage, err error) {
	return s.page(ctx, tenant, ReferralsKey(tenant, user, status), ReferralObjectsKey(tenant), offset, limit)
}

// CommissionPage returns one page (newest first) of the commissions user earned, as
// ReferralPage.
func (s *Store) CommissionPage(ctx context.Context, tenant, user string, offset, limit int) (served bool, total int, docs []json.RawMessage, err error) {
	return s.page(ctx, tenant, CommissionsKey(tenant, user), CommissionObjectsKey(tenant), offset, limit)
}

// RewardPage returns one page (newest first) of the rewards paid to user, as ReferralPage.
func (s *Store) RewardPage(ctx context.Context, tenant, user string, offset, limit int) (served bool, total int, docs []json.RawMessage, err error) {
	return s.page(ctx, tenant, RewardsKey(tenant, user), RewardObjectsKey(tenant), offset, limit)
}

func (s *Store) page(ctx context.Context, tenant, list, objects string, offset, limit int) (served bool, total int, docs []json.RawMessage, err error) {
	keys := []string{EpochKey(tenant), list, objects}
	v, err := pageScript.Run(ctx, s.rdb, keys, offset, limit).Slice()
	if errors.Is(err, redis.Nil) {
		return false, 0, nil, nil
	}
	if err != nil {
		return false, 0, nil, fmt.Errorf("redis page: %w", err)
	}
	total = int(v[0].(int64))
	docs = make([]json.RawMessage, 0, len(v)-1)
	for _, d := range v[1:] {
		str, ok := d.(string)
		if !ok {
			return false, 0, nil, fmt.Errorf("redis page: a listed entry of %s has no object", list)
		}
		docs = append(docs, json.RawMessage(str))
	}
	return true, total, docs, nil
}

// periodScript reads a user's figures over a period in one atomic read: KEYS[1] epoch, KEYS[2]
// user hash, KEYS[3] a list, KEYS[4] its amounts, KEYS[5…] sets to count; ARGV[1] since (Unix µs,
// or -inf), ARGV[2] a section of the user's hash ("" = none). It returns false without an
// epoch, else {section or false, {count per set…}, {amount of each list entry in the period…}}.
var periodScript = redis.NewScript(`
if not redis.call('GET', KEYS[1]) then return false end
local section = false
if ARGV[2] ~= '' then section = redis.call('HGET', KEYS[2], ARGV[2]) end
local counts = {}
for k = 5, #KEYS do counts[k - 4] = redis.call('ZCOUNT', KEYS[k], ARGV[1], '+inf') end
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[1], '+inf')
local amounts = {}
for i = 1, #ids, 500 do
  local part = redis.call('HMGET', KEYS[4], unpack(ids, i, math.min(i + 499, #ids)))
  for j = 1, #part do amounts[#amounts + 1] = part[j] end
end
return {section, counts, amounts}`)

// period runs periodScript; amounts are the raw amount values of the list's entries.
func (s *Store) period(ctx context.Context, keys []string, sinceMicro *int64, section string) (served bool, doc []byte, counts []int64, amounts []string, err error) {
	since := "-inf"
	if sinceMicro != nil {
		since = fmt.Sprint(*sinceMicro)
	}
	v, err := periodScript.Run(ctx, s.rdb, keys, since, section).Slice()
	if errors.Is(err, redis.Nil) {
		return false, nil, nil, nil, nil
	}
	if err != nil {
		return false, nil, nil, nil, fmt.Errorf("redis period: %w", err)
	}
	if str, ok := v[0].(string); ok {
		doc = []byte(str)
	}
	for _, c := range v[1].([]any) {
		counts = append(counts, c.(int64))
	}
	for _, a := range v[2].([]any) {
		str, ok := a.(string)
		if !ok {
			return false, nil, nil, nil, fmt.Errorf("redis period: a listed entry has no amount")
		}
		amounts = append(amounts, str)
	}
	return true, doc, counts, amounts, nil
}

// PeriodStats is a user's figures over a period: referrals made per status, and rewards paid
// per currency.
type PeriodStats struct {
	Counts  []int64
	Rewards map[string]int64
}

// PeriodStats returns how many referrals of each of statuses user made and the totals per
// currency of the rewards paid to user, created at or after sinceMicro (nil: all time), read
// atomically, so a referral and the rewards its transaction paid are counted together; served
// is false when the tenant has no epoch. Reading the totals costs the rewards in the period.
func (s *Store) PeriodStats(ctx context.Context, tenant, user string, sinceMicro *int64, statuses []string) (served bool, st PeriodStats, err error) {
	keys := []string{EpochKey(tenant), UserKey(tenant, user), RewardsKey(tenant, user), RewardAmountsKey(tenant)}
	for _, status := range statuses {
		keys = append(keys, ReferralsKey(tenant, user, status))
	}
	served, _, counts, amounts, err := s.period(ctx, keys, sinceMicro, "")
	if !served || err != nil {
		return false, st, err
	}
	st.Counts, st.Rewards = counts, map[string]int64{}
	for _, a := range amounts {
		f := strings.SplitN(a, " ", 2)
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) != 2 {
			return false, st, fmt.Errorf("redis period stats: amount %q", a)
		}
		st.Rewards[f[1]] += n
	}
	return true, st, nil
}

// CommissionAmount is what an affiliate's period figures need of one commission.
type CommissionAmount struct {
	CurrencyID string
	Amount     int64
	Level      int
}

// AffiliatePeriod returns a section of user's hash (the affiliate) and the commissions user
// earned created at or after sinceMicro (nil: all time), read atomically; served is false when
// the tenant has no epoch.
func (s *Store) AffiliatePeriod(ctx context.Context, tenant, user string, sinceMicro *int64, section string) (served bool, doc []byte, out []CommissionAmount, err error) {
	keys := []string{EpochKey(tenant), UserKey(tenant, user), CommissionsKey(tenant, user), CommissionAmountsKey(tenant)}
	served, doc, _, amounts, err := s.period(ctx, keys, sinceMicro, section)
	if !served || err != nil {
		return false, nil, nil, err
	}
	for _, a := range amounts {
		f := strings.SplitN(a, " ", 3)
		if len(f) != 3 {
			return false, nil, nil, fmt.Errorf("redis affiliate period: amount %q", a)
		}
		n, err1 := strconv.ParseInt(f[0], 10, 64)
		level, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return false, nil, nil, fmt.Errorf("redis affiliate period: amount %q", a)
		}
		out = append(out, CommissionAmount{CurrencyID: f[2], Amount: n, Level: level})
	}
	return true, doc, out, nil
}
