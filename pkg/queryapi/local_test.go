package queryapi

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQryLocalCache: an answer is kept only if its tenant was not invalidated while it was
// read, only while the subscription is live, and never past its TTL.
func TestQryLocalCache(t *testing.T) {
	l := newLocalCache(time.Hour, 3, 1<<20)
	now := time.Now()
	// Not subscribed yet: nothing is kept.
	tok := l.token()
	l.put("t1", "k", []byte("a"), 1, tok, now)
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("kept without a live subscription")
	}
	l.setValid(true)
	tok = l.token()
	l.put("t1", "k", []byte("a"), 1, tok, now)
	if b, ok := l.get("t1", "k"); !ok || string(b.([]byte)) != "a" {
		t.Fatal("not kept")
	}
	// A read that straddles an invalidation of its tenant is not kept; other tenants' reads are.
	tok1, tok2 := l.token(), l.token()
	l.invalidate("t1")
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("served after invalidation")
	}
	l.put("t1", "k", []byte("old"), 3, tok1, now)
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("kept a read that straddled an invalidation")
	}
	l.put("t2", "k", []byte("b"), 1, tok2, now)
	if _, ok := l.get("t2", "k"); !ok {
		t.Fatal("other tenant's read dropped")
	}
	// A lost subscription empties and bypasses the cache; a token from before a flush is stale.
	tok = l.token()
	l.setValid(false)
	if _, ok := l.get("t2", "k"); ok {
		t.Fatal("served without a live subscription")
	}
	l.setValid(true)
	l.put("t2", "k", []byte("c"), 1, tok, now)
	if _, ok := l.get("t2", "k"); ok {
		t.Fatal("kept a read from before a flush")
	}
	// TTL.
	tok = l.token()
	l.put("t3", "k", []byte("d"), 1, tok, now.Add(-2*time.Hour))
	if _, ok := l.get("t3", "k"); ok {
		t.Fatal("served past the TTL")
	}
	// Entry bound: the oldest entries make room.
	for i, k := range []string{"a", "b", "c", "d"} {
		tok := l.token()
		l.put("t4", k, []byte{byte(i)}, 1, tok, now)
	}
	if n := l.order.Len(); n != 3 {
		t.Fatalf("%d entries, want the bound 3", n)
	}
	if _, ok := l.get("t4", "a"); ok {
		t.Fatal("the oldest entry was kept past the bound")
	}
	if _, ok := l.get("t4", "d"); !ok {
		t.Fatal("the newest entry was dropped")
	}
}

// qryCheckAccounting fails unless the cache's byte count is the sum of its entries' costs and
// every entry is indexed under its tenant.
func qryCheckAccounting(t *testing.T, l *localCache) {
	t.Helper()
	sum, indexed := 0, 0
	for el := l.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*localEntry)
		sum += e.cost
		if l.tenants[e.tenant][e.key] != el {
			t.Fatalf("entry %q of %s is not indexed", e.key, e.tenant)
		}
	}
	for _, m := range l.tenants {
		indexed += len(m)
	}
	if sum != l.bytes || indexed != l.order.Len() {
		t.Fatalf("accounting: %d bytes counted, entries cost %d; %d indexed, %d held", l.bytes, sum, indexed, l.order.Len())
	}
}

// TestQryLocalCacheByteBudget: a flood of distinct keys with bodies of every size never takes
// the cache past its byte budget, by its own accounting, and the newest answer is always kept.
func TestQryLocalCacheByteBudget(t *testing.T) {
	const budget = 256 << 10
	l := newLocalCache(time.Hour, 1_000_000, budget)
	l.setValid(true)
	now := time.Now()
	body := make([]byte, 60<<10)
	for i := range 5000 {
		tenant := "t" + strconv.Itoa(i%7)
		key := strings.Repeat("k", i%300) + strconv.Itoa(i)
		size := (i * 7919) % len(body)
		l.put(tenant, key, body[:size], size, l.token(), now)
		if l.bytes > budget {
			t.Fatalf("after %d puts: %d bytes, budget %d", i+1, l.bytes, budget)
		}
		if _, ok := l.get(tenant, key); !ok {
			t.Fatalf("put %d (%d bytes) was not kept", i, size)
		}
		if i%500 == 0 {
			qryCheckAccounting(t, l)
		}
	}
	qryCheckAccounting(t, l)
	// An answer larger than the whole budget is not kept, and evicts nothing.
	n := l.order.Len()
	l.put("t0", "huge", make([]byte, budget), budget, l.token(), now)
	if _, ok := l.get("t0", "huge"); ok || l.order.Len() != n {
		t.Fatal("an answer over the budget was kept")
	}
	// Invalidation gives the tenant's bytes back.
	l.invalidate("t3")
	if len(l.tenants["t3"]) != 0 {
		t.Fatal("invalidated entries kept")
	}
	qryCheckAccounting(t, l)
}

// TestQryLocalCacheExpiry: expired entries leave the cache — when it is next written to, on
// the periodic sweep, and when they are asked for — and their bytes with them.
func TestQryLocalCacheExpiry(t *testing.T) {
	clock := time.Now()
	l := newLocalCache(time.Second, 1000, 1<<20)
	l.now = func() time.Time { return clock }
	l.setValid(true)
	for i := range 100 {
		l.put("t1", strconv.Itoa(i), []byte("x"), 1, l.token(), clock)
	}
	clock = clock.Add(2 * time.Second)
	l.put("t1", "fresh", []byte("y"), 1, l.token(), clock)
	if n := l.order.Len(); n != 1 {
		t.Fatalf("%d entries after a write past the TTL, want 1", n)
	}
	qryCheckAccounting(t, l)

	clock = clock.Add(2 * time.Second)
	l.expire()
	if l.order.Len() != 0 || l.bytes != 0 || len(l.tenants) != 0 {
		t.Fatalf("after the sweep: %d entries, %d bytes", l.order.Len(), l.bytes)
	}

	l.put("t1", "k", []byte("z"), 1, l.token(), clock)
	clock = clock.Add(2 * time.Second)
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("served past the TTL")
	}
	if l.order.Len() != 0 || l.bytes != 0 {
		t.Fatal("an expired entry stayed after it was asked for")
	}
	// A read that took longer than the TTL is not kept at all.
	l.put("t1", "slow", []byte("z"), 1, l.token(), clock.Add(-2*time.Second))
	if l.order.Len() != 0 {
		t.Fatal("kept a read that started more than a TTL ago")
	}
}
