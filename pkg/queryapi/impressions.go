package queryapi

import (
	"context"
	"sync"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Impressions are not in the change log (SPEC §15: every click is a write), so the projector
// never sees them. The caller's impression count in GET /v1/referral/stats comes from the Admin
// Gateway's daily impression counters in PostgreSQL (Store.UserImpressions, a sum over the
// caller's codes' buckets, independent of the number of impressions), kept in process:
//
//   - a total counted less than impressionFreshness ago is served as it is;
//   - an older one is served too, and queued: one refresher at a time brings every queued total up
//     to date with one query per tenant and period, so the totals players read are brought up to
//     date in batches about once a second, and hot stats reads cost PostgreSQL one query per
//     tenant and period per round instead of one per player;
//   - a caller without a total is counted at once (and a read PostgreSQL cannot answer then is
//     503; a queued refresh that fails keeps the old totals).

// impressionFreshness is how long a counted impression total is served before it is refreshed.
const impressionFreshness = time.Second

// maxImpressionEntries bounds the totals kept (each holds a tenant id, a user id of at most 128
// characters and a period: well under 1 KiB, so at most a few MiB in all).
const maxImpressionEntries = 10_000

type impressionKey struct{ tenant, user, period string }

type impressionEntry struct {
	n      int64
	at     time.Time
	queued bool
}

// impressionTotals is the in-process store of counted impression totals.
type impressionTotals struct {
	mu         sync.Mutex
	entries    map[impressionKey]*impressionEntry
	queue      []impressionKey
	refreshing bool
}

// impressions returns the caller's impressions in period, as the comment above says.
func (a *API) impressions(ctx context.Context, tenant, user, period string) (int64, error) {
	k := impressionKey{tenant, user, period}
	t := &a.impressionTotals
	t.mu.Lock()
	if e, ok := t.entries[k]; ok {
		if a.Now().Sub(e.at) >= impressionFreshness && !e.queued {
			e.queued = true
			t.queue = append(t.queue, k)
			if !t.refreshing {
				t.refreshing = true
				go a.refreshImpressions()
			}
		}
		n := e.n
		t.mu.Unlock()
		return n, nil
	}
	t.mu.Unlock()
	counted, err := a.store.UserImpressions(ctx, tenant, []string{user}, referral.Period(period))
	if err != nil {
		a.log.Warn("impressions_read_failed", "err", err)
		return 0, errUnavailable
	}
	a.storeImpressions(map[impressionKey]int64{k: counted[user]})
	return counted[user], nil
}

// storeImpressions records counted totals, made now.
func (a *API) storeImpressions(totals map[impressionKey]int64) {
	t := &a.impressionTotals
	now := a.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil || len(t.entries)+len(totals) > maxImpressionEntries {
		// Dropping every total at once keeps the bound without bookkeeping; each is counted
		// again at its next read.
		t.entries = map[impressionKey]*impressionEntry{}
		t.queue = nil
	}
	for k, n := range totals {
		t.entries[k] = &impressionEntry{n: n, at: now}
	}
}

// refreshImpressions counts the queued totals again, one query per tenant and period, until the
// queue is empty.
func (a *API) refreshImpressions() {
	t := &a.impressionTotals
	for {
		t.mu.Lock()
		queue := t.queue
		t.queue = nil
		if len(queue) == 0 {
			t.refreshing = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		type group struct{ tenant, period string }
		users := map[group][]string{}
		for _, k := range queue {
			g := group{k.tenant, k.period}
			users[g] = append(users[g], k.user)
		}
		for g, us := range users {
			ctx, cancel := context.WithTimeout(context.Background(), impressionFreshness)
			counted, err := a.store.UserImpressions(ctx, g.tenant, us, referral.Period(g.period))
			cancel()
			totals := make(map[impressionKey]int64, len(us))
			if err != nil {
				a.log.Warn("impressions_refresh_failed", "err", err)
				// The old totals stay (and are queued again at their next read).
				t.mu.Lock()
				for _, u := range us {
					if e, ok := t.entries[impressionKey{g.tenant, u, g.period}]; ok {
						e.queued = false
					}
				}
				t.mu.Unlock()
				continue
			}
			for _, u := range us {
				totals[impressionKey{g.tenant, u, g.period}] = counted[u]
			}
			a.storeImpressions(totals)
		}
	}
}
