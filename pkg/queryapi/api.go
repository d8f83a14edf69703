// Package queryapi is the Query Gateway's HTTP surface: the player-facing reads of SPEC §6,
// served from the Redis read models and read through to PostgreSQL when a document is missing
// or Redis is unavailable.
package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/projector"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// Config configures the API.
type Config struct {
	// ReferralURLTemplate, when set, adds "referral_url" to code objects.
	ReferralURLTemplate string
	// Attempts is the failed code-attempt limit of SPEC §4.3.
	Attempts referral.AttemptLimit
	// Visitors limits visitors' failed validations per client address across every tenant,
	// in memory (SPEC §4.3; Max 0 disables it).
	Visitors referral.AttemptLimit
	// VisitorAddresses bounds the addresses the visitor limit tracks (default 50,000).
	VisitorAddresses int
	// FallbackConcurrency bounds concurrent PostgreSQL reads on behalf of Redis (default 16).
	FallbackConcurrency int
	// FallbackWait is how long a read waits for a fallback slot before answering 503 (default 1 s).
	FallbackWait time.Duration
	// RedisRetry is how long Redis is bypassed after it failed (default 1 s).
	RedisRetry time.Duration
	// LocalTTL is how long an answer may be kept in process (0: no in-process cache). Entries
	// are dropped as soon as the projector announces a write to their tenant; the TTL only
	// bounds staleness if an announcement is lost without the subscription failing.
	LocalTTL time.Duration
	// LocalMax bounds the number of answers kept in process (default 50,000).
	LocalMax int
	// LocalBytes bounds the memory of the answers kept in process, keys and bookkeeping
	// included (default 32 MiB).
	LocalBytes int
	// Deployment names the channel of the projector's announcements the in-process cache
	// follows (cache.InvalidationChannel).
	Deployment string
}

// API serves the Query Gateway's routes.
type API struct {
	cache    *cache.Store
	db       *sqlx.DB
	store    *postgres.Store
	verifier *auth.Verifier
	cfg      Config
	log      *slog.Logger
	sem      chan struct{}
	flight   singleflight.Group
	// redisDownUntil is a unix-nano deadline before which Redis is not asked (after a failure),
	// so an unreachable Redis costs one timeout per RedisRetry, not one per request.
	redisDownUntil atomic.Int64
	fallbacks      *prometheus.CounterVec
	local          *localCache
	visitors       *web.VisitorLimit
	// impressionTotals keeps the callers' impression counts for a second (impressions.go).
	impressionTotals impressionTotals
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// New returns the API. reg receives its metrics (may be nil).
func New(store *cache.Store, db *sqlx.DB, verifier *auth.Verifier, cfg Config, log *slog.Logger, reg prometheus.Registerer) *API {
	if cfg.FallbackConcurrency <= 0 {
		cfg.FallbackConcurrency = 16
	}
	if cfg.FallbackWait <= 0 {
		cfg.FallbackWait = time.Second
	}
	if cfg.RedisRetry <= 0 {
		cfg.RedisRetry = time.Second
	}
	if cfg.VisitorAddresses <= 0 {
		cfg.VisitorAddresses = 50_000
	}
	a := &API{cache: store, db: db, store: postgres.NewStore(db), verifier: verifier, cfg: cfg, log: log,
		sem: make(chan struct{}, cfg.FallbackConcurrency), Now: time.Now,
		visitors: web.NewVisitorLimit(cfg.Visitors, cfg.VisitorAddresses),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "phoenix_query_fallback_reads_total",
			Help: "Reads answered from PostgreSQL instead of Redis, by reason (miss, redis_error)."}, []string{"reason"}),
	}
	if cfg.LocalTTL > 0 {
		if cfg.LocalMax <= 0 {
			cfg.LocalMax = 50_000
		}
		if cfg.LocalBytes <= 0 {
			cfg.LocalBytes = 32 << 20
		}
		a.local = newLocalCache(cfg.LocalTTL, cfg.LocalMax, cfg.LocalBytes)
	}
	if reg != nil {
		reg.MustRegister(a.fallbacks)
	}
	return a
}

