// Package projector keeps the Query Gateway's Redis read models current: it follows the change
// log PostgreSQL writes in every projected transaction, recomputes the affected documents from
// PostgreSQL and writes them to Redis, one MULTI/EXEC per tenant.
//
// Catch-up cannot skip a change: the position is a PostgreSQL snapshot S1, and each round takes
// a new REPEATABLE READ snapshot S2 and applies the changes S2 sees whose transactions S1 did not
// show as completed — exactly those that committed in between, whatever their xid order
// (docs/query-gateway.md has the argument). Exactly one replica projects at a time: the one
// holding a PostgreSQL session advisory lock.
package projector

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// LockKey is the advisory lock the projecting replica holds.
const LockKey int64 = 0x7068785f70726f6a // "phx_proj"

// Channel is the NOTIFY channel of the change log.
const Channel = "phoenix_changes"

// InvalidateAll is the announcement that every document may have changed.
const InvalidateAll = "*"

// ListenerApp is the application_name of the listening connection (SPEC §8).
const ListenerApp = "query-gateway-listener"

// Config tunes a Projector.
type Config struct {
	// DSN is the database URL, for the listener's own connection.
	DSN string
	// Deployment names the channel (cache.InvalidationChannel) on which the projector announces,
	// after each round, the tenants whose documents it wrote (one per line), or InvalidateAll
	// after a rebuild.
	Deployment string
	// Interval is the catch-up timer that covers missed notifications (default 1 s).
	Interval time.Duration
	// LockRetry is how often a standby tries to take the lock (default 1 s).
	LockRetry time.Duration
	// Retention is how long changes are kept (default 7 days); a position older than half of it
	// is not trusted and the read models are rebuilt.
	Retention time.Duration
	// MaxChanges bounds the entities one round applies (default 2,000; during a catch-up, as
	// many again of the changes committed since it began).
	MaxChanges int
}

// rebuildChunk is how many users' documents a rebuild builds and writes at a time.
const rebuildChunk = 500

// Metrics are the projector's Prometheus series.
type Metrics struct {
	Lag      prometheus.Gauge
	Backlog  prometheus.Gauge
	Applied  prometheus.Counter
	Rebuilds prometheus.Counter
	Leader   prometheus.Gauge
	Rounds   prometheus.Histogram
	// Failures counts rounds that failed (Redis or PostgreSQL unavailable, a rebuild cut short).
	Failures prometheus.Counter
	// TenantBacklog is the backlog of the top tenants (at most topTenants series at a time).
	TenantBacklog *prometheus.GaugeVec
	// RebuildProgress is the share of tenants the running rebuild has written (1 when none runs).
	RebuildProgress prometheus.Gauge
	// Verified counts users the verifier compared; DriftFound the documents (fields, members)
	// it found different from PostgreSQL, DriftRepaired those it rewrote.
	Verified      prometheus.Counter
	DriftFound    prometheus.Counter
	DriftRepaired prometheus.Counter
}

// topTenants is how many tenants the per-tenant backlog gauge names.
const topTenants = 10

// NewMetrics registers the projector's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "phoenix_projector_lag_seconds",
			Help: "In the last round, how long the oldest change it applied had waited since it was written."}),
		Backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "phoenix_projector_backlog_changes",
			Help: "Change-log rows the last round found committed and not yet applied."}),
		Applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_projector_changes_applied_total",
			Help: "Change-log rows applied to the read models."}),
		Rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_projector_rebuilds_total",
			Help: "Full rebuilds of the read models (wiped Redis, another database, or a stale position)."}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "phoenix_projector_leader",
			Help: "1 while this replica holds the projector lock."}),
		Rounds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "phoenix_projector_round_duration_seconds",
			Help: "Duration of catch-up rounds that applied changes.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_projector_round_failures_total",
			Help: "Catch-up rounds and rebuilds that failed."}),
		TenantBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "phoenix_projector_tenant_backlog_changes",
			Help: "Change-log rows not yet applied, for the tenants with the most."}, []string{"tenant"}),
		RebuildProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "phoenix_projector_rebuild_progress_ratio",
			Help: "Share of tenants the running rebuild has written (1 when no rebuild runs)."}),
		Verified: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_readmodel_verified_users_total",
			Help: "Users whose documents the verifier compared with PostgreSQL."}),
		DriftFound: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_readmodel_drift_found_total",
			Help: "Documents (fields, sorted-set members) the verifier found different from PostgreSQL."}),
		DriftRepaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_readmodel_drift_repaired_total",
			Help: "Documents the verifier rewrote from PostgreSQL."}),
	}
	m.RebuildProgress.Set(1)
	if reg != nil {
		reg.MustRegister(m.Lag, m.Backlog, m.Applied, m.Rebuilds, m.Leader, m.Rounds, m.Failures, m.TenantBacklog,
			m.RebuildProgress, m.Verified, m.DriftFound, m.DriftRepaired)
	}
	return m
}

