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
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

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
}

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
	}
	if reg != nil {
		reg.MustRegister(m.Lag, m.Backlog, m.Applied, m.Rebuilds, m.Leader, m.Rounds)
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
				return conn, nil
			}
			conn.Close()
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
		if err != nil && ctx.Err() == nil {
			failures++
			if failures == 1 || failures%30 == 0 {
				p.log.Warn("projector_round_failed", "err", err, "failures", failures)
			}
		} else if err == nil {
			if failures > 0 {
				p.log.Info("projector_recovered", "after_failures", failures)
			}
			failures = 0
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
	n, err := postgres.PruneChanges(ctx, p.db, p.Now().Add(-p.cfg.Retention), pos.Snapshot)
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
	tx, snap, x, err := postgres.OpenSnapshot(ctx, p.db)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	dbID, err := postgres.DatabaseID(ctx, tx)
	if err != nil {
		return false, err
	}
	switch {
	case !ok || pos.Snapshot == "":
		return true, p.rebuild(ctx, tx, snap, x, dbID, "no position (new or wiped Redis)")
	case pos.DatabaseID != dbID:
		return true, p.rebuild(ctx, tx, snap, x, dbID, "position from another database")
	case p.Now().Sub(pos.SavedAt) > p.cfg.Retention/2:
		return true, p.rebuild(ctx, tx, snap, x, dbID, "position older than the change retention")
	}
	win, err := postgres.NewSource(tx).ChangeWindow(ctx, pos.Snapshot)
	if err != nil {
		return false, err
	}
	var batches []*cache.Batch
	if len(win.Changes) > 0 {
		batches, err = p.plan(ctx, tx, win.Changes)
		if err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("end snapshot: %w", err)
	}
	tenants := make([]string, 0, len(batches))
	for _, b := range batches {
		if err := p.cache.Apply(ctx, b, pos.Epoch); err != nil {
			return false, err
		}
		tenants = append(tenants, b.Tenant)
	}
	p.announce(ctx, strings.Join(tenants, "\n"))
	if len(win.Changes) > 0 || x != pos.HW || p.Now().Sub(pos.SavedAt) > time.Minute {
		next := cache.Position{DatabaseID: dbID, Snapshot: snap, HW: x, Seq: max(pos.Seq, win.MaxSeq),
			Epoch: pos.Epoch, SavedAt: p.Now().UTC()}
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
		p.log.Debug("projector_round", "rows", win.Rows, "entities", len(win.Changes), "tenants", len(batches),
			"age_ms", win.Age.Milliseconds(), "duration_ms", time.Since(start).Milliseconds())
	}
	p.metrics.Applied.Add(float64(win.Rows))
	p.metrics.Backlog.Set(float64(win.Rows))
	p.metrics.Lag.Set(win.Age.Seconds())
	if len(win.Changes) > 0 {
		p.metrics.Rounds.Observe(time.Since(start).Seconds())
	}
	return false, nil
}

// tenantPlan collects what one tenant's changes touch.
type tenantPlan struct {
	campaigns, tiers, leaderboard, affiliates bool
	codes                                     map[string]bool
	sections                                  map[string]map[string]bool // section → users
	owners                                    map[string]cache.Owners    // entity key → new owners
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
		// Both sides: "me" of the referee, "refs" of the referrer, and the referrer's affiliate
		// counters (converted_referrals).
		return []string{cache.SectionMe, cache.SectionReferrals, cache.SectionReferralStats, cache.SectionAffiliate}
	case "reward":
		return []string{cache.SectionRewards, cache.SectionRewardStats}
	case "commission":
		return []string{cache.SectionCommissions}
	case "affiliate":
		return []string{cache.SectionAffiliate}
	}
	return nil
}