var errUnavailable = referral.Errorf(referral.EUnavailable, "service temporarily unavailable; retry shortly")

// redisUp reports whether Redis may be asked now.
func (a *API) redisUp() bool { return time.Now().UnixNano() >= a.redisDownUntil.Load() }

// redisFailed records a Redis failure.
func (a *API) redisFailed(err error) {
	if a.redisDownUntil.Load() < time.Now().UnixNano() {
		a.log.Warn("redis_unavailable", "err", err)
	}
	a.redisDownUntil.Store(time.Now().Add(a.cfg.RedisRetry).UnixNano())
}

// fallback runs a PostgreSQL read on behalf of Redis: deduplicated per key (concurrent readers of
// one document share one query) and bounded by a semaphore, so a Redis outage or a cold cache
// cannot stampede PostgreSQL; a read that cannot get a slot in time answers 503.
func (a *API) fallback(ctx context.Context, key, reason string, fn func(ctx context.Context) (any, error)) (any, error) {
	return a.share(ctx, key, func(ctx context.Context) (any, error) {
		wait, cancel := context.WithTimeout(ctx, a.cfg.FallbackWait)
		defer cancel()
		select {
		case a.sem <- struct{}{}:
		case <-wait.Done():
			return nil, errUnavailable
		}
		defer func() { <-a.sem }()
		a.fallbacks.WithLabelValues(reason).Inc()
		// Detached from the first caller, so that its cancellation does not fail the others.
		rctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel2()
		v, err := fn(rctx)
		if err != nil {
			var de *referral.Error
			if errors.As(err, &de) {
				return nil, err
			}
			a.log.Warn("fallback_read_failed", "key", key, "err", err)
			return nil, errUnavailable
		}
		return v, nil
	})
}

