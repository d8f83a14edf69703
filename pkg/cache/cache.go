// Package cache is the Query Gateway's Redis read-model store: the documents the projector
// writes, the position it has reached in the change log, and guarded read-through fills.
//
// Every key of a tenant carries the tenant as a Redis Cluster hash tag ("phx:{tenant}:…"), so a
// tenant's documents live in one slot and one MULTI/EXEC can replace several of them at once.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-user document sections: fields of the user's hash.
const (
	SectionCodes     = "codes" // []apishape.Code the user owns
	SectionMe        = "me"    // *apishape.Referral that referred the user (null when none)
	SectionAffiliate = "aff"   // *apishape.Affiliate (null when the user is no affiliate)
)

// Documents read from PostgreSQL only, when Redis cannot answer: the referrals a user made, the
// rewards paid to a user and the commissions a user earned live in sorted sets (lists.go), not
// in the user's hash.
const (
	SectionCommissions   = "comm"    // []apishape.Commission the user earned
	SectionReferrals     = "refs"    // []apishape.Referral the user made
	SectionReferralStats = "rsum"    // []ReferralStatDoc of the referrals the user made
	SectionRewards       = "rewards" // []apishape.Reward paid to the user
	SectionRewardStats   = "wsum"    // []RewardStatDoc of the rewards paid to the user
)

// Sections lists every per-user section of the user's hash.
var Sections = []string{SectionCodes, SectionMe, SectionAffiliate}

// PositionKey holds the projector's position (not tenant-scoped).
const PositionKey = "phx:pos"

// TenantKey returns a tenant-scoped key: phx:{tenant}:part1:part2….
func TenantKey(tenant string, parts ...string) string {
	return "phx:{" + tenant + "}:" + strings.Join(parts, ":")
}

// UserKey returns the hash holding a user's sections.
func UserKey(tenant, user string) string { return TenantKey(tenant, "u", user) }

// EpochKey returns the key holding the epoch of a tenant's documents.
func EpochKey(tenant string) string { return TenantKey(tenant, "epoch") }

// CampaignsKey returns the key of the tenant's active campaigns.
func CampaignsKey(tenant string) string { return TenantKey(tenant, "campaigns") }

// TiersKey returns the key of the tenant's tier ladder.
func TiersKey(tenant string) string { return TenantKey(tenant, "tiers") }

// CodeKey returns the key of the live code with this (normalised) string.
func CodeKey(tenant, code string) string { return TenantKey(tenant, "code", code) }

// LeaderboardKey returns the sorted set of the tenant's leaderboard for a period (leaderboard.go).
func LeaderboardKey(tenant, period string) string { return TenantKey(tenant, "lb", period) }

// AffiliateGenKey returns the key of the tenant's affiliate-structure generation.
func AffiliateGenKey(tenant string) string { return TenantKey(tenant, "affgen") }

// Position is where the projector stands in the change log of one database.
type Position struct {
	// DatabaseID is postgres.Source.Identity of the database the documents came from.
	DatabaseID string `json:"db"`
	// Snapshot is the PostgreSQL snapshot (pg_snapshot text) the documents reflect: every change
	// of a transaction it shows as completed is applied, and no other.
	Snapshot string `json:"snap"`
	// HW is the snapshot's xmin: every change of a transaction below it is applied.
	HW uint64 `json:"hw"`
	// Seq is the highest change seq applied, and MarkAt when that change row was recorded (Unix
	// µs): the row must still be in the log with that time, or the log was truncated or belongs
	// to another history of the database.
	Seq    int64 `json:"seq"`
	MarkAt int64 `json:"mark_at"`
	// Epoch identifies the rebuild the documents descend from; read-through fills carry it.
	Epoch string `json:"epoch"`
	// Building reports that the rebuild of Epoch has written its documents but not yet
	// installed the epoch in the tenants (it does once a round finds the change log caught up):
	// until then, rounds write without it and reads fall through to PostgreSQL.
	Building bool `json:"building,omitempty"`
	// SavedAt is when the position was last written.
	SavedAt time.Time `json:"saved_at"`
	// Term is the fencing term of the projector that saved it.
	Term int64 `json:"term"`
	// Target, during a long catch-up, is the snapshot whose completed transactions are being
	// applied chunk by chunk (TargetHW its xmin), and Cursor the last entity applied; the
	// position moves to Target when they all are.
	Target   string `json:"target,omitempty"`
	TargetHW uint64 `json:"target_hw,omitempty"`
	Cursor   Cursor `json:"cursor,omitzero"`
}