// Projector applies the change log to the read models.
type Projector struct {
	db      *sqlx.DB
	cache   *cache.Store
	log     *slog.Logger
	cfg     Config
	metrics *Metrics
	kick    chan struct{}
	leader  atomic.Bool
	// Owned by the leading goroutine: the last position read or saved, when a round last
	// succeeded, and the failure log's rate limit.
	known       cache.Position
	lastOK      time.Time
	lastFailLog time.Time
	lastBacklog time.Time
	suppressed  int
	// term is this replica's fencing term while it leads: the transaction id it was given when
	// it took the lock, so that every later leader has a higher one, however Redis was wiped.
	term int64
	// tenants are the tenants the leaderboard sweep visits (loaded when first needed, then
	// extended by every round), lastSweep when it last ran.
	tenants    map[string]bool
	lastSweep  time.Time
	lastVerify time.Time
	// verifyAsked is set by VerifySoon (any goroutine).
	verifyAsked atomic.Bool
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// New returns a Projector. metrics may be nil (NewMetrics(nil) is used).
func New(db *sqlx.DB, store *cache.Store, log *slog.Logger, metrics *Metrics, cfg Config) *Projector {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.MaxChanges <= 0 {
		cfg.MaxChanges = 2_000
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Projector{db: db, cache: store, log: log, cfg: cfg, metrics: metrics,
		kick: make(chan struct{}, 1), Now: time.Now}
}

// Leader reports whether this replica currently projects.
func (p *Projector) Leader() bool { return p.leader.Load() }

// Kick asks for a catch-up round soon (coalesced).
func (p *Projector) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run listens for change notifications and, while it holds the lock, projects; it returns when
// ctx ends, after the listener has stopped and the lock has been given up. It returns an error
// only when it cannot run at all (a database URL the listener cannot use).
func (p *Projector) Run(ctx context.Context) error {
	dsn, err := postgres.WithApplicationName(p.cfg.DSN, ListenerApp)
	if err != nil {
		return fmt.Errorf("projector listener: %w", err)
	}
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		p.listen(ctx, dsn)
	}()
	defer func() { <-listening }()
	for ctx.Err() == nil {
		conn, err := p.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		p.leader.Store(true)
		p.metrics.Leader.Set(1)
		p.log.Info("projector_leader")
		err = p.lead(ctx, conn)
		p.leader.Store(false)
		p.metrics.Leader.Set(0)
		release(conn)
		if ctx.Err() == nil {
			p.log.Warn("projector_lost_lock", "err", err)
		}
	}
	return nil
}

// release ends the lock connection's session, which frees the session's advisory lock. Closing
// a *sql.Conn alone would return the session, lock and all, to the pool, where it would keep
// every other replica out for as long as the pool lives.
func release(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// acquire takes the advisory lock on a dedicated connection, retrying until it succeeds or ctx
// ends.
func (p *Projector) acquire(ctx context.Context) (*sql.Conn, error) {
	for {
		conn, err := p.db.Conn(ctx)
		if err == nil {
			var ok bool
			err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, LockKey).Scan(&ok)
			if err == nil && ok {
				// Taken after the lock: every later acquisition gets a larger transaction id.
				if err = conn.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&p.term); err == nil {
					return conn, nil
				}
				release(conn)
				conn = nil
			}
			if conn != nil {
				conn.Close()
			}
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("projector_lock_failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(p.cfg.LockRetry):
		}
	}
}

// lead runs catch-up rounds while the lock connection lives.
func (p *Projector) lead(ctx context.Context, conn *sql.Conn) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	lastPrune := time.Time{}
	failures := 0
	var checked time.Time
	p.lastOK = time.Now()
	for {
		// The lock lives as long as its session: check the session (at most every 250 ms, not
		// on every round of a burst) so that a replica that lost its connection stops writing.
		if time.Since(checked) > 250*time.Millisecond {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := conn.ExecContext(cctx, `SELECT 1`)
			cancel()
			if err != nil {
				return fmt.Errorf("lock connection: %w", err)
			}
			checked = time.Now()
		}
		again, err := p.Round(ctx)
		if errors.Is(err, cache.ErrFenced) {
			return err // another replica leads now
		}
		if err != nil && ctx.Err() == nil {
			failures++
			p.failed(ctx, err, failures)
			// Back off (100 ms doubling up to the catch-up interval) instead of retrying on every
			// notification while a dependency is down.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(100*time.Millisecond<<min(failures-1, 5), p.cfg.Interval)):
			}
			continue
		}
		if err == nil {
			if failures > 0 {
				p.log.Info("projector_recovered", "after_failures", failures)
			}
			failures = 0
			p.lastOK = time.Now()
		}
		if err == nil && time.Since(lastPrune) > 10*time.Minute {
			lastPrune = time.Now()
			p.prune(ctx)
		}
		if again {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-t.C:
		}
	}
}

