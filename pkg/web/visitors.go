package web

import (
	"net/netip"
	"sync"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// VisitorLimit is the in-memory limit on a visitor's failed attempts per client address, across
// every tenant (SPEC §4.3): the Query Gateway's anonymous code validation and the Admin
// Gateway's visitor impressions (§15) count against it. It answers before any database work, so
// made-up tenant ids cannot multiply the per-tenant limit kept in PostgreSQL. It is exact under
// concurrency: an attempt holds a place from its check until its outcome is known.
//
// An address's window starts with its first attempt. The table holds at most maxAddrs
// addresses; while it is full of live windows, further addresses share one overflow slot, so
// its memory stays bounded whoever chooses the addresses (behind a trusted proxy, the client
// does). IPv6 addresses count per /64, the block one subscriber usually holds.
type VisitorLimit struct {
	lim      referral.AttemptLimit
	maxAddrs int
	now      func() time.Time

	mu       sync.Mutex
	addrs    map[string]*visitorSlot
	overflow visitorSlot
	sweptAt  time.Time
}

type visitorSlot struct {
	start    time.Time // when the window began
	failures int       // failed attempts in the window
	pending  int       // attempts whose outcome is not known yet
}

// NewVisitorLimit returns a limit of lim per address (lim.Max 0 admits everything) tracking at
// most maxAddrs addresses.
func NewVisitorLimit(lim referral.AttemptLimit, maxAddrs int) *VisitorLimit {
	return &VisitorLimit{lim: lim, maxAddrs: maxAddrs, now: time.Now, addrs: map[string]*visitorSlot{}}
}

// Reserve admits one attempt from addr, or answers RATE_LIMITED with Retry-After when the
// address has used up its failures. done must be called once with the attempt's outcome.
func (v *VisitorLimit) Reserve(addr string) (done func(failed bool), err error) {
	if v.lim.Max <= 0 {
		return func(bool) {}, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	s := v.slotLocked(visitorKey(addr), now)
	if now.Sub(s.start) >= v.lim.Window {
		s.start, s.failures = now, 0
	}
	if s.failures+s.pending >= v.lim.Max {
		wait := s.start.Add(v.lim.Window).Sub(now)
		return nil, referral.RateLimited("too many failed code attempts from this address; try again later", wait)
	}
	s.pending++
	return func(failed bool) {
		v.mu.Lock()
		defer v.mu.Unlock()
		s.pending--
		if failed {
			s.failures++
		}
	}, nil
}

// slotLocked returns the address's slot, making one if there is room (after dropping ended
// windows, at most once a second), else the overflow slot.
func (v *VisitorLimit) slotLocked(key string, now time.Time) *visitorSlot {
	if s, ok := v.addrs[key]; ok {
		return s
	}
	if len(v.addrs) >= v.maxAddrs && now.Sub(v.sweptAt) >= time.Second {
		v.sweptAt = now
		for k, s := range v.addrs {
			if s.pending == 0 && now.Sub(s.start) >= v.lim.Window {
				delete(v.addrs, k)
			}
		}
	}
	if len(v.addrs) >= v.maxAddrs {
		return &v.overflow
	}
	s := &visitorSlot{start: now}
	v.addrs[key] = s
	return s
}

// visitorKey is the limit's key for a client address: the address itself, an IPv6 address's
// /64, or one shared key for anything that is not an address.
func visitorKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
