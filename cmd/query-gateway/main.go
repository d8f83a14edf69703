// Command query-gateway serves the player-facing reads of Phoenix Referral from Redis read
// models that PostgreSQL change notifications keep current.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/config"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "query-gateway:", err)
		os.Exit(1)
	}
}

// run is the whole program; it returns after a graceful shutdown when ctx ends, or on a fatal
// error. listening, when not nil, receives the HTTP address once the server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, listening chan<- net.Addr) error {
	// Configuration and logging.
	cfg, set, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	level, _ := config.ParseLevel(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})).With("app", "query-gateway")
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

	// HTTP.
	srv := web.NewServer(log, web.Options{
		Name:           "query-gateway",
		RequestTimeout: cfg.RequestTimeout,
		Ready: func(ctx context.Context) error {
			if err := db.PingContext(ctx); err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		},
	})
	return srv.Serve(ctx, cfg.HTTPAddr, cfg.DrainDelay, cfg.ShutdownTimeout, listening)
}

// newRedis connects to a single node (PHOENIX_REDIS_URL) or a cluster (PHOENIX_REDIS_CLUSTER_ADDRS).
func newRedis(cfg *Config) (redis.UniversalClient, error) {
	if addrs := cfg.clusterAddrs(); len(addrs) > 0 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}), nil
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("PHOENIX_REDIS_URL: %w", err)
	}
	return redis.NewClient(opt), nil
}