// Cursor is an entity in the order a catch-up applies them: tenant, entity, id.
type Cursor struct {
	Tenant string `json:"t,omitempty"`
	Entity string `json:"e,omitempty"`
	ID     string `json:"i,omitempty"`
}

// Store reads and writes read models in Redis.
type Store struct {
	rdb redis.UniversalClient
}

// New returns a Store over rdb (a single node or a cluster client).
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Client returns the underlying Redis client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Get returns a string document; ok is false when the key is missing.
func (s *Store) Get(ctx context.Context, key string) (b []byte, ok bool, err error) {
	b, err = s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis get: %w", err)
	}
	return b, true, nil
}

// HGetMulti returns several sections of a user's hash (nil entries are missing).
func (s *Store) HGetMulti(ctx context.Context, key string, fields ...string) ([][]byte, error) {
	vals, err := s.rdb.HMGet(ctx, key, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis hmget: %w", err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}

// Sections returns sections of a user's hash, all nil (missing) unless the tenant has an epoch:
// a tenant without one is never projected, wiped, or being rebuilt, and its documents are not
// served until the rebuild installs the epoch (complete and caught up).
func (s *Store) Sections(ctx context.Context, tenant, user string, fields ...string) ([][]byte, error) {
	var epoch *redis.StringCmd
	var vals *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		epoch = p.Get(ctx, EpochKey(tenant))
		vals = p.HMGet(ctx, UserKey(tenant, user), fields...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis sections: %w", err)
	}
	out := make([][]byte, len(fields))
	if epoch.Val() == "" {
		return out, nil
	}
	for i, v := range vals.Val() {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}

// Document returns a tenant's string document; ok is false when it is missing or the tenant
// has no epoch (as Sections).
func (s *Store) Document(ctx context.Context, tenant, key string) (b []byte, ok bool, err error) {
	var epoch, doc *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		epoch = p.Get(ctx, EpochKey(tenant))
		doc = p.Get(ctx, key)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, fmt.Errorf("redis get: %w", err)
	}
	if epoch.Val() == "" || doc.Err() != nil {
		return nil, false, nil
	}
	return []byte(doc.Val()), true, nil
}

// Epoch returns the epoch of the tenant's documents, "" when there is none (never projected, or
// wiped).
func (s *Store) Epoch(ctx context.Context, tenant string) (string, error) {
	b, ok, err := s.Get(ctx, EpochKey(tenant))
	if err != nil || !ok {
		return "", err
	}
	return string(b), nil
}

// fillScript stores a document read from PostgreSQL only if the tenant's epoch is still the one
// the reader saw before it read, and only if the projector has not written the document since.
// KEYS[1] epoch key, KEYS[2] document key; ARGV[1] epoch, ARGV[2] hash field or "", ARGV[3]
// value, ARGV[4] ttl in ms (0 = none).
var fillScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then return redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) end
if tonumber(ARGV[4]) > 0 then
  if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
  return 0
end
if redis.call('SET', KEYS[2], ARGV[3], 'NX') then return 1 end
return 0`)

// Fill stores a document the reader computed from PostgreSQL after it saw epoch, unless the
// tenant's documents were wiped or rebuilt since (epoch changed) or the projector has already
// written the document (the projector's copy is never older). field "" fills a string key;
// ttl 0 keeps it until the projector replaces it.
func (s *Store) Fill(ctx context.Context, tenant, epoch, key, field string, val []byte, ttl time.Duration) error {
	if epoch == "" {
		return nil
	}
	err := fillScript.Run(ctx, s.rdb, []string{EpochKey(tenant), key}, epoch, field, val, ttl.Milliseconds()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis fill: %w", err)
	}
	return nil
}

// Batch collects the writes of one tenant that must become visible together.
type Batch struct {
	Tenant string
	// Drift is how many of the batch's writes repair drift (a verifier's batch), 0 otherwise.
	Drift int
	sets  map[string]setOp
	setnx map[string][]byte
	hsets map[string]map[string][]byte
	zsets map[string]map[string]string // member → score ("" removes)
}

type setOp struct {
	val []byte
	ttl time.Duration
}

// NewBatch starts a batch for tenant.
func NewBatch(tenant string) *Batch {
	return &Batch{Tenant: tenant, sets: map[string]setOp{}, setnx: map[string][]byte{},
		hsets: map[string]map[string][]byte{}, zsets: map[string]map[string]string{}}
}

// Set replaces a string document (ttl 0: no expiry).
func (b *Batch) Set(key string, val []byte, ttl time.Duration) { b.sets[key] = setOp{val, ttl} }

// HSet replaces one field of a hash.
func (b *Batch) HSet(key, field string, val []byte) {
	m := b.hsets[key]
	if m == nil {
		m = map[string][]byte{}
		b.hsets[key] = m
	}
	m[field] = val
}

// ErrFenced is returned by a write of a projector whose term is older than the term that last
// wrote the same keys: another replica took over, and this one must stop projecting.
var ErrFenced = errors.New("fenced: a newer projector has written since")

// FenceKey returns the key holding the highest projector term that wrote the tenant.
func FenceKey(tenant string) string { return TenantKey(tenant, "term") }

// applyScript writes one tenant's batch atomically, unless a projector with a newer term has
// written the tenant (it then returns 0 and writes nothing). KEYS[1] fence, KEYS[2] epoch,
// KEYS[3…] documents; ARGV[1] term, ARGV[2] epoch, then per document 's', value, ttl ms (0 =
// none); 'n', value (set unless it exists); 'h', n, and n field/value pairs; or 'z', n, and n
// member/score pairs (an empty score removes the member).
var applyScript = redis.NewScript(`
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
local term = tonumber(ARGV[1])
if fence > term then return 0 end
if fence < term then redis.call('SET', KEYS[1], ARGV[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
local a = 3
for k = 3, #KEYS do
  if ARGV[a] == 's' then
    if tonumber(ARGV[a+2]) > 0 then
      redis.call('SET', KEYS[k], ARGV[a+1], 'PX', ARGV[a+2])
    else
      redis.call('SET', KEYS[k], ARGV[a+1])
    end
    a = a + 3
  elseif ARGV[a] == 'n' then
    redis.call('SET', KEYS[k], ARGV[a+1], 'NX')
    a = a + 2
  elseif ARGV[a] == 'z' then
    local n = tonumber(ARGV[a+1])
    for i = 0, n - 1 do
      local m, sc = ARGV[a + 2 + 2*i], ARGV[a + 3 + 2*i]
      if sc == '' then redis.call('ZREM', KEYS[k], m) else redis.call('ZADD', KEYS[k], sc, m) end
    end
    a = a + 2 + 2*n
  else
    local n = tonumber(ARGV[a+1])
    -- In slices: unpack is bounded by Lua's C stack.
    for i = 0, n - 1, 200 do
      local hi = math.min(i + 200, n)
      redis.call('HSET', KEYS[k], unpack(ARGV, a + 2 + 2*i, a + 1 + 2*hi))
    end
    a = a + 2 + 2*n
  end
end
return 1`)

// Apply writes a batch in one script, together with the tenant's epoch (epoch "" leaves it as
// it is: a rebuild writes without one until the tenant is complete and caught up), so that
// readers see all of it or none of it, and only if no projector with a newer term than term has written the
// tenant (ErrFenced otherwise). All keys share the tenant's hash tag, so this holds on a
// Redis Cluster too.
func (s *Store) Apply(ctx context.Context, b *Batch, epoch string, term int64) error {
	keys := make([]string, 0, 2+len(b.sets)+len(b.setnx)+len(b.hsets)+len(b.zsets))
	keys = append(keys, FenceKey(b.Tenant), EpochKey(b.Tenant))
	args := []any{term, epoch}
	for k, op := range b.sets {
		keys = append(keys, k)
		args = append(args, "s", op.val, op.ttl.Milliseconds())
	}
	for k, v := range b.setnx {
		keys = append(keys, k)
		args = append(args, "n", v)
	}
	for k, m := range b.hsets {
		keys = append(keys, k)
		args = append(args, "h", len(m))
		for f, v := range m {
			args = append(args, f, v)
		}
	}
	for k, m := range b.zsets {
		keys = append(keys, k)
		args = append(args, "z", len(m))
		for member, score := range m {
			args = append(args, member, score)
		}
	}
	n, err := applyScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("redis apply %s: %w", b.Tenant, err)
	}
	if n == 0 {
		return fmt.Errorf("redis apply %s: %w", b.Tenant, ErrFenced)
	}
	return nil
}

// Position returns the stored position; ok is false when there is none (a new or wiped Redis).
func (s *Store) Position(ctx context.Context) (p Position, ok bool, err error) {
	b, ok, err := s.Get(ctx, PositionKey)
	if err != nil || !ok {
		return p, false, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, false, nil
	}
	return p, true, nil
}

// savePosScript replaces the position only if the stored one still carries the expected epoch,
// so that a wipe between two rounds is noticed instead of being papered over (returns 0), and
// only if no projector with a newer term has saved a position of the same database (returns -1).
// ARGV[1] position, ARGV[2] expected epoch ("" = any), ARGV[3] database, ARGV[4] term.
var savePosScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = cjson.decode(cur)
  if c['db'] == ARGV[3] and tonumber(c['term'] or 0) > tonumber(ARGV[4]) then return -1 end
end
if ARGV[2] ~= '' then
  if not cur then return 0 end
  if cjson.decode(cur)['epoch'] ~= ARGV[2] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`)

// SavePosition stores p if the stored position has epoch expect ("" stores unconditionally) and
// reports whether it did; a position saved by a newer term of the same database is never
// replaced (ErrFenced).
func (s *Store) SavePosition(ctx context.Context, p Position, expect string) (bool, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encode position: %w", err)
	}
	n, err := savePosScript.Run(ctx, s.rdb, []string{PositionKey}, b, expect, p.DatabaseID, p.Term).Int()
	if err != nil {
		return false, fmt.Errorf("redis save position: %w", err)
	}
	if n < 0 {
		return false, fmt.Errorf("redis save position: %w", ErrFenced)
	}
	return n == 1, nil
}

// DropPosition deletes the position (it came from another history of the database).
func (s *Store) DropPosition(ctx context.Context) error {
	if err := s.rdb.Del(ctx, PositionKey).Err(); err != nil {
		return fmt.Errorf("redis drop position: %w", err)
	}
	return nil
}

// WipeAll deletes every Phoenix key (phx:*) on every node but the position (which a rebuild
// marks first, to fence it): documents from another database.
func (s *Store) WipeAll(ctx context.Context) error {
	wipe := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, "phx:*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			if iter.Val() == PositionKey {
				continue
			}
			keys = append(keys, iter.Val())
			if len(keys) >= 500 {
				for _, k := range keys {
					if err := c.Del(ctx, k).Err(); err != nil {
						return err
					}
				}
				keys = keys[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			if err := c.Del(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, wipe)
	case *redis.Client:
		err = wipe(ctx, c)
	default:
		err = fmt.Errorf("unsupported redis client %T", s.rdb)
	}
	if err != nil {
		return fmt.Errorf("redis wipe: %w", err)
	}
	return nil
}
