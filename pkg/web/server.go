package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Options configure a gateway's Echo instance.
type Options struct {
	// Name is the binary's name, used as the metrics namespace label.
	Name string
	// MethodNotAllowed answers 405 for a known path under another method (else 404).
	MethodNotAllowed bool
	// Ready reports whether dependencies are reachable; /readyz answers 503 when it errors.
	Ready func(ctx context.Context) error
	// RequestTimeout bounds each request's context (0: no bound).
	RequestTimeout time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For names the client (none: the TCP peer
	// is the client).
	TrustedProxies []netip.Prefix
	// MaxInFlight bounds how many requests run their handlers at once (0: no bound); the rest
	// wait their turn within RequestTimeout.
	MaxInFlight int
}

// Server is an Echo instance with Phoenix's middleware, health, readiness and metrics.
type Server struct {
	Echo     *echo.Echo
	Registry *prometheus.Registry
	log      *slog.Logger
	draining atomic.Bool
	ready    func(ctx context.Context) error
}

// RequestID returns the request's id (also sent as X-Request-Id).
func RequestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// NewServer builds the Echo instance: request ids, recovery, access logs, per-route metrics, the
// 1 MiB body limit, the error envelope, and /healthz, /readyz and /metrics.
func NewServer(log *slog.Logger, opts Options) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	errorsTotal := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phoenix_http_errors_total",
		Help: "Error answers by route and error code (e.g. RATE_LIMITED, IDEMPOTENCY_KEY_REUSED).",
	}, []string{"route", "code"})
	replays := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phoenix_idempotent_replays_total",
		Help: "Answers replayed for a repeated Idempotency-Key, by route.",
	}, []string{"route"})
	e.HTTPErrorHandler = ErrorHandler(log, opts.MethodNotAllowed, errorsTotal)
	// Echo's default IP extractor trusts X-Forwarded-For; believe it only from trusted proxies.
	e.IPExtractor = clientIP(opts.TrustedProxies)
	s := &Server{Echo: e, Registry: prometheus.NewRegistry(), log: log, ready: opts.Ready}
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	requests := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "phoenix_http_request_duration_seconds",
		Help:    "HTTP request latency by route, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method", "status"})
	s.Registry.MustRegister(requests, errorsTotal, replays)

	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: newRequestID,
		// Accept a caller's id only when it is short and plain, so logs stay clean.
		Skipper: func(echo.Context) bool { return false },
	}))
	e.Use(sanitizeRequestID)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic", "request_id", RequestID(c), "err", err, "stack", string(stack))
			return referral.Errorf(referral.EInternal, "internal error")
		},
	}))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route := routeOf(c)
			status := c.Response().Status
			if c.Response().Header().Get(HeaderIdempotentReplay) == "true" {
				replays.WithLabelValues(route).Inc()
			}
			d := time.Since(start)
			method := methodLabel(c.Request().Method)
			requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
			if route != "/healthz" && route != "/readyz" && route != "/metrics" {
				log.Info("http_request", "request_id", RequestID(c), "method", method,
					"route", route, "path", c.Request().URL.Path, "status", status,
					"duration_ms", float64(d.Microseconds())/1000, "remote_ip", c.RealIP())
			}
			return nil
		}
	})
	e.Use(refuseOptions, limitBody)
	if opts.RequestTimeout > 0 {
		e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: opts.RequestTimeout}))
	}
	if opts.MaxInFlight > 0 {
		waiting := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "phoenix_http_requests_waiting",
			Help: "Requests waiting for one of the MaxInFlight handler slots.",
		})
		s.Registry.MustRegister(waiting)
		e.Use(admit(opts.MaxInFlight, waiting))
	}

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, apishape.Health{Status: "ok"})
	})
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})))
	return s
}

func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, apishape.Health{Status: "draining"})
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			s.log.Warn("not_ready", "err", err)
			return c.JSON(http.StatusServiceUnavailable, apishape.Health{Status: "unavailable"})
		}
	}
	return c.JSON(http.StatusOK, apishape.Health{Status: "ready"})
}

// Serve listens on addr and serves until ctx ends; then readiness flips to 503, the server waits
// drainDelay (so load balancers notice) and shuts down, letting in-flight requests finish within
// shutdownTimeout. ready, when not nil, receives the bound address once listening.
func (s *Server) Serve(ctx context.Context, addr string, drainDelay, shutdownTimeout time.Duration, ready chan<- net.Addr) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.Echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("http_listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("http_draining", "delay", drainDelay.String())
	if drainDelay > 0 {
		time.Sleep(drainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("http_stopped")
	return nil
}

// routeOf names the request's route for metrics: its registered template, never the raw path
// (which would give every id its own series); a path no route matches is "unmatched".
func routeOf(c echo.Context) string {
	if r := c.Path(); r != "" {
		return r
	}
	return "unmatched"
}

// methodLabel names the request's method for metrics and logs. A client may send any token as
// a method, so everything outside the standard set is one label.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// limitBody enforces MaxBodyBytes: a declared Content-Length past it is refused at once, and a
// body of unknown length (chunked) is cut by http.MaxBytesReader, whose error ReadBody answers
// as BODY_TOO_LARGE like any other oversized body.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > MaxBodyBytes {
			return echo.ErrStatusRequestEntityTooLarge
		}
		r.Body = http.MaxBytesReader(c.Response().Writer, r.Body, MaxBodyBytes)
		return next(c)
	}
}

// refuseOptions answers OPTIONS on a known path as a method the path does not support (405 on
// the Admin Gateway, 404 on the Query Gateway): Echo would otherwise answer it 204 for every
// path, as if the gateways took part in CORS preflights. A route registered for OPTIONS is
// matched by the router and passes.
func refuseOptions(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodOptions && c.Get(echo.ContextKeyHeaderAllow) != nil {
			return echo.ErrMethodNotAllowed
		}
		return next(c)
	}
}