// failed makes a failed round visible: it counts it, logs it (every failure, at most one line
// per second, the lines in between counted in the next), and keeps the lag and backlog gauges
// moving from the change log itself, since no round measures them while rounds fail.
func (p *Projector) failed(ctx context.Context, err error, failures int) {
	p.metrics.Failures.Inc()
	if time.Since(p.lastFailLog) >= time.Second {
		p.log.Warn("projector_round_failed", "err", err, "consecutive", failures, "suppressed", p.suppressed)
		p.lastFailLog, p.suppressed = time.Now(), 0
	} else {
		p.suppressed++
	}
	if time.Since(p.lastBacklog) < time.Second {
		return
	}
	p.lastBacklog = time.Now()
	p.metrics.Lag.Set(time.Since(p.lastOK).Seconds())
	if p.known.Snapshot == "" {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	b, berr := postgres.NewSource(p.db).Backlog(bctx, p.known.Snapshot, topTenants)
	if berr != nil {
		return // PostgreSQL is down too: the lag above still rises
	}
	p.observeBacklog(b)
}

// observeBacklog sets the backlog gauges.
func (p *Projector) observeBacklog(b postgres.Backlog) {
	p.metrics.Backlog.Set(float64(b.Rows))
	if b.Rows > 0 {
		p.metrics.Lag.Set(b.Age.Seconds())
	}
	p.metrics.TenantBacklog.Reset()
	for t, n := range b.Tenants {
		p.metrics.TenantBacklog.WithLabelValues(t).Set(float64(n))
	}
}

// listen kicks a round on every notification, and on every reconnect (nil), since
// notifications may have been lost while disconnected. It returns when ctx ends.
func (p *Projector) listen(ctx context.Context, dsn string) {
	l := pq.NewListener(dsn, 50*time.Millisecond, 2*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected:
			p.log.Warn("listener_disconnected", "err", err)
		case pq.ListenerEventReconnected:
			p.log.Info("listener_reconnected")
		case pq.ListenerEventConnectionAttemptFailed:
			p.log.Debug("listener_connect_failed", "err", err)
		}
	})
	// Listen waits for the first connection, however long that takes: closing the listener when
	// ctx ends releases it.
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer func() {
		if stop() {
			l.Close()
		}
		// The listener's own goroutine may be blocked handing over a notification: let it
		// deliver and end (it closes Notify when it does).
		go func() {
			for range l.Notify {
			}
		}()
	}()
	if err := l.Listen(Channel); err != nil && ctx.Err() == nil {
		p.log.Error("listener_listen", "err", err)
	}
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-l.Notify:
			p.log.Debug("listener_notified", "reconnect", n == nil)
			p.Kick()
		case <-ping.C:
			go l.Ping()
		}
	}
}

func (p *Projector) prune(ctx context.Context) {
	pos, ok, err := p.cache.Position(ctx)
	if err != nil || !ok || pos.Snapshot == "" {
		return
	}
	n, err := postgres.PruneChanges(ctx, p.db, p.Now().Add(-p.cfg.Retention), pos.Snapshot, pos.Seq)
	if err != nil {
		p.log.Warn("prune_failed", "err", err)
		return
	}
	if n > 0 {
		p.log.Info("changes_pruned", "rows", n)
	}
}

