package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
)

// Queue is the storage side of delivery (pkg/postgres's Store implements it).
type Queue interface {
	// ClaimDeliveries leases up to limit due deliveries, at most perEndpoint of one endpoint and
	// none of the endpoints in busy, for lease.
	ClaimDeliveries(ctx context.Context, limit, perEndpoint int, busy []uuid.UUID, lease time.Duration) ([]outbox.Lease, error)
	// RecordAttempts stores attempts' outcomes and releases their leases; kept[i] false: the
	// lease of the i-th was lost and nothing of it was stored.
	RecordAttempts(ctx context.Context, rs []outbox.Recorded, schedule []time.Duration) (kept []bool, err error)
}

// Config tunes a Dispatcher; zero fields take the defaults of SPEC §11.
type Config struct {
	// Workers bounds the attempts in flight in this process (default 64).
	Workers int
	// PerEndpoint bounds the attempts in flight to one endpoint, so one slow receiver cannot
	// take every worker (default 8).
	PerEndpoint int
	// Batch bounds the deliveries one claim leases (default 100).
	Batch int
	// Lease is how long a claimed delivery is held before another dispatcher may take it; it
	// must outlast the attempt timeout (default 60 s).
	Lease time.Duration
	// Poll is how often storage is asked for due deliveries when nothing wakes the dispatcher
	// (retries coming due; default 500 ms).
	Poll time.Duration
	// Schedule is the retry schedule (default outbox.Schedule).
	Schedule []time.Duration
	// Timeout is an attempt's timeout (default outbox.AttemptTimeout).
	Timeout time.Duration
	// LeaseMargin is how much of a lease must be left, beyond Timeout, for an attempt to start:
	// an attempt never runs past its lease, so no other dispatcher sends it meanwhile
	// (default 5 s).
	LeaseMargin time.Duration
	// AllowPrivate lets deliveries reach loopback, private and link-local addresses, and use
	// http (PHOENIX_WEBHOOK_ALLOW_PRIVATE: development and tests).
	AllowPrivate bool
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = 8
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Timeout <= 0 {
		c.Timeout = outbox.AttemptTimeout
	}
	if c.Lease <= 0 {
		c.Lease = 60 * time.Second
	}
	if c.LeaseMargin <= 0 {
		c.LeaseMargin = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.Schedule == nil {
		c.Schedule = outbox.Schedule
	}
	return c
}

// Metrics are the delivery metrics (SPEC §11).
type Metrics struct {
	Deliveries *prometheus.CounterVec
	Latency    prometheus.Histogram
	FirstDelay prometheus.Histogram
}

// NewMetrics registers the delivery metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "phoenix_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome (delivered, failed: non-2xx, error: no answer, refused: forbidden destination)."},
			[]string{"outcome"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "phoenix_webhook_attempt_duration_seconds",
			Help: "Duration of webhook delivery attempts.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		FirstDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "phoenix_webhook_first_attempt_delay_seconds",
			Help: "Time from an event's commit to its first delivery attempt.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	reg.MustRegister(m.Deliveries, m.Latency, m.FirstDelay)
	return m
}

// Backlogger measures what is waiting (pkg/postgres's Store implements it).
type Backlogger interface {
	// Backlog returns the pending deliveries and the age of the oldest.
	Backlog(ctx context.Context) (pending int64, oldest time.Duration, err error)
}

// RegisterBacklog registers the backlog gauges on reg, measured at every scrape through b.
func RegisterBacklog(reg prometheus.Registerer, b Backlogger, log *slog.Logger) {
	measure := func(pick func(int64, time.Duration) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, age, err := b.Backlog(ctx)
			if err != nil {
				log.Warn("webhook_backlog_failed", "err", err)
				return 0
			}
			return pick(n, age)
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "phoenix_webhook_backlog_deliveries",
			Help: "Pending webhook deliveries of active endpoints."},
			measure(func(n int64, _ time.Duration) float64 { return float64(n) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "phoenix_webhook_oldest_undelivered_seconds",
			Help: "Age of the oldest pending webhook delivery of an active endpoint."},
			measure(func(_ int64, age time.Duration) float64 { return age.Seconds() })),
	)
}

