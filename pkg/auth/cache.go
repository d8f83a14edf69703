package auth

import (
	"sync"
	"time"
)

// Verified tokens are remembered briefly, so a client sending the same token on every request
// pays for its signature check once. An entry is keyed by the whole token (signature included),
// so only the exact token that was verified can hit it, and it lives until the token expires or
// tokenCacheTTL passes, whichever comes first — a key removed from a JWKS stops admitting its
// tokens within that time. The cache is bounded by entries and by bytes (a token may be 8 KiB).
const (
	tokenCacheTTL   = time.Minute
	tokenCacheSize  = 10_000
	tokenCacheBytes = 8 << 20
	// entryOverhead approximates what an entry costs beyond its strings: the map slot, the
	// struct and the string headers.
	entryOverhead = 160
)

type cachedPrincipal struct {
	p     Principal
	until time.Time
	cost  int
}

type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]cachedPrincipal
	bytes   int       // sum of the entries' costs
	swept   time.Time // when expired entries were last dropped
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
	n := entryOverhead + len(raw) + len(p.UserID) + len(p.Role) + len(p.TenantID)
	for _, t := range p.TenantIDs {
		n += 16 + len(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]cachedPrincipal, 1024)
	}
	if old, ok := c.entries[raw]; ok {
		delete(c.entries, raw)
		c.bytes -= old.cost
	}
	// Every entry expires within tokenCacheTTL, so a sweep that often keeps only live ones.
	if full := c.full(n, 1); full || now.Sub(c.swept) >= tokenCacheTTL {
		c.swept = now
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
				c.bytes -= e.cost
			}
		}
	}
	// Still full of live entries: drop arbitrary ones (map order is random) until a quarter of
	// the budget is free, so a full cache is not swept on every put.
	if c.full(n, 1) {
		for k, e := range c.entries {
			if !c.full(n, 0.75) {
				break
			}
			delete(c.entries, k)
			c.bytes -= e.cost
		}
	}
	c.entries[raw] = cachedPrincipal{p: p, until: until, cost: n}
	c.bytes += n
}

// full reports whether adding an entry of n bytes would pass share of the budget.
func (c *tokenCache) full(n int, share float64) bool {
	return float64(c.bytes+n) > share*tokenCacheBytes || float64(len(c.entries)+1) > share*tokenCacheSize
}