// Round runs one catch-up round (the caller must hold the lock). It reads, in a new snapshot,
// the changes of the transactions that completed since the position's snapshot, recomputes the
// documents they touch from that same snapshot, writes them (one MULTI/EXEC per tenant) and
// then moves the position to the new snapshot. again reports that another round should follow
// at once.
func (p *Projector) Round(ctx context.Context) (again bool, err error) {
	start := time.Now()
	pos, ok, err := p.cache.Position(ctx)
	if err != nil {
		return false, err
	}
	if ok {
		p.known = pos
	}
	tx, snap, x, err := postgres.OpenSnapshot(ctx, p.db)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	src := postgres.NewSource(tx)
	dbID, err := src.Identity(ctx)
	if err != nil {
		return false, err
	}
	if !ok || pos.Snapshot == "" {
		return true, p.rebuild(ctx, tx, snap, x, dbID, "no position (new or wiped Redis)")
	}
	chk, err := src.CheckPosition(ctx, pos.Snapshot, pos.Seq)
	if err != nil {
		return false, err
	}
	if why := distrust(pos, dbID, chk, p.Now(), p.cfg.Retention); why != "" {
		// The saved position (and its term) belongs to another history of the database: a
		// restored database hands out transaction ids, and so terms, below it again.
		if err := p.cache.DropPosition(ctx); err != nil {
			return false, err
		}
		return true, p.rebuild(ctx, tx, snap, x, dbID, why)
	}
	// A round applies at most MaxChanges entities. When more are pending, the round's snapshot
	// becomes the catch-up's target: the following rounds apply, chunk by chunk in entity order,
	// the changes of the transactions the target shows as completed (still visible in every later
	// snapshot), and the position moves to the target once they are all applied — no change is
	// skipped, and memory holds one chunk.
	upto := pos.Target
	win, more, err := src.ChangeChunk(ctx, pos.Snapshot, upto,
		postgres.ChangeKey{TenantID: pos.Cursor.Tenant, Entity: pos.Cursor.Entity, EntityID: pos.Cursor.ID}, p.cfg.MaxChanges)
	if err != nil {
		return false, err
	}
	next := cache.Position{DatabaseID: dbID, Snapshot: snap, HW: x, Epoch: pos.Epoch, Term: p.term}
	switch {
	case more:
		next.Snapshot, next.HW, next.Target, next.TargetHW = pos.Snapshot, pos.HW, upto, pos.TargetHW
		if upto == "" {
			next.Target, next.TargetHW = snap, x
		}
		next.Cursor = cache.Cursor{Tenant: win.Last.TenantID, Entity: win.Last.Entity, ID: win.Last.EntityID}
	case upto != "":
		next.Snapshot, next.HW = upto, pos.TargetHW // the target's window is applied
	}
	seq, markAt := pos.Seq, pos.MarkAt
	if win.MaxSeq > seq {
		seq = win.MaxSeq
		if markAt, err = src.MarkAt(ctx, seq); err != nil {
			return false, err
		}
	}
	// After a rebuild, rounds write without the epoch (the documents stay unserved) until one
	// finds the log caught up: that round's documents are complete up to its snapshot, and it
	// installs the epoch in every tenant.
	epoch, switching := pos.Epoch, false
	if pos.Building {
		epoch, switching = "", win.Rows <= switchBacklog && !more && upto == ""
		if switching && p.tenants == nil {
			if err := p.loadTenants(ctx, tx); err != nil {
				return false, err
			}
		}
	}
	// Each tenant's batch is written as soon as it is built, smallest backlog first: a round
	// holds one tenant's documents in memory, and a small tenant's writes do not wait for a big
	// tenant's to be computed. Every batch comes from the round's one snapshot.
	var tenants []string
	write := func(b *cache.Batch) error {
		if err := p.cache.Apply(ctx, b, epoch, p.term); err != nil {
			return err
		}
		p.metrics.DriftRepaired.Add(float64(b.Drift))
		if p.tenants != nil {
			p.tenants[b.Tenant] = true
		}
		if !slices.Contains(tenants, b.Tenant) {
			tenants = append(tenants, b.Tenant)
			if !pos.Building {
				p.announce(ctx, b.Tenant)
			}
		}
		return nil
	}
	changes, rows := win.Changes, win.TenantRows
	if next.Target != "" || upto != "" {
		// During a catch-up, the changes committed after its target are applied too (bounded
		// as well), so a tenant's fresh writes never wait for another tenant's backlog. They are
		// applied again once the position reaches the target: recomputing from the snapshot
		// makes that harmless.
		target := cmp.Or(next.Target, upto)
		fresh, _, err := src.ChangeChunk(ctx, target, "", postgres.ChangeKey{}, p.cfg.MaxChanges)
		if err != nil {
			return false, err
		}
		changes = append(slices.Clip(changes), fresh.Changes...)
		for t, n := range fresh.TenantRows {
			rows[t] += n
		}
	}
	if len(changes) > 0 {
		if err := p.plan(ctx, tx, changes, rows, write); err != nil {
			return false, err
		}
	}
	swept := p.Now().Sub(p.lastSweep) >= leaderSweep
	if swept {
		// From the same snapshot as the changes, so a sweep never writes a count older than
		// one a change wrote.
		if err := p.sweep(ctx, tx, write); err != nil {
			return false, err
		}
	}
	// Not with a sweep: the verifier counts leaderboards at the clock Redis holds.
	verifying := len(win.Changes) == 0 && !pos.Building && !swept &&
		(p.verifyAsked.Load() || p.Now().Sub(p.lastVerify) >= verifyEvery)
	if verifying {
		if err := p.verify(ctx, tx, write); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("end snapshot: %w", err)
	}
	if swept {
		p.lastSweep = p.Now()
	}
	if verifying {
		p.lastVerify = p.Now()
		p.verifyAsked.Store(false)
	}
	if switching {
		for t := range p.tenants {
			if err := p.cache.Apply(ctx, cache.NewBatch(t), pos.Epoch, p.term); err != nil {
				return false, err
			}
		}
		p.announce(ctx, InvalidateAll)
		p.log.Info("projector_rebuild_switched", "tenants", len(p.tenants))
	}
	if len(win.Changes) > 0 || next.HW != pos.HW || p.Now().Sub(pos.SavedAt) > time.Minute || switching || upto != "" {
		next.Seq, next.MarkAt, next.SavedAt = seq, markAt, p.Now().UTC()
		next.Building = pos.Building && !switching
		saved, err := p.cache.SavePosition(ctx, next, pos.Epoch)
		if err != nil {
			return false, err
		}
		if !saved {
			// Redis was wiped (or rebuilt elsewhere) during the round: the next round rebuilds.
			p.log.Warn("projector_position_lost")
			return true, nil
		}
	}
	if len(win.Changes) > 0 {
		p.log.Debug("projector_round", "rows", win.Rows, "entities", len(win.Changes), "tenants", len(tenants),
			"age_ms", win.Age.Milliseconds(), "duration_ms", time.Since(start).Milliseconds())
	}
	p.metrics.Applied.Add(float64(win.Rows))
	p.observeBacklog(postgres.Backlog{Rows: win.Rows, Age: win.Age, Tenants: win.TopTenants(topTenants)})
	p.metrics.Lag.Set(win.Age.Seconds())
	if len(win.Changes) > 0 {
		p.metrics.Rounds.Observe(time.Since(start).Seconds())
	}
	return more || upto != "", nil
}

