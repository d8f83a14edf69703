// Command query-gateway serves the player-facing reads of Phoenix Referral from Redis read
// models that PostgreSQL change notifications keep current.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/projector"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "query-gateway:", err)
		os.Exit(1)
	}
}

// run is the whole program; it returns after a graceful shutdown when ctx ends, or on a fatal
// error. --help prints to stdout, logs go to stderr. listening, when not nil, receives the HTTP
// address once the server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, listening chan<- net.Addr) error {
	// Configuration and logging.
	cfg, set, err := loadConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr, "query-gateway")
	if err := cfg.validate(log); err != nil {
		return err
	}
	log.Info("config", set.Values()...)

	// Database.
	db, err := postgres.Open(ctx, cfg.DatabaseURL, "query-gateway", cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()

	// Redis.
	rdb, err := newRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := cache.New(rdb)
	// The invalidation channel is named per deployment (SPEC §7).
	deployment := cfg.Deployment
	if deployment == "" {
		if deployment, err = postgres.DefaultDeployment(ctx, db); err != nil {
			return err
		}
	}
	log.Info("deployment", "name", deployment, "channel", cache.InvalidationChannel(deployment))

	// Services.
	verifier, err := auth.NewVerifierFromConfig(ctx, auth.Settings{
		Secret: cfg.JWTSecret, PublicKeyFile: cfg.JWTPublicKey, JWKSURL: cfg.JWTJWKSURL,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
	}, log)
	if err != nil {
		return err
	}

	// HTTP.
	srv := web.NewServer(log, web.Options{
		Name:           "query-gateway",
		RequestTimeout: cfg.RequestTimeout,
		TrustedProxies: cfg.Proxies,
		Ready: func(ctx context.Context) error {
			// Redis being down degrades reads to PostgreSQL; PostgreSQL is required.
			if err := db.PingContext(ctx); err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			return nil
		},
	})
	api := queryapi.New(store, db, verifier, queryapi.Config{
		ReferralURLTemplate: cfg.ReferralURLTemplate,
		Attempts:            referral.AttemptLimit{Max: cfg.CodeAttemptLimit, Window: cfg.CodeAttemptWindow},
		Visitors:            referral.AttemptLimit{Max: cfg.VisitorLimit, Window: cfg.CodeAttemptWindow},
		FallbackConcurrency: cfg.FallbackConcurrency,
		LocalTTL:            cfg.LocalCacheTTL,
		Deployment:          deployment,
	}, log, srv.Registry)
	api.Register(srv.Echo)
	if err := web.ServeOpenAPI(srv.Echo, queryapi.OpenAPI); err != nil {
		return err
	}

	// Projector: catches up at start, on notifications and on a timer, while it holds the lock.
	// It and the in-process cache's watcher run until the HTTP server has drained; a projector
	// that cannot run stops the server, which would otherwise serve stale answers.
	proj := projector.New(db, store, log, projector.NewMetrics(srv.Registry), projector.Config{
		DSN: cfg.DatabaseURL, Interval: cfg.CatchUpInterval, Retention: cfg.ChangeRetention,
		Deployment: deployment,
	})
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	var projErr error
	background.Go(func() {
		if projErr = proj.Run(bg); projErr != nil {
			stopServing()
		}
	})
	// The in-process cache follows the projector's announcements.
	background.Go(func() { api.Watch(bg, rdb) })

	err = srv.Serve(serveCtx, cfg.HTTPAddr, cfg.DrainDelay, cfg.ShutdownTimeout, listening)
	// Shutdown order: HTTP (drained above), then the projector, then Redis and PostgreSQL.
	stopBackground()
	background.Wait()
	return errors.Join(err, projErr)
}

// newRedis connects to a single node (PHOENIX_REDIS_URL) or a cluster (PHOENIX_REDIS_CLUSTER_ADDRS)
// with short timeouts, so that an unreachable Redis degrades reads instead of hanging them.
func newRedis(cfg *Config) (redis.UniversalClient, error) {
	t := cfg.RedisTimeout
	if addrs := cfg.clusterAddrs(); len(addrs) > 0 {
		// The cluster client retries a failed command itself (up to MaxRedirects times, each
		// through a node client with its own MaxRetries): one cluster-level retry over node
		// clients that do not retry costs an unreachable cluster two timeouts, as a single node.
		// One redirect still follows a MOVED or ASK (the slot map is reloaded on it).
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: t, ReadTimeout: t,
			WriteTimeout: t, PoolTimeout: t, MaxRetries: -1, MaxRedirects: 1}), nil
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("PHOENIX_REDIS_URL: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout, opt.MaxRetries = t, t, t, t, 1
	opt.PoolSize = max(opt.PoolSize, 64)
	return redis.NewClient(opt), nil
}
