package queryapi

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// TestQryLocalCacheSharedReadRace: a request that joins a shared read begun before an
// invalidation it has already seen never leaves that read's answer in the in-process cache.
// A writer publishes versions of a document the way the projector does (write, then announce);
// players read it through the cache middleware and one shared (singleflight) read, and checkers
// look at what the cache holds: it must never be older than the last completed announcement.
func TestQryLocalCacheSharedReadRace(t *testing.T) {
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(qrySecret)})
	if err != nil {
		t.Fatal(err)
	}
	a := New(nil, nil, v, Config{LocalTTL: time.Hour}, qryLog, nil)
	a.local.setValid(true)
	var written, announced atomic.Int64 // the document's version, and the last one announced
	var reads atomic.Int64
	e := echo.New()
	e.GET("/v1/referral/me", func(c echo.Context) error {
		doc, err := a.share(c.Request().Context(), "doc", func(context.Context) (any, error) {
			n := written.Load()
			reads.Add(1)
			time.Sleep(200 * time.Microsecond) // the read's round trip: joiners pile up meanwhile
			return n, nil
		})
		if err != nil {
			return err
		}
		return sendRaw(c, []byte(strconv.FormatInt(doc.(int64), 10)))
	}, auth.Authenticate(v), auth.Guard(auth.RolePlayer), a.cached)
	tok := qryPlayer(t, "t1", "u1")
	probe := qryGet(t, e, "/v1/referral/me", tok) // makes the answer's key known
	if probe.Code != http.StatusOK {
		t.Fatalf("status %d", probe.Code)
	}
	var key string
	a.local.mu.Lock()
	for k := range a.local.tenants["t1"] {
		key = k
	}
	a.local.mu.Unlock()

	// The race runs until enough has happened to tell, or for 30 s on a very busy machine; it
	// needs some of both at the least.
	const enough, least = 500, 30
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var stale atomic.Int64
	var staleExample atomic.Value
	wg.Go(func() {
		for i := int64(1); ctx.Err() == nil; i++ {
			written.Store(i)
			a.local.invalidate("t1")
			announced.Store(i)
			if i >= enough && reads.Load() >= enough {
				cancel()
			}
			for range 20 { // a pause that leaves the readers room, whatever the timer resolution
				runtime.Gosched()
			}
		}
	})
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if rec := qryGet(t, e, "/v1/referral/me", tok); rec.Code != http.StatusOK {
					t.Errorf("status %d", rec.Code)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for ; ctx.Err() == nil; runtime.Gosched() {
				floor := announced.Load()
				if b, ok := a.local.get("t1", key); ok {
					if n, _ := strconv.ParseInt(string(b.([]byte)), 10, 64); n < floor {
						stale.Add(1)
						staleExample.Store([2]int64{n, floor})
					}
				}
			}
		})
	}
	wg.Wait()
	if n := stale.Load(); n > 0 {
		ex := staleExample.Load().([2]int64)
		t.Fatalf("the cache held an answer older than a completed invalidation %d times (e.g. version %d after %d was announced)", n, ex[0], ex[1])
	}
	if announced.Load() < least || reads.Load() < least {
		t.Fatalf("too little happened to tell: %d announcements, %d reads", announced.Load(), reads.Load())
	}
	t.Logf("%d announcements, %d shared reads", announced.Load(), reads.Load())
}

// TestQryLocalCacheNestedSharedRead: a shared read that itself joins an older shared read (the
// leaderboard's document under its decoded form) keeps nothing, and lets its callers keep
// nothing, when the older read began before an invalidation that the outer one came after.
func TestQryLocalCacheNestedSharedRead(t *testing.T) {
	a := New(nil, nil, nil, Config{LocalTTL: time.Hour}, qryLog, nil)
	a.local.setValid(true)
	for attempt := range 100 {
		key := "k" + strconv.Itoa(attempt)
		release, reading := make(chan struct{}), make(chan struct{})
		innerKey := "inner" + strconv.Itoa(attempt)
		var wg sync.WaitGroup
		wg.Go(func() { // the older read, begun before the invalidation
			ctx, _ := withReadStart(context.Background(), a.local.token(), time.Now())
			a.share(ctx, innerKey, func(context.Context) (any, error) {
				close(reading)
				<-release
				return "old", nil
			})
		})
		<-reading
		a.local.invalidate("t1")
		// A request after the invalidation: its shared read joins the older one.
		ctx, _ := withReadStart(context.Background(), a.local.token(), time.Now())
		var ranOwn atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.share(ctx, "outer"+strconv.Itoa(attempt), func(ctx context.Context) (any, error) {
				v, err := a.share(ctx, innerKey, func(context.Context) (any, error) {
					ranOwn.Store(true) // did not join: the older read was over
					return "new", nil
				})
				a.keep(ctx, "t1", key+"-decoded", v, 3)
				return v, err
			})
			a.keep(ctx, "t1", key, "answer", 6)
		}()
		time.Sleep(time.Millisecond) // let the request reach the older read
		close(release)
		<-done
		wg.Wait()
		if ranOwn.Load() {
			continue // the request came too late to join; try again
		}
		for _, k := range []string{key, key + "-decoded"} {
			if v, ok := a.local.get("t1", k); ok {
				t.Fatalf("%s = %v kept, though its oldest read began before an invalidation", k, v)
			}
		}
		return
	}
	t.Fatal("no attempt joined the older read")
}
