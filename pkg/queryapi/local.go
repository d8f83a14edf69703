package queryapi

import (
	"container/list"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/projector"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// localCache keeps recent answers in process, per tenant, and drops a tenant's answers when the
// projector announces (Redis Pub/Sub) that it wrote the tenant's documents. It is used only
// while the subscription is healthy; entries also expire after a short TTL, which bounds the
// staleness of any failure the subscription does not report.
//
// It holds at most maxEntries entries and maxBytes bytes (keys, values and bookkeeping). Entries
// are kept in the order they were stored: expired ones are dropped from the front as they are
// met, and when a new entry does not fit, the oldest make room.
type localCache struct {
	ttl        time.Duration
	maxEntries int
	maxBytes   int
	now        func() time.Time

	mu    sync.Mutex
	valid bool   // the subscription is live: invalidations are being received
	epoch uint64 // moves on every flush
	gen   uint64 // moves on every invalidation of any tenant
	bytes int    // the cost of every entry held
	// versions hold, per tenant, gen as it was after the tenant's last invalidation (kept while
	// the epoch lasts). Only the projector's announcements add to them, so they hold only
	// tenants that exist.
	versions map[string]uint64
	tenants  map[string]map[string]*list.Element // tenant → key → element of order
	order    *list.List                          // *localEntry, oldest first
}

type localEntry struct {
	tenant, key string
	val         any // an answer's body ([]byte), or a decoded document
	cost        int
	at          time.Time
}

// localOverhead is what an entry costs beyond its tenant, key and value: the entry, its list
// element and its map slot.
const localOverhead = 160

// localToken is what a reader saw before it read: its answer may be kept only if nothing of its
// tenant was invalidated since. It names a moment of the cache, not a tenant, so that a read
// shared by several tenants' or users' requests (share) carries one.
type localToken struct {
	epoch, gen uint64
	ok         bool
}

// older returns whichever of t and u can be kept less often: the earlier moment, or a token
// that can never be kept when they come from different epochs.
func (t localToken) older(u localToken) localToken {
	if t.epoch != u.epoch {
		return localToken{}
	}
	return localToken{epoch: t.epoch, gen: min(t.gen, u.gen), ok: t.ok && u.ok}
}

func newLocalCache(ttl time.Duration, maxEntries, maxBytes int) *localCache {
	return &localCache{ttl: ttl, maxEntries: maxEntries, maxBytes: maxBytes, now: time.Now,
		versions: map[string]uint64{}, tenants: map[string]map[string]*list.Element{}, order: list.New()}
}

func (l *localCache) get(tenant, key string) (any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.valid {
		return nil, false
	}
	el, ok := l.tenants[tenant][key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*localEntry)
	if l.now().Sub(e.at) > l.ttl {
		l.removeLocked(el)
		return nil, false
	}
	return e.val, true
}

// token returns the cache's present moment, for a read about to start.
func (l *localCache) token() localToken {
	l.mu.Lock()
	defer l.mu.Unlock()
	return localToken{epoch: l.epoch, gen: l.gen, ok: l.valid}
}

// put keeps val, whose size in bytes is size, as read from a start at time at, unless its
// tenant was invalidated since the reader took t, it is already past the TTL, or it alone would
// not fit in the budget.
func (l *localCache) put(tenant, key string, val any, size int, t localToken, at time.Time) {
	cost := localOverhead + len(tenant) + len(key) + size
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.ok || !l.valid || t.epoch != l.epoch || l.versions[tenant] > t.gen || cost > l.maxBytes {
		return
	}
	now := l.now()
	if now.Sub(at) > l.ttl {
		return
	}
	l.expireLocked(now)
	if el, ok := l.tenants[tenant][key]; ok {
		l.removeLocked(el)
	}
	for l.order.Len() > 0 && (l.order.Len() >= l.maxEntries || l.bytes+cost > l.maxBytes) {
		l.removeLocked(l.order.Front())
	}
	m := l.tenants[tenant]
	if m == nil {
		m = map[string]*list.Element{}
		l.tenants[tenant] = m
	}
	m[key] = l.order.PushBack(&localEntry{tenant: tenant, key: key, val: val, cost: cost, at: at})
	l.bytes += cost
}

// expire drops the entries past the TTL.
func (l *localCache) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(l.now())
}

