package cache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/cache"
)

// qryStore connects to the test Redis and returns a store and a tenant of this test only.
func qryStore(t *testing.T) (*cache.Store, *redis.Client, string) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	var b [5]byte
	rand.Read(b[:])
	tenant := "qry-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, "phx:{"+tenant+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return cache.New(rdb), rdb, tenant
}

// hget reads one section of a user's hash the way the gateway does; ok is false when it is
// missing.
func hget(ctx context.Context, s *cache.Store, key, field string) (b []byte, ok bool, err error) {
	v, err := s.HGetMulti(ctx, key, field)
	if err != nil {
		return nil, false, err
	}
	return v[0], v[0] != nil, nil
}

func TestQryKeysShareTheTenantSlot(t *testing.T) {
	keys := []string{cache.UserKey("t1", "u{x}"), cache.EpochKey("t1"), cache.CampaignsKey("t1"),
		cache.CodeKey("t1", "ABC"), cache.LeaderboardKey("t1", "7d")}
	for _, k := range keys {
		if k[:8] != "phx:{t1}" {
			t.Fatalf("key %q is not tagged with the tenant", k)
		}
	}
}

// TestQryFillGuard: a read-through fill lands only under the epoch the reader saw and never over
// a document the projector wrote.
func TestQryFillGuard(t *testing.T) {
	s, rdb, tenant := qryStore(t)
	ctx := context.Background()
	key := cache.UserKey(tenant, "alice")

	// No epoch (never projected or wiped): no fill.
	if err := s.Fill(ctx, tenant, "e1", key, cache.SectionCodes, []byte(`["stale"]`), 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := hget(ctx, s, key, cache.SectionCodes); ok {
		t.Fatal("filled without an epoch")
	}

	// The projector writes a batch (and the epoch) atomically.
	b := cache.NewBatch(tenant)
	b.HSet(key, cache.SectionCodes, []byte(`["projected"]`))
	if err := s.Apply(ctx, b, "e1", 0); err != nil {
		t.Fatal(err)
	}
	// A fill never replaces the projector's document.
	if err := s.Fill(ctx, tenant, "e1", key, cache.SectionCodes, []byte(`["older"]`), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := hget(ctx, s, key, cache.SectionCodes); string(v) != `["projected"]` {
		t.Fatalf("fill replaced a projected document: %s", v)
	}
	// A missing section is filled under the current epoch…
	if err := s.Fill(ctx, tenant, "e1", key, cache.SectionMe, []byte(`null`), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := hget(ctx, s, key, cache.SectionMe); !ok || string(v) != "null" {
		t.Fatalf("fill under the current epoch: %s %v", v, ok)
	}
	// …but not under an epoch from before a rebuild.
	if err := rdb.Set(ctx, cache.EpochKey(tenant), "e2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Fill(ctx, tenant, "e1", key, cache.SectionRewards, []byte(`[]`), 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := hget(ctx, s, key, cache.SectionRewards); ok {
		t.Fatal("filled under an old epoch")
	}
	// String documents with a TTL.
	lb := cache.TenantKey(tenant, "g", "gen1", "dlsize:x")
	if err := s.Fill(ctx, tenant, "e2", lb, "", []byte(`[]`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, lb).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %v", ttl)
	}
}
