package queryapi

import (
	"testing"
	"time"
)

// TestQryLocalCache: an answer is kept only if its tenant was not invalidated while it was
// read, only while the subscription is live, and never past its TTL.
func TestQryLocalCache(t *testing.T) {
	l := newLocalCache(time.Hour, 3)
	now := time.Now()
	// Not subscribed yet: nothing is kept.
	tok := l.token("t1")
	l.put("t1", "k", []byte("a"), tok, now)
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("kept without a live subscription")
	}
	l.setValid(true)
	tok = l.token("t1")
	l.put("t1", "k", []byte("a"), tok, now)
	if b, ok := l.get("t1", "k"); !ok || string(b.([]byte)) != "a" {
		t.Fatal("not kept")
	}
	// A read that straddles an invalidation of its tenant is not kept; other tenants' reads are.
	tok1, tok2 := l.token("t1"), l.token("t2")
	l.invalidate("t1")
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("served after invalidation")
	}
	l.put("t1", "k", []byte("old"), tok1, now)
	if _, ok := l.get("t1", "k"); ok {
		t.Fatal("kept a read that straddled an invalidation")
	}
	l.put("t2", "k", []byte("b"), tok2, now)
	if _, ok := l.get("t2", "k"); !ok {
		t.Fatal("other tenant's read dropped")
	}
	// A lost subscription empties and bypasses the cache; a token from before a flush is stale.
	tok = l.token("t2")
	l.setValid(false)
	if _, ok := l.get("t2", "k"); ok {
		t.Fatal("served without a live subscription")
	}
	l.setValid(true)
	l.put("t2", "k", []byte("c"), tok, now)
	if _, ok := l.get("t2", "k"); ok {
		t.Fatal("kept a read from before a flush")
	}
	// TTL.
	tok = l.token("t3")
	l.put("t3", "k", []byte("d"), tok, now.Add(-2*time.Hour))
	if _, ok := l.get("t3", "k"); ok {
		t.Fatal("served past the TTL")
	}
	// Size bound: a full cache is emptied rather than grown.
	for i, k := range []string{"a", "b", "c", "d"} {
		tok := l.token("t4")
		l.put("t4", k, []byte{byte(i)}, tok, now)
	}
	if l.size > 3 {
		t.Fatalf("size %d above the bound", l.size)
	}
}
