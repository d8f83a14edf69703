package webhook_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// benchEndpoints is how many endpoints the delivery benchmark spreads its events over: several
// receivers of one platform, each bounded by the per-endpoint concurrency.
const benchEndpoints = 4

// benchConcurrency is what the dispatcher may have in flight in all (benchEndpoints × the
// per-endpoint bound), and so the number of posting goroutines of the baseline.
const benchConcurrency = benchEndpoints * 8

// BenchmarkDelivery measures the dispatcher end to end against a local receiver: producers
// commit b.N webhook.test events (one transaction each, spread over benchEndpoints endpoints),
// the dispatcher of one gateway — woken by the change notifications — leases, signs, posts and
// records each. It reports deliveries/s from the first commit to the last recorded delivery,
// and the p50/p99 from an event's transaction to its first attempt (measured in the database:
// the attempt's time minus the event's). BenchmarkDeliveryBaseline posts to the same kind of
// receiver with a bare net/http loop at the same concurrency; the ratio of the two is what the
// dispatcher's storage costs.
func BenchmarkDelivery(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchDelivery(b, 0, false) })
	b.Run("paced-800/s", func(b *testing.B) { benchDelivery(b, 800, false) })
	b.Run("backlog", func(b *testing.B) { benchDelivery(b, 0, true) })
}

// benchDelivery runs BenchmarkDelivery with producers committing rate events/s in all (0: as
// fast as they can, which measures throughput; a paced rate measures latency under capacity).
// With backlog the events are committed before the dispatcher starts and only the drain is
// timed: the dispatcher's own throughput, without the producers' transactions beside it (its
// latencies are then waiting times in the backlog and are not reported).
func benchDelivery(b *testing.B, rate int, backlog bool) {
	ctx := context.Background()
	var served atomic.Int64
	rcv := newReceiver(b, func(int64, string) int { served.Add(1); return http.StatusOK })
	w := newWorld(b, pgtest.MustOpenDB(b), rcv)
	endpoints := []outbox.Endpoint{w.endpoint}
	for range benchEndpoints - 1 {
		e, err := w.store.CreateEndpoint(ctx, outbox.Endpoint{TenantID: w.tenant, URL: rcv.srv.URL + "/hook",
			EventTypes: []string{}, Active: true}, w.sealer.Seal([]byte(rcv.secret.Load().(string))))
		if err != nil {
			b.Fatal(err)
		}
		endpoints = append(endpoints, e)
	}
	d := webhook.NewDispatcher(w.store, w.sealer, webhook.Config{AllowPrivate: true, Workers: benchConcurrency}, nil, quiet())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	nctx, ncancel := context.WithCancel(ctx)
	defer ncancel()
	go w.store.RunNotifier(nctx, quiet())
	listening := make(chan struct{})
	go func() {
		// The dispatcher listens as the gateway's does.
		close(listening)
		webhook.Listen(runCtx, pgtestURL(b, w), "phoenix_changes", d, quiet())
	}()
	<-listening
	done := make(chan struct{})
	run := func() { go func() { d.Run(runCtx); close(done) }() }
	if !backlog {
		run()
	}
	time.Sleep(200 * time.Millisecond) // the listener connects

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	const producers = 8
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if rate > 0 {
					// Event i is due at start + i/rate.
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				}
				if _, err := w.store.SendTest(ctx, w.tenant, endpoints[i%benchEndpoints].ID); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if backlog {
		b.StopTimer()
		b.StartTimer()
		start = time.Now()
		run()
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(2 * time.Millisecond) {
		var left int
		if err := w.db.Get(&left, `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`); err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d deliveries left", left)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	var lat struct {
		P50 float64 `db:"p50"`
		P99 float64 `db:"p99"`
	}
	const q = `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY x) AS p99
		FROM (SELECT extract(epoch FROM a.at - o.created_at) * 1000 AS x
		      FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id JOIN outbox_events o ON o.seq = d.event_seq
		      WHERE a.n = 1) t`
	if err := w.db.Get(&lat, q); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	if !backlog {
		b.ReportMetric(lat.P50, "p50-ms")
		b.ReportMetric(lat.P99, "p99-ms")
	}
	if got := served.Load(); got < int64(b.N) {
		b.Fatalf("the receiver served %d of %d", got, b.N)
	}
}

// pgtestURL returns the URL of w's database for the listener.
func pgtestURL(b *testing.B, w *world) string {
	var name string
	if err := w.db.Get(&name, `SELECT current_database()`); err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// BenchmarkDeliveryBaseline posts b.N bodies of the dispatcher's size to the receiver
// BenchmarkDelivery uses (it reads, verifies and records each), from benchConcurrency
// goroutines with a bare net/http client.
func BenchmarkDeliveryBaseline(b *testing.B) {
	rcv := newReceiver(b, func(int64, string) int { return http.StatusOK })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}, Timeout: 10 * time.Second}
	body := bytes.Repeat([]byte("x"), 300)
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				res, err := client.Post(rcv.srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
