package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
)

// qryWriter keeps writing through the Admin Gateway: each write either creates a code for a new
// player or changes the usage limit of one hot code, so that a lost change shows up as a missing
// code and a stale document as an old usage limit. Its goroutine never fails the test itself:
// it records what went wrong, and finish reports it from the test's goroutine.
type qryWriter struct {
	e       *qryTenantEnv
	hotID   string
	hotUser string
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	users   []string
	limit   int
	failed  []string // the writes that were not answered 200 (guarded by mu)
}

// fail records a write that was not answered 200.
func (w *qryWriter) fail(r qryResp, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		err = fmt.Errorf("%s %s: %d %s", r.Req.Method, r.Req.URL.Path, r.Status, r.Body)
	}
	w.failed = append(w.failed, err.Error())
}

func qryStartWriter(t *testing.T, e *qryTenantEnv, interval time.Duration) *qryWriter {
	w := &qryWriter{e: e, hotUser: "hot", stop: make(chan struct{}), done: make(chan struct{})}
	var obj qryObj
	e.write("POST", "/v1/referral/codes", e.player(w.hotUser), map[string]any{"code": "HOT-" + e.tenant[4:], "usage_limit": 1}, &obj)
	w.hotID, w.limit = obj.ID, 1
	go func() {
		defer close(w.done)
		for i := 2; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(interval):
			}
			if i%2 == 0 {
				user := fmt.Sprintf("w%d", i)
				tok, err := qrySign(auth.RolePlayer, e.tenant, user)
				if err != nil {
					w.fail(qryResp{}, err)
					continue
				}
				r, err := qrySend("POST", "http://"+e.s.admin.addr+"/v1/referral/codes", tok, map[string]any{"code": fmt.Sprintf("W%d-%s", i, e.tenant[4:])})
				if err != nil || r.Status != 200 {
					w.fail(r, err)
					continue
				}
				w.mu.Lock()
				w.users = append(w.users, user)
				w.mu.Unlock()
			} else {
				r, err := qrySend("PATCH", "http://"+e.s.admin.addr+"/v1/referral/codes/"+w.hotID, e.admin, map[string]any{"usage_limit": i})
				if err != nil || r.Status != 200 {
					w.fail(r, err)
					continue
				}
				w.mu.Lock()
				w.limit = i
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// finish stops writing and checks, once the projector has caught up, that the Query Gateway
// serves every write and no stale document.
func (w *qryWriter) finish(t *testing.T, qg *qryProc) {
	close(w.stop)
	<-w.done
	if n := len(w.failed); n > 0 {
		t.Errorf("%d admin writes failed, the first: %s", n, w.failed[0])
	}
	w.e.s.waitProjected(t, 10*time.Second)
	w.e.qg = qg
	var hot struct {
		Items []struct {
			UsageLimit int `json:"usage_limit"`
		} `json:"items"`
	}
	w.e.read("/v1/referral/codes", w.e.player(w.hotUser)).must(t, 200, &hot)
	if len(hot.Items) != 1 || hot.Items[0].UsageLimit != w.limit {
		t.Errorf("hot code %+v, want usage_limit %d", hot.Items, w.limit)
	}
	for _, u := range w.users {
		r := w.e.read("/v1/referral/codes", w.e.player(u))
		if err := qryContains(r.Body, strings.ToUpper(u)+"-"); r.Status != 200 || err != nil {
			t.Errorf("codes of %s: %d %v", u, r.Status, err)
		}
	}
	// Served from Redis, not only read through: the documents are in Redis.
	n, err := w.e.s.rdb.Exists(context.Background(), "phx:{"+w.e.tenant+"}:u:"+w.hotUser).Result()
	if err != nil || n != 1 {
		t.Errorf("hot user's document not in Redis: %v %v", n, err)
	}
	t.Logf("%d writes checked", len(w.users)+1)
}

// TestQryRecoverRedisWiped: FLUSHDB of the gateway's Redis database while writes continue
// (for a single-database deployment the same as FLUSHALL, without disturbing other users of
// the shared test Redis).
func TestQryRecoverRedisWiped(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	e := s.tenant(qg)
	w := qryStartWriter(t, e, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	if err := cachetest.FlushAll(context.Background(), s.rdb); err != nil {
		t.Fatal(err)
	}
	// Reads keep working while the read models are rebuilt (from PostgreSQL meanwhile).
	for i := 0; i < 20; i++ {
		e.read("/v1/referral/codes", e.player("hot")).must(t, 200, nil)
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	w.finish(t, qg)
}

// TestQryRecoverListenerKilled: the listener's PostgreSQL backend is terminated; the gateway
// reconnects and catches up, and writes stay visible within the freshness bound.
func TestQryRecoverListenerKilled(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	e := s.tenant(qg)
	w := qryStartWriter(t, e, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	var killed int
	if err := s.db.Get(&killed, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'query-gateway-listener' AND datname = current_database()) k`); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener backends, want 1", killed)
	}
	time.Sleep(300 * time.Millisecond)
	w.finish(t, qg)
	// The listener is back.
	qryEventually(t, 5*time.Second, func() error {
		var n int
		s.db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'query-gateway-listener' AND datname = current_database()`)
		if n != 1 {
			return fmt.Errorf("%d listeners", n)
		}
		return nil
	})
}

// TestQryRecoverRestart: the Query Gateway is killed and restarted while writes continue.
func TestQryRecoverRestart(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	e := s.tenant(qg)
	w := qryStartWriter(t, e, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	qg.kill()
	time.Sleep(300 * time.Millisecond)
	qg2 := s.startQuery()
	time.Sleep(200 * time.Millisecond)
	w.finish(t, qg2)
}

// qryLeader reports whether a gateway's projector holds the lock, from its metrics.
func qryLeader(t testing.TB, p *qryProc) bool {
	r := qryDo(t, "GET", "http://"+p.addr+"/metrics", "", nil)
	return strings.Contains(string(r.Body), "\nphoenix_projector_leader 1")
}

// TestQryRecoverFailover: two replicas; the projecting one is killed and the other takes over
// within seconds.
func TestQryRecoverFailover(t *testing.T) {
	s := qryNewStack(t)
	a := s.startQuery()
	b := s.startQuery()
	e := s.tenant(a)
	var leader, standby *qryProc
	qryEventually(t, 5*time.Second, func() error {
		la, lb := qryLeader(t, a), qryLeader(t, b)
		switch {
		case la && !lb:
			leader, standby = a, b
		case lb && !la:
			leader, standby = b, a
		default:
			return fmt.Errorf("leaders: a=%v b=%v", la, lb)
		}
		return nil
	})
	// The standby's in-process cache follows the leader's announcements: a cached answer is
	// dropped as soon as the change is projected, well before the cache's 500 ms TTL.
	var hot qryObj
	e.write("POST", "/v1/referral/codes", e.player("cached"), map[string]any{"code": "C-" + e.tenant[4:], "usage_limit": 1}, &hot)
	s.waitProjected(t, 2*time.Second)
	e.qg = standby
	for i := 0; i < 3; i++ {
		e.read("/v1/referral/codes", e.player("cached")).must(t, 200, nil) // now cached on the standby
	}
	e.write("PATCH", "/v1/referral/codes/"+hot.ID, e.admin, map[string]any{"usage_limit": 7}, nil)
	s.waitProjected(t, 2*time.Second)
	qryEventually(t, 200*time.Millisecond, func() error {
		return qryContains(e.read("/v1/referral/codes", e.player("cached")).Body, `"usage_limit":7,`)
	})
	w := qryStartWriter(t, e, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	leader.kill()
	killed := time.Now()
	qryEventually(t, 5*time.Second, func() error {
		if !qryLeader(t, standby) {
			return fmt.Errorf("standby has not taken over")
		}
		return nil
	})
	t.Logf("takeover after %v", time.Since(killed).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	w.finish(t, standby)
}

// TestQryOutOfOrderCommit: transaction A writes first (lower xid) but commits after B; B is
// projected while A is open, and A as soon as it commits.
func TestQryOutOfOrderCommit(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	e := s.tenant(qg)
	player := e.player("p")
	insert := `INSERT INTO campaigns (id, tenant_id, name, qualifying_event, referrer_rewards, referee_rewards,
		active, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, 'x', '{"wallet":[]}', '{"wallet":[]}', true, now(), now())`
	ctx := context.Background()
	// A first campaign, projected, so that the tenant's campaigns are served from Redis.
	if _, err := s.db.Exec(insert, e.tenant, "campaign-0"); err != nil {
		t.Fatal(err)
	}
	s.waitProjected(t, 2*time.Second)
	txA, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback()
	if _, err := txA.Exec(insert, e.tenant, "campaign-A"); err != nil {
		t.Fatal(err)
	}
	var xidA uint64
	if err := txA.Get(&xidA, `SELECT pg_current_xact_id()::text::numeric::bigint`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(insert, e.tenant, "campaign-B"); err != nil {
		t.Fatal(err)
	}
	// B is projected while A is still open; the position remembers A as in progress (its xmin
	// stays at or below A's xid), so A is applied when it commits.
	qryEventually(t, 2*time.Second, func() error {
		return qryContains(e.read("/v1/referral/campaigns", player).Body, "campaign-0", "campaign-B")
	})
	var pos struct {
		HW   uint64 `json:"hw"`
		Snap string `json:"snap"`
	}
	b, err := s.rdb.Get(ctx, "phx:pos").Bytes()
	if err != nil || json.Unmarshal(b, &pos) != nil {
		t.Fatalf("position: %v %s", err, b)
	}
	if pos.HW > xidA {
		t.Fatalf("position %+v passed open transaction %d", pos, xidA)
	}
	if body := string(e.read("/v1/referral/campaigns", player).Body); strings.Contains(body, "campaign-A") {
		t.Fatalf("uncommitted campaign visible: %s", body)
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	// Writers announce their commits (as the Admin Gateway does); the catch-up timer would find
	// A within a second anyway.
	if _, err := s.db.Exec(`SELECT pg_notify('phoenix_changes', '')`); err != nil {
		t.Fatal(err)
	}
	qryEventually(t, 2*time.Second, func() error {
		return qryContains(e.read("/v1/referral/campaigns", player).Body, "campaign-A", "campaign-B")
	})
	t.Logf("A visible %v after its commit", time.Since(committed).Round(time.Millisecond))
	s.waitProjected(t, 2*time.Second)
	e.read("/v1/referral/campaigns", player).must(t, 200, nil)
	if err := qryContains(e.read("/v1/referral/campaigns", player).Body, "campaign-A", "campaign-B"); err != nil {
		t.Fatal(err)
	}
}

// qryProxy is a TCP proxy to Redis that can be switched off (connections dropped and refused)
// and on again, standing in for a Redis that dies and restarts.
type qryProxy struct {
	ln    net.Listener
	up    atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func qryStartProxy(t *testing.T, target string) *qryProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &qryProxy{ln: ln}
	p.up.Store(true)
	t.Cleanup(func() { ln.Close(); p.setUp(false) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				c.Close()
				continue
			}
			r, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, r)
			p.mu.Unlock()
			go func() { io.Copy(r, c); r.Close() }()
			go func() { io.Copy(c, r); c.Close() }()
		}
	}()
	return p
}

func (p *qryProxy) setUp(up bool) {
	p.up.Store(up)
	if !up {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}
}

// TestQryRedisOutage: Redis becomes unreachable mid-load; reads are answered from PostgreSQL
// (fresh, never hanging), and when Redis returns the projector catches up without a restart.
func TestQryRedisOutage(t *testing.T) {
	s := qryNewStack(t)
	var qg *qryProc
	var setUp func(bool)
	if s.cluster != nil {
		// A cluster's clients follow its redirections to every node's own address, past any
		// proxy: the outage stops every node instead.
		qg = s.startQuery()
		var thaw func()
		setUp = func(up bool) {
			if up {
				thaw()
				return
			}
			var err error
			if thaw, err = cachetest.Freeze(context.Background(), s.cluster); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(thaw)
		}
	} else {
		proxy := qryStartProxy(t, "127.0.0.1:6379")
		qg = qryStart(t, "query-gateway", []string{"PHOENIX_DATABASE_URL=" + s.dbURL,
			fmt.Sprintf("PHOENIX_REDIS_URL=redis://%s/%d", proxy.ln.Addr(), s.redisDB)})
		setUp = proxy.setUp
	}
	e := s.tenant(qg)
	w := qryStartWriter(t, e, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	setUp(false)
	var slowest time.Duration
	for i := 0; i < 30; i++ {
		start := time.Now()
		r := e.read("/v1/referral/codes", e.player("hot"))
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if r.Status != 200 {
			t.Fatalf("read during outage: %d %s", r.Status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 64 concurrent readers during the outage: answered from PostgreSQL through the bounded,
	// deduplicated fallback, without errors and without exhausting PostgreSQL connections.
	r := qryLoad("http://"+qg.addr+"/v1/referral/stats", e.player("hot"), 64, time.Second)
	var conns int
	s.db.Get(&conns, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'query-gateway' AND datname = current_database()`)
	t.Logf("during the outage: %v; gateway PostgreSQL connections %d", r, conns)
	if r.errors > 0 || r.rps == 0 {
		t.Fatalf("reads failed during the outage: %v", r)
	}
	// A write during the outage is visible at once (read through to PostgreSQL).
	e.write("POST", "/v1/referral/codes", e.player("outage"), map[string]any{"code": "OUT-" + e.tenant[4:]}, nil)
	if err := qryContains(e.read("/v1/referral/codes", e.player("outage")).Body, "OUT-"); err != nil {
		t.Fatal(err)
	}
	t.Logf("slowest read during the outage: %v", slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Fatalf("reads hang during a Redis outage: %v", slowest)
	}
	setUp(true)
	time.Sleep(300 * time.Millisecond)
	w.finish(t, qg)
	if err := qryContains(e.read("/v1/referral/codes", e.player("outage")).Body, "OUT-"); err != nil {
		t.Fatal(err)
	}
}
