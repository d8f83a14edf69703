package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// qryHookReceiver is a webhook receiver on loopback that verifies every request's signature and
// counts the requests per webhook-id. It answers nothing until open is called, then each request
// after hold.
type qryHookReceiver struct {
	srv    *httptest.Server
	gate   chan struct{}
	open   func()
	secret atomic.Value // string
	n      atomic.Int64
	mu     sync.Mutex
	got    map[string]int // webhook-id → requests
	bad    []string       // requests whose signature or body did not verify
}

func qryNewHookReceiver(t *testing.T, hold time.Duration) *qryHookReceiver {
	r := &qryHookReceiver{got: map[string]int{}, gate: make(chan struct{})}
	r.open = sync.OnceFunc(func() { close(r.gate) })
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		<-r.gate
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		secret, _ := r.secret.Load().(string)
		err := webhook.Verify(secret, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now())
		var ev struct {
			ID string `json:"id"`
		}
		if err == nil && (json.Unmarshal(body, &ev) != nil || ev.ID != id) {
			err = fmt.Errorf("body id %q", ev.ID)
		}
		r.mu.Lock()
		r.got[id]++
		if err != nil {
			r.bad = append(r.bad, id+": "+err.Error())
		}
		r.mu.Unlock()
		r.n.Add(1)
		time.Sleep(hold)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.open) // before the server closes: no handler stays blocked
	return r
}

// distinct returns how many distinct webhook-ids the receiver saw.
func (r *qryHookReceiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestQryWebhooksSurviveGatewayKill: the Admin Gateway is SIGKILLed while it delivers a few
// hundred events to a loopback receiver and started again; the receiver sees every event of the
// endpoint at least once, every signature verifies, and no delivery is left pending or failed.
func TestQryWebhooksSurviveGatewayKill(t *testing.T) {
	const events = 300
	env := []string{"PHOENIX_WEBHOOK_ALLOW_PRIVATE=true", "PHOENIX_SECRET_KEY=e2e-secret-key-0123456789abcdef0123456789"}
	s := qryNewStack(t, env...)
	e := s.tenant(nil)
	// The receiver answers once every event is committed, each request after 40 ms, so that the
	// deliveries (8 at a time per endpoint) take about 1.5 s and the kill falls in the middle.
	rcv := qryNewHookReceiver(t, 40*time.Millisecond)
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	e.write("POST", "/v1/webhooks/endpoints", e.admin, map[string]any{"url": rcv.srv.URL + "/hook"}, &ep)
	rcv.secret.Store(ep.Secret)

	var wg sync.WaitGroup
	errs := make(chan error, events)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < events; i += 8 {
				r, err := qrySend("POST", "http://"+s.admin.addr+"/v1/affiliates", e.admin, map[string]any{"user_id": fmt.Sprintf("kill%04d", i)})
				if err == nil && r.Status != 200 {
					err = fmt.Errorf("create affiliate: %d %s", r.Status, r.Body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rcv.open()

	qryEventually(t, 10*time.Second, func() error {
		if n := rcv.n.Load(); n < events/2 {
			return fmt.Errorf("%d requests received", n)
		}
		return nil
	})
	s.admin.kill()
	var pending int
	if err := s.db.Get(&pending, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'`, ep.ID); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatalf("every delivery was done before the kill (%d requests received): nothing was cut short", rcv.n.Load())
	}
	t.Logf("killed after %d requests with %d deliveries pending", rcv.n.Load(), pending)
	// The killed process's leases would end after the dispatcher's lease (60 s); end them now
	// instead of waiting, as the lease's expiry is what hands them to the next dispatcher.
	if _, err := s.db.Exec(`UPDATE webhook_deliveries SET lease_until = now() WHERE endpoint_id = $1 AND lease_until > now()`, ep.ID); err != nil {
		t.Fatal(err)
	}
	s.admin = qryStartPath(t, s.admin.cmd.Path, append([]string{"PHOENIX_DATABASE_URL=" + s.dbURL}, env...))

	var want int
	if err := s.db.Get(&want, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, ep.ID); err != nil {
		t.Fatal(err)
	}
	if want != events {
		t.Fatalf("%d deliveries for the endpoint, want one per event (%d)", want, events)
	}
	qryEventually(t, 15*time.Second, func() error {
		var left int
		if err := s.db.Get(&left, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status <> 'delivered'`, ep.ID); err != nil {
			return err
		}
		if left != 0 || rcv.distinct() < want {
			return fmt.Errorf("%d deliveries not delivered, %d of %d ids received", left, rcv.distinct(), want)
		}
		return nil
	})
	var ids []string
	if err := s.db.Select(&ids, `SELECT o.id::text FROM webhook_deliveries d JOIN outbox_events o ON o.seq = d.event_seq WHERE d.endpoint_id = $1`, ep.ID); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, id := range ids {
		if rcv.got[id] == 0 {
			t.Errorf("event %s never received", id)
		}
	}
	if len(rcv.got) != len(ids) {
		t.Errorf("the receiver saw %d distinct webhook-ids, the outbox holds %d events for the endpoint", len(rcv.got), len(ids))
	}
	if len(rcv.bad) != 0 {
		t.Errorf("%d requests did not verify, the first: %s", len(rcv.bad), rcv.bad[0])
	}
	var twice int
	for _, n := range rcv.got {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d events, %d received more than once", len(ids), twice)
}
