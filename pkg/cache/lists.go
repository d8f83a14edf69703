package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The referrals a user made are kept as sorted sets of referral ids scored by created_at (Unix
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
	keys := []string{EpochKey(tenant), ReferralsKey(tenant, user, status), ReferralObjectsKey(tenant)}
	v, err := pageScript.Run(ctx, s.rdb, keys, offset, limit).Slice()
	if errors.Is(err, redis.Nil) {
		return false, 0, nil, nil
	}
	if err != nil {
		return false, 0, nil, fmt.Errorf("redis referral page: %w", err)
	}
	total = int(v[0].(int64))
	docs = make([]json.RawMessage, 0, len(v)-1)
	for _, d := range v[1:] {
		str, ok := d.(string)
		if !ok {
			return false, 0, nil, fmt.Errorf("redis referral page: a listed referral has no object")
		}
		docs = append(docs, json.RawMessage(str))
	}
	return true, total, docs, nil
}

// countScript counts a user's referrals per status created at or after a moment, with one
// section of the user's hash, in one atomic read: KEYS[1] epoch, KEYS[2] user hash, KEYS[3…]
// status sets; ARGV[1] since (Unix µs, or -inf), ARGV[2] section. It returns false without an
// epoch, else {section or false, count…}.
var countScript = redis.NewScript(`
if not redis.call('GET', KEYS[1]) then return false end
local out = {redis.call('HGET', KEYS[2], ARGV[2])}
for k = 3, #KEYS do out[k - 1] = redis.call('ZCOUNT', KEYS[k], ARGV[1], '+inf') end
return out`)

// ReferralCounts returns how many referrals of each of statuses user made created at or after
// sinceMicro (nil: all time), together with one section of the user's hash (nil when missing),
// read atomically, so that counts and the section come from the same projected transactions;
// served is false when the tenant has no epoch.
func (s *Store) ReferralCounts(ctx context.Context, tenant, user string, sinceMicro *int64, statuses []string, section string) (served bool, counts []int64, doc []byte, err error) {
	keys := []string{EpochKey(tenant), UserKey(tenant, user)}
	for _, st := range statuses {
		keys = append(keys, ReferralsKey(tenant, user, st))
	}
	since := "-inf"
	if sinceMicro != nil {
		since = fmt.Sprint(*sinceMicro)
	}
	v, err := countScript.Run(ctx, s.rdb, keys, since, section).Slice()
	if errors.Is(err, redis.Nil) {
		return false, nil, nil, nil
	}
	if err != nil {
		return false, nil, nil, fmt.Errorf("redis referral counts: %w", err)
	}
	if str, ok := v[0].(string); ok {
		doc = []byte(str)
	}
	for _, c := range v[1:] {
		counts = append(counts, c.(int64))
	}
	return true, counts, doc, nil
}
