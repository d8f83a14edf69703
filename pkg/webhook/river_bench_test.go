package webhook_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// The alternative measured against the outbox's own delivery table (docs/events.md): River, a
// PostgreSQL job queue, through its database/sql driver, so a job is enqueued inside the same
// sqlx transaction as the fact. Each job is one delivery: the worker signs and posts it as the
// dispatcher does.

// riverDelivery is a delivery job.
type riverDelivery struct {
	URL  string `json:"url"`
	ID   string `json:"id"`
	Body []byte `json:"body"`
}

// Kind names the job kind.
func (riverDelivery) Kind() string { return "webhook_delivery" }

// riverWorker posts a delivery job and records the commit → first attempt latency.
type riverWorker struct {
	river.WorkerDefaults[riverDelivery]
	client *http.Client
	secret string
	mu     sync.Mutex
	lat    []time.Duration
	done   atomic.Int64
}

// Work posts the job's body, signed; a non-2xx answer is an error River retries.
func (w *riverWorker) Work(ctx context.Context, job *river.Job[riverDelivery]) error {
	if job.Attempt == 1 {
		w.mu.Lock()
		w.lat = append(w.lat, time.Since(job.CreatedAt))
		w.mu.Unlock()
	}
	now := time.Now()
	sig, err := webhook.Sign(job.Args.ID, now, job.Args.Body, w.secret)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.Args.URL, bytes.NewReader(job.Args.Body))
	if err != nil {
		return err
	}
	req.Header.Set("webhook-id", job.Args.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	res, err := w.client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return &river.UnknownJobKindError{Kind: "status " + strconv.Itoa(res.StatusCode)}
	}
	w.done.Add(1)
	return nil
}

// BenchmarkRiverDelivery is BenchmarkDelivery's saturated and paced runs with River doing the
// queueing: producers insert one job per event in their own sqlx transaction (InsertTx), River's
// workers (benchConcurrency) post them to the same receiver. Without a pgx listener the
// database/sql driver polls; FetchPollInterval is the latency floor.
func BenchmarkRiverDelivery(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchRiver(b, 0) })
	b.Run("paced-800/s", func(b *testing.B) { benchRiver(b, 800) })
}

func benchRiver(b *testing.B, rate int) {
	ctx := context.Background()
	rcv := newReceiver(b, func(int64, string) int { return http.StatusOK })
	secret := webhook.NewSecret()
	rcv.secret.Store(secret)
	db := pgtest.MustOpenDB(b)
	driver := riverdatabasesql.New(db.DB)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		b.Fatal(err)
	}
	worker := &riverWorker{client: webhook.NewClient(true, benchConcurrency, 10*time.Second), secret: secret}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: benchConcurrency}},
		Workers:           workers,
		FetchPollInterval: 20 * time.Millisecond,
		FetchCooldown:     5 * time.Millisecond,
		Logger:            quiet(),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer client.Stop(ctx)
	body := bytes.Repeat([]byte("x"), 300)

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if rate > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				}
				tx, err := db.BeginTxx(ctx, nil)
				if err != nil {
					b.Error(err)
					return
				}
				_, err = client.InsertTx(ctx, tx.Tx, riverDelivery{URL: rcv.srv.URL + "/hook", ID: uuid.NewString(), Body: body}, nil)
				if err == nil {
					err = tx.Commit()
				}
				if err != nil {
					tx.Rollback()
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Minute); worker.done.Load() < int64(b.N); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered", worker.done.Load(), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	worker.mu.Lock()
	lat := slices.Clone(worker.lat)
	worker.mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