// distrust returns why the read models cannot continue from the saved position pos, "" when
// they can: the position must come from this database (identity dbID), not lie ahead of it (a
// restored backup or a point-in-time recovery keeps the identity but rewinds the log), find
// its last applied change still in the log as it was (else the log was truncated, or the seq
// was handed out again by a rewound database), and be recent enough that the changes after it
// were not pruned.
func distrust(pos cache.Position, dbID string, chk postgres.PositionCheck, now time.Time, retention time.Duration) string {
	switch {
	case pos.DatabaseID != dbID:
		return "position from another database"
	case chk.Ahead, pos.Seq > chk.LastSeq:
		return "position ahead of the database (a restored backup or point-in-time recovery)"
	case pos.Seq > 0 && chk.MarkAt == 0:
		return "change log truncated past the position"
	case pos.Seq > 0 && chk.MarkAt != pos.MarkAt:
		return "the position's last change is another in this database (a restored backup)"
	case now.Sub(pos.SavedAt) > retention/2:
		return "position older than the change retention"
	}
	return ""
}

// tenantPlan collects what one tenant's changes touch.
type tenantPlan struct {
	campaigns, tiers, affiliates bool
	codes                        map[string]bool
	sections                     map[string]map[string]bool // section → users
	// referrers are the users whose leaderboard rows are recomputed; clock, when set, is the
	// moment the tenant's leaderboards are brought up to (a rebuild or a sweep).
	referrers map[string]bool
	clock     time.Time
	// referrals and rewards are the changed ones whose list entries are rewritten; listsOf are
	// users whose lists are written whole (a rebuild).
	referrals   []string
	rewards     []string
	commissions []string
	listsOf     []string
}

func newTenantPlan() *tenantPlan {
	return &tenantPlan{codes: map[string]bool{}, sections: map[string]map[string]bool{}, referrers: map[string]bool{}}
}

func (tp *tenantPlan) touch(users []string, sections ...string) {
	for _, s := range sections {
		m := tp.sections[s]
		if m == nil {
			m = map[string]bool{}
			tp.sections[s] = m
		}
		for _, u := range users {
			m[u] = true
		}
	}
}

// sectionsOf lists the per-user sections an entity's rows live in.
func sectionsOf(entity string) []string {
	switch entity {
	case "code":
		return []string{cache.SectionCodes}
	case "referral":
		// Both sides: "me" of the referee and the referrer's affiliate counters
		// (converted_referrals); the referrer's lists are updated entry by entry (build).
		return []string{cache.SectionMe, cache.SectionAffiliate}
	case "affiliate":
		return []string{cache.SectionAffiliate}
	}
	return nil
}