// plan maps the changed entities to the documents they affect and recomputes those documents
// from the snapshot q, returning one batch per tenant.
func (p *Projector) plan(ctx context.Context, q *sqlx.Tx, changes []postgres.Change) ([]*cache.Batch, error) {
	byTenant := map[string]map[string][]string{} // tenant → entity → ids
	oldOwners := map[string][]string{}           // tenant → codes' previous owners, from the changes
	for _, c := range changes {
		m := byTenant[c.TenantID]
		if m == nil {
			m = map[string][]string{}
			byTenant[c.TenantID] = m
		}
		m[c.Entity] = append(m[c.Entity], c.EntityID)
		if c.Entity == "code" && c.OldOwner != nil {
			oldOwners[c.TenantID] = append(oldOwners[c.TenantID], *c.OldOwner)
		}
	}
	var out []*cache.Batch
	for tenant, entities := range byTenant {
		tp := &tenantPlan{codes: map[string]bool{}, sections: map[string]map[string]bool{}, owners: map[string]cache.Owners{}}
		// A code's previous owner lost it: the change says who, also after a rebuild.
		tp.touch(oldOwners[tenant], sectionsOf("code")...)
		for entity, ids := range entities {
			switch entity {
			case "campaign":
				tp.campaigns = true
				continue
			case "tier":
				tp.tiers = true
				continue
			case "referral":
				// Leaderboards count referrals; downline pages show converted_referrals.
				tp.leaderboard, tp.affiliates = true, true
			case "affiliate":
				tp.affiliates = true
			}
			secs := sectionsOf(entity)
			if secs == nil {
				continue // commission rules and hierarchy policies are not served
			}
			cur, err := postgres.NewSource(q).Owners(ctx, tenant, entity, ids)
			if err != nil {
				return nil, err
			}
			// Entities whose owner can change (a code's owner, an affiliate's user) remember
			// who they touched last time, so the previous owner's documents are recomputed too.
			remember := entity == "code" || entity == "affiliate"
			var prev map[string]cache.Owners
			if remember {
				keys := make([]string, len(ids))
				for i, id := range ids {
					keys[i] = entity + ":" + id
				}
				if prev, err = p.cache.LoadOwners(ctx, tenant, keys); err != nil {
					return nil, err
				}
			}
			for _, id := range ids {
				o := cur[id]
				tp.touch(o.Users, secs...)
				if entity == "code" {
					for _, c := range o.Codes {
						tp.codes[c] = true
					}
				}
				if remember {
					old := prev[entity+":"+id]
					tp.touch(old.Users, secs...)
					for _, c := range old.Codes {
						if entity == "code" {
							tp.codes[c] = true
						}
					}
					tp.owners[entity+":"+id] = cache.Owners{Users: o.Users, Codes: o.Codes}
				}
			}
		}
		b, err := p.build(ctx, q, tenant, tp)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
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
	if tp.leaderboard {
		now := p.Now()
		for _, period := range referral.PeriodNames {
			doc, err := LeaderboardDoc(ctx, q, tenant, period, now)
			if err != nil {
				return nil, err
			}
			b.Set(cache.LeaderboardKey(tenant, period), doc, LeaderboardTTL)
		}
	}
	if tp.affiliates {
		b.Set(cache.AffiliateGenKey(tenant), []byte(newToken()), 0)
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
	for k, o := range tp.owners {
		b.SetOwners(k, o)
	}
	return b, nil
}

// rebuild discards every read model and recomputes them all from the snapshot q (snap, whose
// xmin is x), then positions the projector at that snapshot.
func (p *Projector) rebuild(ctx context.Context, q *sqlx.Tx, snap string, x uint64, dbID, why string) error {
	start := time.Now()
	p.log.Warn("projector_rebuild", "reason", why)
	if err := p.cache.WipeAll(ctx); err != nil {
		return err
	}
	epoch := newToken()
	users, err := postgres.NewSource(q).TenantUsers(ctx)
	if err != nil {
		return err
	}
	tenants, err := postgres.NewSource(q).Tenants(ctx)
	if err != nil {
		return err
	}
	for t := range users {
		if !slices.Contains(tenants, t) {
			tenants = append(tenants, t)
		}
	}
	seq, err := postgres.NewSource(q).MaxSeq(ctx)
	if err != nil {
		return err
	}
	// Each tenant is rebuilt in chunks of users, every chunk written to Redis as soon as it is
	// built, so the rebuild holds one chunk in memory, not the whole database. All chunks are read
	// from the one snapshot q holds; reads keep falling through to PostgreSQL until the position
	// below is saved.
	for _, tenant := range tenants {
		us := users[tenant]
		for start := 0; start == 0 || start < len(us); start += rebuildChunk {
			end := min(start+rebuildChunk, len(us))
			first := start == 0 // tenant-wide documents once per tenant
			tp := &tenantPlan{campaigns: first, tiers: first, leaderboard: first, affiliates: first,
				codes: map[string]bool{}, sections: map[string]map[string]bool{}, owners: map[string]cache.Owners{}}
			tp.touch(us[start:end], cache.Sections...)
			b, err := p.build(ctx, q, tenant, tp)
			if err != nil {
				return err
			}
			if err := p.cache.Apply(ctx, b, epoch); err != nil {
				return err
			}
		}
	}
	if err := q.Commit(); err != nil {
		return fmt.Errorf("end snapshot: %w", err)
	}
	pos := cache.Position{DatabaseID: dbID, Snapshot: snap, HW: x, Seq: seq, Epoch: epoch, SavedAt: p.Now().UTC()}
	if _, err := p.cache.SavePosition(ctx, pos, ""); err != nil {
		return err
	}
	p.announce(ctx, InvalidateAll)
	p.metrics.Rebuilds.Inc()
	p.log.Info("projector_rebuilt", "tenants", len(tenants), "duration_ms", time.Since(start).Milliseconds())
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