// sections returns the user's sections (JSON documents) from Redis. When any is missing, all of
// them are read from PostgreSQL in one snapshot — so that one answer never mixes a projected
// document with a fresher one read through — and the missing ones are filled back.
func (a *API) sections(ctx context.Context, tenant, user string, secs ...string) ([][]byte, error) {
	out := make([][]byte, len(secs))
	reason := "redis_error"
	if a.redisUp() {
		vals, err := a.cache.Sections(ctx, tenant, user, secs...)
		if err != nil {
			a.redisFailed(err)
		} else {
			out, reason = vals, "miss"
		}
	}
	var missing []string
	for i, v := range out {
		if v == nil {
			missing = append(missing, secs[i])
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	key := "u\x00" + tenant + "\x00" + user + "\x00" + strings.Join(secs, ",")
	v, err := a.fallback(ctx, key, reason, func(ctx context.Context) (any, error) {
		epoch := a.epoch(ctx, tenant)
		var docs map[string]map[string][]byte
		err := postgres.InSnapshot(ctx, a.db, func(q sqlx.QueryerContext) error {
			var err error
			docs, err = projector.UserSections(ctx, q, tenant, []string{user}, secs)
			return err
		})
		if err != nil {
			return nil, err
		}
		if epoch != "" {
			for _, sec := range missing {
				if err := a.cache.Fill(ctx, tenant, epoch, cache.UserKey(tenant, user), sec, docs[sec][user], 0); err != nil {
					a.redisFailed(err)
					break
				}
			}
		}
		return docs, nil
	})
	if err != nil {
		return nil, err
	}
	docs := v.(map[string]map[string][]byte)
	for i, sec := range secs {
		out[i] = docs[sec][user]
	}
	return out, nil
}

// fromPostgres reads user documents straight from PostgreSQL, in one snapshot, deduplicated and
// bounded like every fallback read, without filling Redis: for documents the projector keeps in
// structures a fill cannot rebuild (sorted sets), read while Redis cannot answer.
func (a *API) fromPostgres(ctx context.Context, tenant, user string, secs ...string) ([][]byte, error) {
	reason := "miss"
	if !a.redisUp() {
		reason = "redis_error"
	}
	key := "p\x00" + tenant + "\x00" + user + "\x00" + strings.Join(secs, ",")
	v, err := a.fallback(ctx, key, reason, func(ctx context.Context) (any, error) {
		var docs map[string]map[string][]byte
		err := postgres.InSnapshot(ctx, a.db, func(q sqlx.QueryerContext) error {
			var err error
			docs, err = projector.UserSections(ctx, q, tenant, []string{user}, secs)
			return err
		})
		return docs, err
	})
	if err != nil {
		return nil, err
	}
	docs := v.(map[string]map[string][]byte)
	out := make([][]byte, len(secs))
	for i, sec := range secs {
		out[i] = docs[sec][user]
	}
	return out, nil
}

// epoch returns the tenant's epoch for a fill, "" when Redis is down or the tenant has none.
func (a *API) epoch(ctx context.Context, tenant string) string {
	if !a.redisUp() {
		return ""
	}
	e, err := a.cache.Epoch(ctx, tenant)
	if err != nil {
		a.redisFailed(err)
		return ""
	}
	return e
}

// doc returns a tenant-scoped string document from Redis, loading it from PostgreSQL on a miss
// (and filling it back with ttl, 0 = until replaced).
func (a *API) doc(ctx context.Context, tenant, key string, ttl time.Duration, load func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error)) ([]byte, error) {
	reason := "redis_error"
	if a.redisUp() {
		b, ok, err := a.cache.Document(ctx, tenant, key)
		if err != nil {
			a.redisFailed(err)
		} else if ok {
			return b, nil
		} else {
			reason = "miss"
		}
	}
	v, err := a.fallback(ctx, "d\x00"+key, reason, func(ctx context.Context) (any, error) {
		epoch := a.epoch(ctx, tenant)
		b, err := load(ctx, a.db)
		if err != nil {
			return nil, err
		}
		if epoch != "" {
			if err := a.cache.Fill(ctx, tenant, epoch, key, "", b, ttl); err != nil {
				a.redisFailed(err)
			}
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// generational returns a document cached under the tenant's affiliate generation (downlines):
// any affiliate or referral change in the tenant moves the generation, so a cached copy is never
// older than the last projected change. Without a generation (wiped Redis) it is read straight
// from PostgreSQL.
func (a *API) generational(ctx context.Context, tenant, name string, load func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error)) ([]byte, error) {
	gen := ""
	reason := "redis_error"
	if a.redisUp() {
		g, ok, err := a.cache.Get(ctx, cache.AffiliateGenKey(tenant))
		if err != nil {
			a.redisFailed(err)
		} else if ok {
			gen = string(g)
			key := cache.TenantKey(tenant, "g", gen, name)
			b, ok, err := a.cache.Get(ctx, key)
			if err != nil {
				a.redisFailed(err)
			} else if ok {
				return b, nil
			}
			reason = "miss"
		} else {
			reason = "miss"
		}
	}
	v, err := a.fallback(ctx, "g\x00"+tenant+"\x00"+gen+"\x00"+name, reason, func(ctx context.Context) (any, error) {
		b, err := load(ctx, a.db)
		if err != nil {
			return nil, err
		}
		if gen != "" {
			if err := a.cache.Client().Set(ctx, cache.TenantKey(tenant, "g", gen, name), b, 5*time.Minute).Err(); err != nil {
				a.redisFailed(err)
			}
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// send answers 200 with v as JSON, or 304 when the client's If-None-Match holds the body's ETag.
func send(c echo.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return sendRaw(c, b)
}

// sendRaw answers 200 with an encoded JSON body, or 304 per If-None-Match.
func sendRaw(c echo.Context, b []byte) error {
	c.Set(bodyKey, b)
	etag := `"` + strconv.FormatUint(xxhash.Sum64(b), 36) + `"`
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, b)
}

// etagMatch reports whether an If-None-Match header lists etag (weak comparison, or "*").
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// decode unmarshals a stored document; a corrupt document is an internal error.
func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode read model: %w", err)
	}
	return nil
}
