package queryapi

import (
	"context"
	"sync"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Impressions are not in the change log (SPEC §15: every click is a write), so the projector
// never sees them. The caller's impression count in GET /v1/referral/stats is read from the
// Admin Gateway's daily impression counters in PostgreSQL (Store.UserImpressions, a sum over the
// caller's codes' buckets, independent of the number of impressions) and kept in process for at
// most impressionFreshness: a caller's counters are brought up to date at least once a second,
// and a hot stats read asks PostgreSQL at most once a second per (tenant, user, period).

// impressionFreshness is how long a counted impression total is served before it is read again.
const impressionFreshness = time.Second

// maxImpressionEntries bounds the totals kept (each holds a tenant id, a user id of at most 128
// characters and a period: well under 1 KiB, so at most a few MiB in all).
const maxImpressionEntries = 10_000

type impressionKey struct{ tenant, user, period string }

type impressionEntry struct {
	n  int64
	at time.Time
}

// impressionTotals is the in-process store of recently counted impression totals.
type impressionTotals struct {
	mu      sync.Mutex
	entries map[impressionKey]impressionEntry
}

// impressions returns the caller's impressions in period: a total counted within
// impressionFreshness, or a fresh count; while PostgreSQL cannot be read, the last count when
// there is one (else UNAVAILABLE).
func (a *API) impressions(ctx context.Context, tenant, user, period string) (int64, error) {
	k := impressionKey{tenant, user, period}
	now := a.Now()
	t := &a.impressionTotals
	t.mu.Lock()
	e, ok := t.entries[k]
	t.mu.Unlock()
	if ok && now.Sub(e.at) < impressionFreshness {
		return e.n, nil
	}
	n, err := a.store.UserImpressions(ctx, tenant, user, referral.Period(period))
	if err != nil {
		a.log.Warn("impressions_read_failed", "err", err)
		if ok {
			// The last count, older than a second, rather than failing a read Redis could serve.
			return e.n, nil
		}
		return 0, errUnavailable
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil || len(t.entries) >= maxImpressionEntries {
		// Dropping every total at once keeps the bound without bookkeeping; they are at most a
		// second from being read again anyway.
		t.entries = map[impressionKey]impressionEntry{}
	}
	t.entries[k] = impressionEntry{n: n, at: now}
	return n, nil
}
