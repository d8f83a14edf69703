package auth

import (
	"sync"
	"time"
)

// Verified tokens are remembered briefly, so a client sending the same token on every request
// pays for its signature check once. An entry is keyed by the whole token (signature included),
// so only the exact token that was verified can hit it, and it lives until the token expires or
// tokenCacheTTL passes, whichever comes first — a key removed from a JWKS stops admitting its
// tokens within that time.
const (
	tokenCacheTTL  = time.Minute
	tokenCacheSize = 10_000
)

type cachedPrincipal struct {
	p     Principal
	until time.Time
}

type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]cachedPrincipal
}

func (c *tokenCache) get(raw string, now time.Time) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[raw]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *tokenCache) put(raw string, p Principal, exp, now time.Time) {
	until := now.Add(tokenCacheTTL)
	if exp.Before(until) {
		until = exp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= tokenCacheSize {
		// Dropping everything at once keeps the cache bounded without bookkeeping; the next
		// requests verify their tokens again.
		c.entries = make(map[string]cachedPrincipal, 1024)
	}
	c.entries[raw] = cachedPrincipal{p: p, until: until}
}