// Dispatcher leases due deliveries from a Queue and posts them: several dispatchers (one per
// Admin Gateway replica) share the work through the leases, and a crashed one's deliveries
// come back when their leases end. Deliveries are at least once: a receiver deduplicates on
// webhook-id.
type Dispatcher struct {
	q       Queue
	sealer  *Sealer
	client  *http.Client
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	wake    chan struct{}

	// records carries finished attempts to the recorder, which stores them in batches.
	records  chan outbox.Recorded
	mu       sync.Mutex
	inflight map[uuid.UUID]int
	total    int
	freed    chan struct{}
	wg       sync.WaitGroup
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// NewDispatcher returns a dispatcher over q that opens secrets with sealer.
func NewDispatcher(q Queue, sealer *Sealer, cfg Config, m *Metrics, log *slog.Logger) *Dispatcher {
	cfg = cfg.withDefaults()
	return &Dispatcher{q: q, sealer: sealer, cfg: cfg, log: log, metrics: m,
		client: NewClient(cfg.AllowPrivate, cfg.PerEndpoint, cfg.Timeout),
		wake:   make(chan struct{}, 1), freed: make(chan struct{}, 1), records: make(chan outbox.Recorded, cfg.Workers),
		inflight: map[uuid.UUID]int{}, Now: time.Now}
}

// Wake makes the dispatcher look for due deliveries now. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends, then waits for the attempts in flight: they run to their end
// (bounded by the attempt timeout) and are recorded, so a graceful stop leaves no delivery
// leased for nothing. Run is called once.
func (d *Dispatcher) Run(ctx context.Context) {
	recorded := make(chan struct{})
	go func() { d.record(); close(recorded) }()
	defer func() {
		d.wg.Wait()
		close(d.records)
		<-recorded
	}()
	poll := time.NewTicker(d.cfg.Poll)
	defer poll.Stop()
	for {
		n := d.claim(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			// There may be more due: claim again as soon as there is room.
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-d.freed:
		case <-poll.C:
		}
	}
}

// claim leases what fits into the free workers and starts the attempts; it returns how many it
// started, 0 also when there is no room.
func (d *Dispatcher) claim(ctx context.Context) int {
	d.mu.Lock()
	room := min(d.cfg.Batch, d.cfg.Workers-d.total)
	busy := make([]uuid.UUID, 0, len(d.inflight))
	for id, n := range d.inflight {
		if n >= d.cfg.PerEndpoint {
			busy = append(busy, id)
		}
	}
	d.mu.Unlock()
	if room <= 0 {
		return 0
	}
	leases, err := d.q.ClaimDeliveries(ctx, room, d.cfg.PerEndpoint, busy, d.cfg.Lease)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("webhook_claim_failed", "err", err)
			// Storage is down: wait a poll before trying again.
			select {
			case <-ctx.Done():
			case <-time.After(d.cfg.Poll):
			}
		}
		return 0
	}
	d.mu.Lock()
	for _, l := range leases {
		d.inflight[l.EndpointID]++
		d.total++
	}
	d.mu.Unlock()
	for _, l := range leases {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer d.release(l.EndpointID)
			d.deliver(l)
		}()
	}
	return len(leases)
}