// expireLocked drops expired entries from the front of the order. Entries are stored in about
// the order their reads started, so this reaches every expired entry within one more TTL.
func (l *localCache) expireLocked(now time.Time) {
	for el := l.order.Front(); el != nil && now.Sub(el.Value.(*localEntry).at) > l.ttl; el = l.order.Front() {
		l.removeLocked(el)
	}
}

func (l *localCache) removeLocked(el *list.Element) {
	e := l.order.Remove(el).(*localEntry)
	m := l.tenants[e.tenant]
	delete(m, e.key)
	if len(m) == 0 {
		delete(l.tenants, e.tenant)
	}
	l.bytes -= e.cost
}

func (l *localCache) invalidate(tenant string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.versions[tenant] = l.gen
	for _, el := range l.tenants[tenant] {
		l.bytes -= l.order.Remove(el).(*localEntry).cost
	}
	delete(l.tenants, tenant)
}

func (l *localCache) flushLocked() {
	l.epoch++
	l.bytes = 0
	l.versions = map[string]uint64{}
	l.tenants = map[string]map[string]*list.Element{}
	l.order.Init()
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
// Meanwhile it drops expired entries every TTL, so that an idle cache does not hold them.
func (a *API) Watch(ctx context.Context, rdb redis.UniversalClient) {
	if a.local == nil {
		return
	}
	var expiring sync.WaitGroup
	defer expiring.Wait()
	expiring.Go(func() {
		t := time.NewTicker(a.local.ttl)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.local.expire()
			}
		}
	})
	for ctx.Err() == nil {
		ps := rdb.Subscribe(ctx, cache.InvalidationChannel(a.cfg.Deployment))
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
// answer if nothing of the tenant was invalidated meanwhile. A request whose answer has no key
// (see answerKey) is always run.
func (a *API) cached(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.local == nil {
			return next(c)
		}
		key, ok := answerKey(c)
		if !ok {
			return next(c)
		}
		tenant := auth.TenantOf(c)
		if body, ok := a.local.get(tenant, key); ok {
			return sendRaw(c, body.([]byte))
		}
		ctx, _ := withReadStart(c.Request().Context(), a.local.token(), time.Now())
		c.SetRequest(c.Request().WithContext(ctx))
		if err := next(c); err != nil {
			return err
		}
		if body, ok := c.Get(bodyKey).([]byte); ok {
			a.keep(ctx, tenant, key, body, len(body))
		}
		return nil
	}
}

// readStart is the earliest moment an answer may reflect: when the request (or the shared read)
// computing it began, moved back to when a shared read it used began (share). The in-process
// cache keeps the answer under it (keep), so an answer is never kept over an invalidation that
// its oldest read raced.
type readStart struct {
	mu  sync.Mutex
	tok localToken
	at  time.Time
}

type readStartKey struct{}

// withReadStart returns ctx carrying a read start at tok and at.
func withReadStart(ctx context.Context, tok localToken, at time.Time) (context.Context, *readStart) {
	s := &readStart{tok: tok, at: at}
	return context.WithValue(ctx, readStartKey{}, s), s
}

// readStartOf returns the read start ctx carries, nil when there is none.
func readStartOf(ctx context.Context) *readStart {
	s, _ := ctx.Value(readStartKey{}).(*readStart)
	return s
}

// keep stores val, whose size in bytes is size, in the in-process cache under the read start
// ctx carries; without one (or without the cache) it keeps nothing.
func (a *API) keep(ctx context.Context, tenant, key string, val any, size int) {
	start := readStartOf(ctx)
	if a.local == nil || start == nil {
		return
	}
	tok, at := start.get()
	a.local.put(tenant, key, val, size, tok, at)
}

func (s *readStart) get() (localToken, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, s.at
}

// joined records that the request used a read that began at tok and at.
func (s *readStart) joined(tok localToken, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = s.tok.older(tok)
	if at.Before(s.at) {
		s.at = at
	}
}

