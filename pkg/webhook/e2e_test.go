package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// receiver is a real HTTP receiver on loopback: it verifies every request with the endpoint's
// secret, answers with status(n) for the n-th request, and records what it got.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret atomic.Value // string
	status func(n int64, id string) int
	hold   func(id string) // runs before answering (nil: none)

	n        atomic.Int64
	mu       sync.Mutex
	got      map[string]int // webhook-id → requests
	ok       map[string]int // webhook-id → 2xx answers
	inflight map[string]int
	overlap  []string
	badSig   int
	bodies   map[string]apishape.OutboxEvent
}

func newReceiver(t testing.TB, status func(n int64, id string) int) *receiver {
	r := &receiver{t: t, status: status, got: map[string]int{}, ok: map[string]int{}, inflight: map[string]int{},
		bodies: map[string]apishape.OutboxEvent{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	n := r.n.Add(1)
	r.mu.Lock()
	r.got[id]++
	if r.inflight[id]++; r.inflight[id] > 1 {
		r.overlap = append(r.overlap, id)
	}
	secret, _ := r.secret.Load().(string)
	if err := webhook.Verify(secret, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now()); err != nil {
		r.badSig++
	}
	var ev apishape.OutboxEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID.String() != id {
		r.badSig++
	}
	r.bodies[id] = ev
	r.mu.Unlock()
	if r.hold != nil {
		r.hold(id)
	}
	code := r.status(n, id)
	r.mu.Lock()
	r.inflight[id]--
	if code >= 200 && code < 300 {
		r.ok[id]++
	}
	r.mu.Unlock()
	w.WriteHeader(code)
	fmt.Fprintf(w, "answer %d", code)
}

// delivered returns how many distinct ids were answered 2xx.
func (r *receiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ok)
}

// world is a fresh database with a store, a sealer and one endpoint pointing at a receiver.
type world struct {
	db       *sqlx.DB
	store    *postgres.Store
	sealer   *webhook.Sealer
	tenant   string
	endpoint outbox.Endpoint
}

func newWorld(t testing.TB, db *sqlx.DB, rcv *receiver) *world {
	t.Helper()
	sealer, err := webhook.NewSealer("e2e-key")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, store: postgres.NewStore(db), sealer: sealer, tenant: pgtest.Tenant(t)}
	secret := webhook.NewSecret()
	rcv.secret.Store(secret)
	w.endpoint, err = w.store.CreateEndpoint(context.Background(), outbox.Endpoint{TenantID: w.tenant,
		URL: rcv.srv.URL + "/hook", EventTypes: []string{}, Active: true}, sealer.Seal([]byte(secret)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// fastConfig is a dispatcher configuration whose retries and leases take milliseconds.
func fastConfig() webhook.Config {
	return webhook.Config{AllowPrivate: true, Poll: 20 * time.Millisecond, Timeout: time.Second,
		Lease: 1500 * time.Millisecond, LeaseMargin: 200 * time.Millisecond,
		Schedule: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
			400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond}}
}

// start runs a dispatcher over q until the returned stop is called (which waits for it).
func start(q webhook.Queue, w *world, cfg webhook.Config) (stop func()) {
	d := webhook.NewDispatcher(q, w.sealer, cfg, nil, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// affiliates publishes n affiliate.created events (one write each) and returns their ids.
func (w *world) affiliates(t testing.TB, n int, prefix string) {
	t.Helper()
	for i := range n {
		if _, err := w.store.CreateAffiliate(context.Background(), referral.Affiliate{TenantID: w.tenant,
			UserID: fmt.Sprintf("%s%04d", prefix, i), Status: referral.AffiliateActive}); err != nil {
			t.Fatal(err)
		}
	}
}

// eventIDs returns the ids of the tenant's outbox events.
func (w *world) eventIDs(t testing.TB) []string {
	t.Helper()
	var ids []string
	if err := w.db.Select(&ids, `SELECT id::text FROM outbox_events WHERE tenant_id = $1`, w.tenant); err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
	}
}

// checkAllDelivered: every outbox event was answered 2xx, the receiver saw no bad signature
// and no event twice at once, and every delivery is delivered.
func checkAllDelivered(t *testing.T, w *world, rcv *receiver) {
	t.Helper()
	ids := w.eventIDs(t)
	waitFor(t, 20*time.Second, "every event delivered and recorded", func() bool {
		var left int
		if err := w.db.Get(&left, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'`); err != nil {
			t.Fatal(err)
		}
		return left == 0 && rcv.delivered() == len(ids)
	})
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, id := range ids {
		if rcv.ok[id] == 0 {
			t.Errorf("event %s never delivered", id)
		}
	}
	if rcv.badSig != 0 || len(rcv.overlap) != 0 {
		t.Errorf("bad signatures %d, concurrent sends of one event %v", rcv.badSig, rcv.overlap)
	}
	if len(rcv.ok) != len(ids) {
		t.Errorf("the receiver answered %d distinct ids, the outbox holds %d", len(rcv.ok), len(ids))
	}
}

// TestDeliverySignedRetriedWithStableID: a receiver failing the first attempts gets the event
// again after the schedule's pauses, with the same webhook-id and a signature that verifies;
// the delivery log shows every attempt with its status and excerpt.
func TestDeliverySignedRetriedWithStableID(t *testing.T) {
	rcv := newReceiver(t, func(n int64, _ string) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	stop := start(w.store, w, fastConfig())
	defer stop()
	w.affiliates(t, 1, "retry")
	checkAllDelivered(t, w, rcv)
	ids := w.eventIDs(t)
	rcv.mu.Lock()
	if rcv.got[ids[0]] != 4 || rcv.bodies[ids[0]].Type != outbox.AffiliateCreated || rcv.bodies[ids[0]].TenantID != w.tenant {
		t.Errorf("requests for %s: %d, body %+v", ids[0], rcv.got[ids[0]], rcv.bodies[ids[0]])
	}
	rcv.mu.Unlock()
	ds, _, err := w.store.ListDeliveries(context.Background(), w.tenant, w.endpoint.ID, nil, 10, 0)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %v, %v", ds, err)
	}
	d := ds[0]
	if d.Status != outbox.DeliveryDelivered || len(d.Attempts) != 4 || d.EventID.String() != ids[0] {
		t.Fatalf("delivery = %+v", d)
	}
	for i, a := range d.Attempts {
		want := http.StatusInternalServerError
		if i == 3 {
			want = http.StatusNoContent
		}
		if a.StatusCode == nil || *a.StatusCode != want || a.ResponseExcerpt == nil || (i < 3) != (a.Error != nil) {
			t.Errorf("attempt %d = %+v", i, a)
		}
	}
	if gap := d.Attempts[1].At.Sub(d.Attempts[0].At); gap < 45*time.Millisecond {
		t.Errorf("the first retry came after %v, the schedule says 50 ms ± 10 %%", gap)
	}
}

// TestReceiverDownForAWhile: a receiver answering 500 for a while gets every event afterwards.
func TestReceiverDownForAWhile(t *testing.T) {
	var up atomic.Bool
	rcv := newReceiver(t, func(int64, string) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	stop := start(w.store, w, fastConfig())
	defer stop()
	w.affiliates(t, 40, "down")
	waitFor(t, 10*time.Second, "every event tried while down", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return len(rcv.got) == 40
	})
	time.Sleep(300 * time.Millisecond)
	up.Store(true)
	checkAllDelivered(t, w, rcv)
}

// crashingQueue stands for a dispatcher killed mid-delivery: it leases and posts, but its
// process dies before any outcome is recorded.
type crashingQueue struct{ *postgres.Store }

func (crashingQueue) RecordAttempts(context.Context, []outbox.Recorded, []time.Duration) ([]bool, error) {
	return nil, context.Canceled
}

// TestDispatcherKilledMidDelivery: deliveries a dispatcher held when it died are taken by
// another once their leases end: the receiver sees every event at least once, and the number
// of distinct ids it answered equals the outbox's.
func TestDispatcherKilledMidDelivery(t *testing.T) {
	var crashed atomic.Bool
	rcv := newReceiver(t, func(int64, string) int { return http.StatusOK })
	rcv.hold = func(string) {
		if !crashed.Load() {
			time.Sleep(50 * time.Millisecond) // in flight when the first dispatcher dies
		}
	}
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	w.affiliates(t, 30, "kill")
	stopA := start(crashingQueue{w.store}, w, fastConfig())
	waitFor(t, 10*time.Second, "the first dispatcher sending", func() bool { return rcv.n.Load() > 0 })
	stopA()
	crashed.Store(true)
	var leased int
	if err := w.db.Get(&leased, `SELECT count(*) FROM webhook_deliveries WHERE lease_until > now() AND status = 'pending'`); err != nil || leased == 0 {
		t.Fatalf("the dead dispatcher held %d leases (%v)", leased, err)
	}
	stopB := start(w.store, w, fastConfig())
	defer stopB()
	checkAllDelivered(t, w, rcv)
}

// TestTwoDispatchersNeverSendOneDeliveryConcurrently: two dispatchers (two replicas) share the
// work; the receiver never sees one event twice at once, and with no failure each event once.
func TestTwoDispatchersNeverSendOneDeliveryConcurrently(t *testing.T) {
	rcv := newReceiver(t, func(int64, string) int { return http.StatusOK })
	rcv.hold = func(string) { time.Sleep(2 * time.Millisecond) }
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	cfg := fastConfig()
	cfg.Lease = 5 * time.Second
	stopA := start(w.store, w, cfg)
	defer stopA()
	stopB := start(w.store, w, cfg)
	defer stopB()
	w.affiliates(t, 150, "two")
	checkAllDelivered(t, w, rcv)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, n := range rcv.got {
		if n != 1 {
			t.Errorf("event %s sent %d times", id, n)
		}
	}
}

// TestDeletedEndpointAndTestEvent: webhook.test goes to its endpoint only; deleting an endpoint
// cancels its pending deliveries.
func TestDeletedEndpointAndTestEvent(t *testing.T) {
	rcv := newReceiver(t, func(int64, string) int { return http.StatusOK })
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	ctx := context.Background()
	other, err := w.store.CreateEndpoint(ctx, outbox.Endpoint{TenantID: w.tenant, URL: rcv.srv.URL + "/other",
		EventTypes: []string{outbox.RewardCreated}, Active: true}, w.sealer.Seal([]byte(webhook.NewSecret())))
	if err != nil {
		t.Fatal(err)
	}
	d, err := w.store.SendTest(ctx, w.tenant, w.endpoint.ID)
	if err != nil || d.EventType != outbox.WebhookTest {
		t.Fatalf("SendTest: %+v, %v", d, err)
	}
	w.affiliates(t, 2, "gone")
	if err := w.store.DeleteEndpoint(ctx, w.tenant, w.endpoint.ID); err != nil {
		t.Fatal(err)
	}
	stop := start(w.store, w, fastConfig())
	defer stop()
	time.Sleep(300 * time.Millisecond)
	if n := rcv.n.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests for a deleted endpoint", n)
	}
	var rows []struct {
		Endpoint uuid.UUID `db:"endpoint_id"`
		Status   string    `db:"status"`
	}
	if err := w.db.Select(&rows, `SELECT endpoint_id, status FROM webhook_deliveries`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("deliveries = %+v (the other endpoint wants rewards only)", rows)
	}
	for _, r := range rows {
		if r.Endpoint == other.ID || r.Status != outbox.DeliveryCancelled {
			t.Errorf("delivery %+v", r)
		}
	}
}

// TestEndpointDeactivatedAfterFiveDaysOfFailures: an endpoint whose attempts have all failed for
// five days is deactivated by its next failure; its pending deliveries then wait, and
// reactivating it (PUT active) delivers them.
func TestEndpointDeactivatedAfterFiveDaysOfFailures(t *testing.T) {
	var up atomic.Bool
	rcv := newReceiver(t, func(int64, string) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	ctx := context.Background()
	if _, err := w.db.Exec(`UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute'`); err != nil {
		t.Fatal(err)
	}
	stop := start(w.store, w, fastConfig())
	defer stop()
	w.affiliates(t, 1, "dead")
	waitFor(t, 10*time.Second, "the endpoint deactivated", func() bool {
		e, err := w.store.GetEndpoint(ctx, w.tenant, w.endpoint.ID)
		return err == nil && !e.Active
	})
	up.Store(true)
	seen := rcv.n.Load()
	time.Sleep(300 * time.Millisecond)
	if rcv.n.Load() != seen {
		t.Fatal("a deactivated endpoint was sent to")
	}
	e := w.endpoint
	e.Active = true
	if _, err := w.store.ReplaceEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.Exec(`UPDATE webhook_deliveries SET next_at = now()`); err != nil {
		t.Fatal(err)
	}
	checkAllDelivered(t, w, rcv)
}

// TestRotationSignsWithBothSecrets: after a rotation a delivery carries two signatures, one
// verifying with the new secret and one with the previous; once the overlap is over only the
// new one signs.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	var mu sync.Mutex
	var sigs []string
	rcv := newReceiver(t, func(int64, string) int { return http.StatusOK })
	rcv.hold = nil
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	ctx := context.Background()
	old := rcv.secret.Load().(string)
	fresh := webhook.NewSecret()
	if _, err := w.store.RotateSecret(ctx, w.tenant, w.endpoint.ID, w.sealer.Seal([]byte(fresh))); err != nil {
		t.Fatal(err)
	}
	inner := rcv.srv.Config.Handler
	rcv.srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sigs = append(sigs, r.Header.Get("webhook-signature"))
		mu.Unlock()
		inner.ServeHTTP(rw, r)
	})
	rcv.secret.Store(fresh)
	stop := start(w.store, w, fastConfig())
	defer stop()
	w.affiliates(t, 1, "rot")
	checkAllDelivered(t, w, rcv) // verifies with the new secret
	rcv.secret.Store(old)
	if _, err := w.db.Exec(`UPDATE webhook_endpoints SET previous_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	w.affiliates(t, 1, "after")
	waitFor(t, 10*time.Second, "the second delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(sigs) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if n := len(strings.Fields(sigs[0])); n != 2 {
		t.Fatalf("during the overlap: %d signatures (%q)", n, sigs[0])
	}
	if n := len(strings.Fields(sigs[1])); n != 1 {
		t.Fatalf("after the overlap: %d signatures (%q)", n, sigs[1])
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	// The first delivery verified with the new secret (checkAllDelivered); the receiver now
	// checks with the old one, which the second delivery no longer carries.
	if rcv.badSig != 1 {
		t.Fatalf("bad signatures = %d, want exactly the second delivery's against the old secret", rcv.badSig)
	}
}