func (d *Dispatcher) release(endpoint uuid.UUID) {
	d.mu.Lock()
	if d.inflight[endpoint]--; d.inflight[endpoint] == 0 {
		delete(d.inflight, endpoint)
	}
	d.total--
	d.mu.Unlock()
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

// deliver makes one attempt of l and records it. It runs on a context of its own: a stopping
// dispatcher lets its attempts finish and be recorded.
func (d *Dispatcher) deliver(l outbox.Lease) {
	if time.Until(l.Until) < d.cfg.Timeout+d.cfg.LeaseMargin {
		// Too little lease left to finish inside it: leave the delivery to the next claim.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	start := d.Now()
	if l.Attempts == 0 && d.metrics != nil {
		d.metrics.FirstDelay.Observe(start.Sub(l.Event.CreatedAt).Seconds())
	}
	code, excerpt, err := d.post(ctx, l)
	dur := d.Now().Sub(start)
	o := outbox.AttemptOutcome{Attempt: outbox.Attempt{At: start.UTC().Truncate(time.Microsecond), Duration: dur}}
	outcome := "delivered"
	switch {
	case err != nil:
		msg := err.Error()
		o.Attempt.Error = &msg
		outcome = "error"
		if errors.Is(err, ErrForbiddenDestination) || errors.Is(err, errScheme) {
			outcome = "refused"
		}
	case code < 200 || code > 299:
		msg := "the receiver answered " + strconv.Itoa(code)
		o.Attempt.Error = &msg
		outcome = "failed"
	default:
		o.Delivered = true
	}
	if code != 0 {
		o.Attempt.StatusCode = &code
		o.Attempt.ResponseExcerpt = &excerpt
	}
	if d.metrics != nil {
		d.metrics.Deliveries.WithLabelValues(outcome).Inc()
		d.metrics.Latency.Observe(dur.Seconds())
	}
	d.records <- outbox.Recorded{Lease: l, Outcome: o}
}

// recordBatch bounds the attempts stored in one transaction; recordDelay is how long the
// recorder waits for more after the first.
const (
	recordBatch = 128
	recordDelay = 5 * time.Millisecond
)

// record stores finished attempts in batches until records is closed and drained. A batch that
// cannot be stored is given up: its leases run out and the deliveries are attempted again (at
// least once).
func (d *Dispatcher) record() {
	var batch []outbox.Recorded
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		kept, err := d.q.RecordAttempts(ctx, batch, d.cfg.Schedule)
		cancel()
		if err != nil {
			d.log.Warn("webhook_record_failed", "attempts", len(batch), "err", err)
		}
		for i, k := range kept {
			if !k {
				d.log.Info("webhook_lease_lost", "delivery_id", batch[i].Lease.DeliveryID)
			}
		}
		batch = batch[:0]
	}
	for r := range d.records {
		batch = append(batch, r)
		timer := time.NewTimer(recordDelay)
	collect:
		for len(batch) < recordBatch {
			select {
			case r, ok := <-d.records:
				if !ok {
					break collect
				}
				batch = append(batch, r)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		flush()
	}
	flush()
}

// errScheme refuses a plain-http URL when private destinations are not allowed.
var errScheme = errors.New("the endpoint URL must use https")

// post sends the signed envelope and returns the status and the start of the body.
func (d *Dispatcher) post(ctx context.Context, l outbox.Lease) (int, string, error) {
	u, err := url.Parse(l.URL)
	if err != nil {
		return 0, "", fmt.Errorf("endpoint URL: %w", err)
	}
	if u.Scheme != "https" && !(d.cfg.AllowPrivate && u.Scheme == "http") {
		return 0, "", errScheme
	}
	secrets := make([]string, 0, len(l.Secrets))
	for _, s := range l.Secrets {
		plain, err := d.sealer.Open(s)
		if err != nil {
			return 0, "", fmt.Errorf("endpoint secret: %w", err)
		}
		secrets = append(secrets, string(plain))
	}
	body, err := json.Marshal(apishape.NewOutboxEvent(l.Event))
	if err != nil {
		return 0, "", fmt.Errorf("encode event: %w", err)
	}
	id := l.Event.ID.String()
	ts := d.Now()
	sig, err := Sign(id, ts, body, secrets...)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "phoenix-webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, outbox.MaxExcerpt))
	return resp.StatusCode, excerptOf(b), nil
}

// excerptOf keeps the valid UTF-8 prefix of b without NUL (PostgreSQL text holds no NUL), so a
// cut multi-byte character or a binary body stores safely.
func excerptOf(b []byte) string {
	for !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(bytes.ReplaceAll(b, []byte{0}, nil))
}

// Listen wakes d on every notification of channel on dsn, and on every reconnect (nil), since
// notifications may have been lost meanwhile. It returns when ctx ends.
func Listen(ctx context.Context, dsn, channel string, d *Dispatcher, log *slog.Logger) {
	l := pq.NewListener(dsn, 50*time.Millisecond, 2*time.Second, func(ev pq.ListenerEventType, err error) {
		if ev == pq.ListenerEventDisconnected {
			log.Warn("webhook_listener_disconnected", "err", err)
		}
	})
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer func() {
		if stop() {
			l.Close()
		}
		go func() {
			for range l.Notify {
			}
		}()
	}()
	if err := l.Listen(channel); err != nil && ctx.Err() == nil {
		log.Error("webhook_listener_listen", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.Notify:
			d.Wake()
		}
	}
}