// plan maps the changed entities to the documents they affect, recomputes those documents from
// the snapshot q and hands write one batch per tenant, tenants with fewer change rows first.
func (p *Projector) plan(ctx context.Context, q *sqlx.Tx, changes []postgres.Change, rows map[string]int, write func(*cache.Batch) error) error {
	type tenantChanges struct {
		ids       map[string][]string // entity → ids
		oldOwners []string            // codes' previous owners
	}
	byTenant := map[string]*tenantChanges{}
	for _, c := range changes {
		tc := byTenant[c.TenantID]
		if tc == nil {
			tc = &tenantChanges{ids: map[string][]string{}}
			byTenant[c.TenantID] = tc
		}
		tc.ids[c.Entity] = append(tc.ids[c.Entity], c.EntityID)
		// A code given to another owner (or deleted) leaves the previous owner's list: the
		// change row names that owner, so this holds whatever Redis forgot.
		if c.Entity == "code" && c.OldOwner != nil {
			tc.oldOwners = append(tc.oldOwners, *c.OldOwner)
		}
	}
	order := make([]string, 0, len(byTenant))
	for t := range byTenant {
		order = append(order, t)
	}
	slices.SortFunc(order, func(a, b string) int { return cmp.Or(cmp.Compare(rows[a], rows[b]), strings.Compare(a, b)) })
	for _, tenant := range order {
		tc := byTenant[tenant]
		tp := newTenantPlan()
		tp.touch(tc.oldOwners, cache.SectionCodes)
		for entity, ids := range tc.ids {
			switch entity {
			case "campaign":
				tp.campaigns = true
				continue
			case "tier":
				tp.tiers = true
				continue
			case "referral":
				// Leaderboards count referrals; downline pages show converted_referrals.
				tp.affiliates = true
			case "affiliate":
				tp.affiliates = true
			case "reward":
				tp.rewards = append(tp.rewards, ids...)
				continue
			case "commission":
				tp.commissions = append(tp.commissions, ids...)
				continue
			}
			secs := sectionsOf(entity)
			if secs == nil {
				continue // commission rules and hierarchy policies are not served
			}
			// The row's current owners; rows are never deleted (codes and affiliates are
			// soft-deleted, and a code's string and an affiliate's user never change), so only
			// a code's owner can move away, and its change row says from whom.
			cur, err := postgres.NewSource(q).Owners(ctx, tenant, entity, ids)
			if err != nil {
				return err
			}
			for _, id := range ids {
				o := cur[id]
				tp.touch(o.Users, secs...)
				if entity == "code" {
					for _, c := range o.Codes {
						tp.codes[c] = true
					}
				}
				if o.Referrer != "" {
					tp.referrers[o.Referrer] = true
				}
			}
			if entity == "referral" {
				tp.referrals = append(tp.referrals, ids...)
			}
		}
		b, err := p.build(ctx, q, tenant, tp)
		if err != nil {
			return err
		}
		if err := write(b); err != nil {
			return err
		}
	}
	return nil
}

// build recomputes a tenant's planned documents into a batch.
func (p *Projector) build(ctx context.Context, q *sqlx.Tx, tenant string, tp *tenantPlan) (*cache.Batch, error) {
	b := cache.NewBatch(tenant)
	if tp.campaigns {
		doc, err := CampaignsDoc(ctx, q, tenant)
		if err != nil {
			return nil, err
		}
		b.Set(cache.CampaignsKey(tenant), doc, 0)
	}
	if tp.tiers {
		doc, err := TiersDoc(ctx, q, tenant)
		if err != nil {
			return nil, err
		}
		b.Set(cache.TiersKey(tenant), doc, 0)
	}
	if len(tp.referrers) > 0 || !tp.clock.IsZero() {
		if err := p.rank(ctx, q, b, tp); err != nil {
			return nil, err
		}
	}
	if tp.affiliates {
		b.Set(cache.AffiliateGenKey(tenant), []byte(newToken()), 0)
	}
	if err := lists(ctx, q, b, tp); err != nil {
		return nil, err
	}
	if len(tp.codes) > 0 {
		codes := make([]string, 0, len(tp.codes))
		for c := range tp.codes {
			codes = append(codes, c)
		}
		docs, err := CodeDocs(ctx, q, tenant, codes)
		if err != nil {
			return nil, err
		}
		for c, doc := range docs {
			b.Set(cache.CodeKey(tenant, c), doc, 0)
		}
	}
	for sec, set := range tp.sections {
		users := make([]string, 0, len(set))
		for u := range set {
			users = append(users, u)
		}
		slices.Sort(users)
		docs, err := UserSections(ctx, q, tenant, users, []string{sec})
		if err != nil {
			return nil, err
		}
		for u, doc := range docs[sec] {
			b.HSet(cache.UserKey(tenant, u), sec, doc)
		}
	}
	return b, nil
}