// share runs fn once for the concurrent callers of key (singleflight) and gives each its result.
// A caller may thus get an answer read before it arrived — possibly before an invalidation it
// has already seen — so the caller's read start (withReadStart) moves back to the shared read's.
// fn runs with a read start of its own, which the shared reads it uses in turn move back, so
// what fn keeps (keep) and what its callers keep is never newer than its oldest read.
func (a *API) share(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	if a.local == nil {
		v, err, _ := a.flight.Do(key, func() (any, error) { return fn(ctx) })
		return v, err
	}
	type shared struct {
		v   any
		tok localToken
		at  time.Time
	}
	r, err, _ := a.flight.Do(key, func() (any, error) {
		fctx, start := withReadStart(ctx, a.local.token(), time.Now())
		v, err := fn(fctx)
		tok, at := start.get()
		return shared{v: v, tok: tok, at: at}, err
	})
	s, _ := r.(shared) // none when fn never returned (runtime.Goexit)
	if start := readStartOf(ctx); start != nil {
		start.joined(s.tok, s.at)
	}
	return s.v, err
}

// maxKeyLen bounds an answer's key; past it the answer is not kept.
const maxKeyLen = 512

// answerKey names a player's answer in the in-process cache (within its tenant): the caller, the
// route template, its path parameters and the route's known query parameters (answerParams) in
// normal form. Nothing else of the request reaches the key, so junk parameters can neither
// enlarge it nor multiply entries. ok is false when a known parameter holds a value the handler
// rejects (that answer is a 400, never kept) or the key would be longer than maxKeyLen.
func answerKey(c echo.Context) (key string, ok bool) {
	// Each part is length-prefixed, so no user id or parameter value can pass for another split.
	var b strings.Builder
	add := func(s string) bool {
		n := strconv.Itoa(len(s))
		if b.Len()+len(n)+1+len(s) > maxKeyLen {
			return false
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(s)
		return true
	}
	ok = add("a") && add(auth.PrincipalOf(c).UserID) && add(c.Path())
	for _, v := range c.ParamValues() {
		ok = ok && add(v)
	}
	for _, p := range answerParams[c.Path()] {
		v, valid := p.normal(c.QueryParam(p.name))
		ok = ok && valid && add(v)
	}
	return b.String(), ok
}

// answerParam is a query parameter an answer depends on.
type answerParam struct {
	name string
	// def is the handler's default, so that an absent parameter and its explicit default share
	// an entry.
	def string
	// oneOf lists the accepted values; nil means an integer.
	oneOf []string
}

// normal returns the parameter's normal form (integers re-formatted, so "007" is "7"); ok is
// false for a value the handler rejects.
func (p answerParam) normal(s string) (string, bool) {
	if s == "" {
		return p.def, true
	}
	if p.oneOf != nil {
		return s, slices.Contains(p.oneOf, s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return "", false
	}
	return strconv.Itoa(n), true
}

var (
	limitParam  = answerParam{name: "limit", def: strconv.Itoa(web.DefaultLimit)}
	offsetParam = answerParam{name: "offset", def: "0"}
	periodParam = answerParam{name: "period", def: defaultPeriod, oneOf: referral.PeriodNames}
)

// answerParams lists, per route template, the query parameters the route's handler reads
// (tenant_id aside: the tenant partitions the cache). A route without an entry reads none.
var answerParams = map[string][]answerParam{
	"/v1/referral/referrals":    {{name: "status", oneOf: referral.ReferralStatuses}, limitParam, offsetParam},
	"/v1/referral/stats":        {periodParam},
	"/v1/referral/rewards":      {limitParam, offsetParam},
	"/v1/referral/leaderboard":  {periodParam, {name: "limit", def: strconv.Itoa(defaultLeaderboardLimit)}},
	"/v1/affiliate/downline":    {{name: "depth", def: strconv.Itoa(defaultDepth)}, limitParam, offsetParam},
	"/v1/affiliate/commissions": {limitParam, offsetParam},
	"/v1/affiliate/stats":       {periodParam},
	"/v1/affiliate/payouts":     {limitParam, offsetParam},
}
