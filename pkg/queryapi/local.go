package queryapi

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/projector"
)

// localCache keeps recent answers in process, per tenant, and drops a tenant's answers when the
// projector announces (Redis Pub/Sub) that it wrote the tenant's documents. It is used only
// while the subscription is healthy; entries also expire after a short TTL, which bounds the
// staleness of any failure the subscription does not report.
type localCache struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	valid bool   // the subscription is live: invalidations are being received
	epoch uint64 // moves on every flush
	size  int
	// versions move on every invalidation of a tenant (kept while the epoch lasts).
	versions map[string]uint64
	entries  map[string]map[string]localEntry
}

type localEntry struct {
	val any // an answer's body ([]byte), or a decoded document
	at  time.Time
}

// localToken is what a reader saw before it read: its answer may be kept only if nothing was
// invalidated meanwhile.
type localToken struct {
	epoch, version uint64
	ok             bool
}

func newLocalCache(ttl time.Duration, max int) *localCache {
	return &localCache{ttl: ttl, max: max, versions: map[string]uint64{}, entries: map[string]map[string]localEntry{}}
}

func (l *localCache) get(tenant, key string) (any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.valid {
		return nil, false
	}
	e, ok := l.entries[tenant][key]
	if !ok || time.Since(e.at) > l.ttl {
		return nil, false
	}
	return e.val, true
}

func (l *localCache) token(tenant string) localToken {
	l.mu.Lock()
	defer l.mu.Unlock()
	return localToken{epoch: l.epoch, version: l.versions[tenant], ok: l.valid}
}

func (l *localCache) put(tenant, key string, val any, t localToken, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.ok || !l.valid || t.epoch != l.epoch || t.version != l.versions[tenant] {
		return
	}
	if l.size >= l.max {
		l.flushLocked()
	}
	m := l.entries[tenant]
	if m == nil {
		m = map[string]localEntry{}
		l.entries[tenant] = m
	}
	if _, ok := m[key]; !ok {
		l.size++
	}
	m[key] = localEntry{val: val, at: at}
}

func (l *localCache) invalidate(tenant string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.versions[tenant]++
	l.size -= len(l.entries[tenant])
	delete(l.entries, tenant)
}

func (l *localCache) flushLocked() {
	l.epoch++
	l.size = 0
	l.versions = map[string]uint64{}
	l.entries = map[string]map[string]localEntry{}
}

// setValid flushes everything and records whether invalidations are being received.
func (l *localCache) setValid(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.valid = v
}

// Watch follows the projector's invalidations until ctx ends. Without a live subscription the
// in-process cache is bypassed (and emptied), so it can never outlive a missed invalidation.
func (a *API) Watch(ctx context.Context, rdb redis.UniversalClient) {
	if a.local == nil {
		return
	}
	for ctx.Err() == nil {
		ps := rdb.Subscribe(ctx, projector.InvalidationChannel)
		// Receive does not return when ctx ends (the socket read has no deadline); closing the
		// subscription makes it return at once.
		stop := context.AfterFunc(ctx, func() { ps.Close() })
		for ctx.Err() == nil {
			msg, err := ps.Receive(ctx)
			if err != nil {
				a.local.setValid(false)
				break
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				// (Re)subscribed: anything may have been missed before this point.
				a.local.setValid(m.Kind == "subscribe")
			case *redis.Message:
				if m.Payload == projector.InvalidateAll {
					a.local.setValid(true)
					continue
				}
				for _, t := range strings.Split(m.Payload, "\n") {
					a.local.invalidate(t)
				}
			}
		}
		if stop() {
			ps.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	a.local.setValid(false)
}

// bodyKey is where sendRaw leaves the answer for the in-process cache.
const bodyKey = "queryapi.body"

// cached answers a player's GET from the in-process cache, or runs the handler and keeps its 200
// answer if nothing of the tenant was invalidated meanwhile.
func (a *API) cached(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.local == nil {
			return next(c)
		}
		tenant := auth.TenantOf(c)
		key := auth.PrincipalOf(c).UserID + "\x00" + c.Request().URL.RequestURI()
		if body, ok := a.local.get(tenant, key); ok {
			return sendRaw(c, body.([]byte))
		}
		tok := a.local.token(tenant)
		started := time.Now()
		if err := next(c); err != nil {
			return err
		}
		if body, ok := c.Get(bodyKey).([]byte); ok {
			a.local.put(tenant, key, body, tok, started)
		}
		return nil
	}
}