// listEntries writes, with put, the list entries of the rows changed (loaded by primary key)
// and every row of the users whose lists are written whole (a rebuild).
func listEntries[T any](ctx context.Context, changed, users []string,
	byID func(context.Context, []string) ([]T, error),
	byUser func(context.Context, []string) (map[string][]T, error),
	put func(T) error) error {
	if len(changed) > 0 {
		rows, err := byID(ctx, changed)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := put(r); err != nil {
				return err
			}
		}
	}
	if len(users) > 0 {
		m, err := byUser(ctx, users)
		if err != nil {
			return err
		}
		for _, rows := range m {
			for _, r := range rows {
				if err := put(r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// lists writes the plan's list entries: referrals (on the referrer's lists), rewards and
// commissions (on the beneficiary's).
func lists(ctx context.Context, q *sqlx.Tx, b *cache.Batch, tp *tenantPlan) error {
	src, t := postgres.NewSource(q), b.Tenant
	err := listEntries(ctx, tp.referrals, tp.listsOf,
		func(ctx context.Context, ids []string) ([]referral.Referral, error) {
			return src.ReferralsByID(ctx, t, ids)
		},
		func(ctx context.Context, us []string) (map[string][]referral.Referral, error) {
			return src.ReferrerReferrals(ctx, t, us)
		},
		func(r referral.Referral) error {
			if r.ReferrerID == nil {
				return nil
			}
			doc, err := json.Marshal(apishape.NewReferral(r))
			b.PutReferral(r.ID.String(), *r.ReferrerID, r.Status, r.CreatedAt.UnixMicro(), doc, referral.ReferralStatuses)
			return err
		})
	if err != nil {
		return err
	}
	err = listEntries(ctx, tp.rewards, tp.listsOf,
		func(ctx context.Context, ids []string) ([]referral.Reward, error) {
			return src.RewardsByID(ctx, t, ids)
		},
		func(ctx context.Context, us []string) (map[string][]referral.Reward, error) {
			return src.UserRewards(ctx, t, us)
		},
		func(r referral.Reward) error {
			doc, err := json.Marshal(apishape.NewReward(r))
			b.PutReward(r.ID.String(), r.UserID, r.CurrencyID, r.Amount, r.CreatedAt.UnixMicro(), doc)
			return err
		})
	if err != nil {
		return err
	}
	return listEntries(ctx, tp.commissions, tp.listsOf,
		func(ctx context.Context, ids []string) ([]referral.Commission, error) {
			return src.CommissionsByID(ctx, t, ids)
		},
		func(ctx context.Context, us []string) (map[string][]referral.Commission, error) {
			return src.UserCommissions(ctx, t, us)
		},
		func(c referral.Commission) error {
			doc, err := json.Marshal(apishape.NewCommission(c))
			b.PutCommission(c.ID.String(), c.UserID, c.Level, c.CurrencyID, c.Amount, c.CreatedAt.UnixMicro(), doc)
			return err
		})
}

// rank writes the leaderboard rows of the plan's referrers, counted from the snapshot q over
// periods ending now (the plan's clock when it has one), and, with a clock, moves the tenant's
// leaderboard clock there; without one, a tenant ranked for the first time gets its clock now.
func (p *Projector) rank(ctx context.Context, q *sqlx.Tx, b *cache.Batch, tp *tenantPlan) error {
	now := tp.clock
	if now.IsZero() {
		now = p.Now()
		b.SetOnce(cache.LeaderClockKey(b.Tenant), []byte(strconv.FormatInt(now.UnixMicro(), 10)))
	} else {
		b.Set(cache.LeaderClockKey(b.Tenant), []byte(strconv.FormatInt(now.UnixMicro(), 10)), 0)
	}
	users := make([]string, 0, len(tp.referrers))
	for u := range tp.referrers {
		users = append(users, u)
	}
	since := make([]*time.Time, len(referral.PeriodNames))
	for i, per := range referral.PeriodNames {
		since[i] = referral.Period(per).Start(now)
	}
	for start := 0; start < len(users); start += rebuildChunk {
		part := users[start:min(len(users), start+rebuildChunk)]
		counts, err := postgres.NewSource(q).ReferrerCounts(ctx, b.Tenant, part, since)
		if err != nil {
			return err
		}
		for _, u := range part {
			c := counts[u] // nil: no referral at all
			for i, per := range referral.PeriodNames {
				var e referral.LeaderboardEntry
				if c != nil {
					e = c[i]
				}
				b.Rank(cache.LeaderboardKey(b.Tenant, per), u, e.Successful, e.Total)
			}
		}
	}
	return nil
}

// leaderSweep is how often the leaderboards follow the passing of time: referrals whose
// created_at left a period's window since the last sweep have their referrers recomputed.
const leaderSweep = 5 * time.Second

// sweep plans, for every known tenant with ranked referrers, the referrers whose referrals left
// a period's window between the tenant's leaderboard clock and now, read from the snapshot q.
// Its cost is the referrals that crossed a window's start, not the tenant.
func (p *Projector) sweep(ctx context.Context, q *sqlx.Tx, write func(*cache.Batch) error) error {
	if p.tenants == nil {
		if err := p.loadTenants(ctx, q); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(p.tenants))
	for t := range p.tenants {
		names = append(names, t)
	}
	clocks, err := p.cache.Clocks(ctx, names)
	if err != nil {
		return err
	}
	now := p.Now()
	for _, tenant := range names {
		clock, ok := clocks[tenant]
		if !ok || !now.After(clock) {
			continue // nothing ranked yet
		}
		tp := newTenantPlan()
		tp.clock = now
		for _, per := range referral.PeriodNames {
			from, to := referral.Period(per).Start(clock), referral.Period(per).Start(now)
			if from == nil {
				continue // all time: nothing leaves
			}
			users, err := postgres.NewSource(q).ReferrersCreatedBetween(ctx, tenant, *from, *to)
			if err != nil {
				return err
			}
			for _, u := range users {
				tp.referrers[u] = true
			}
		}
		b := cache.NewBatch(tenant)
		if err := p.rank(ctx, q, b, tp); err != nil {
			return err
		}
		if err := write(b); err != nil {
			return err
		}
	}
	return nil
}

// loadTenants learns every tenant with documents from the snapshot q.
func (p *Projector) loadTenants(ctx context.Context, q *sqlx.Tx) error {
	ts, err := postgres.NewSource(q).Tenants(ctx)
	if err != nil {
		return err
	}
	p.tenants = map[string]bool{}
	for _, t := range ts {
		p.tenants[t] = true
	}
	return nil
}

// switchBacklog is the largest window after which a rebuilt read model counts as caught up.
const switchBacklog = 1000

// rebuild discards every read model and recomputes them all from the snapshot q (snap, whose
// xmin is x), then positions the projector at that snapshot.
func (p *Projector) rebuild(ctx context.Context, q *sqlx.Tx, snap string, x uint64, dbID, why string) error {
	start := time.Now()
	p.log.Warn("projector_rebuild", "reason", why)
	now := p.Now()
	// Mark the position first (a position without a snapshot: an unfinished rebuild, redone by
	// the next round): the mark is fenced, so a deposed replica cannot wipe its successor's work.
	if _, err := p.cache.SavePosition(ctx, cache.Position{DatabaseID: dbID, Term: p.term, SavedAt: p.Now().UTC()}, ""); err != nil {
		return err
	}
	if err := p.cache.WipeAll(ctx); err != nil {
		return err
	}
	epoch := newToken()
	src := postgres.NewSource(q)
	tenants, err := src.Tenants(ctx)
	if err != nil {
		return err
	}
	seq, err := src.MaxSeq(ctx)
	if err != nil {
		return err
	}
	markAt, err := src.MarkAt(ctx, seq)
	if err != nil {
		return err
	}
	// Users are streamed from a cursor in chunks, every chunk built and written to Redis before
	// the next is read, so the rebuild holds one chunk in memory, not a tenant or the database.
	// All chunks come from the one snapshot q holds; nothing is served until the rounds after
	// the rebuild have caught up (Position.Building).
	seen := map[string]bool{}
	chunk := func(tenant string, users []string) error {
		tp := newTenantPlan()
		if !seen[tenant] { // tenant-wide documents once per tenant
			seen[tenant] = true
			tp.campaigns, tp.tiers, tp.affiliates = true, true, true
			tp.clock = now
			p.metrics.RebuildProgress.Set(float64(len(seen)-1) / float64(max(len(tenants), len(seen))))
		}
		tp.touch(users, cache.Sections...)
		for _, u := range users {
			tp.referrers[u] = true
		}
		tp.listsOf = users
		b, err := p.build(ctx, q, tenant, tp)
		if err != nil {
			return err
		}
		return p.cache.Apply(ctx, b, "", p.term)
	}
	p.metrics.RebuildProgress.Set(0)
	if err := src.StreamTenantUsers(ctx, rebuildChunk, chunk); err != nil {
		return err
	}
	for _, t := range tenants {
		if !seen[t] {
			if err := chunk(t, nil); err != nil {
				return err
			}
		}
	}
	if err := q.Commit(); err != nil {
		return fmt.Errorf("end snapshot: %w", err)
	}
	pos := cache.Position{DatabaseID: dbID, Snapshot: snap, HW: x, Seq: seq, MarkAt: markAt, Epoch: epoch, Building: true,
		SavedAt: p.Now().UTC(), Term: p.term}
	if _, err := p.cache.SavePosition(ctx, pos, ""); err != nil {
		return err
	}
	// Nothing is served yet: the round that installs the epoch announces it.
	p.tenants = seen
	p.metrics.RebuildProgress.Set(1)
	p.metrics.Rebuilds.Inc()
	p.log.Info("projector_rebuilt", "tenants", len(seen), "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// announce tells every replica's in-process cache which tenants changed. A lost announcement
// is harmless beyond the caches' short TTL, and replicas whose subscription breaks stop using
// their caches.
func (p *Projector) announce(ctx context.Context, payload string) {
	if payload == "" {
		return
	}
	if err := p.cache.Client().Publish(ctx, cache.InvalidationChannel(p.cfg.Deployment), payload).Err(); err != nil {
		p.log.Warn("projector_announce_failed", "err", err)
	}
}

func newToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
