// Command admin-gateway serves the write side of Phoenix Referral: campaigns, codes, apply-code,
// affiliates, tiers, commission rules, the hierarchy, and event ingestion, over PostgreSQL.
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
	"syscall"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/config"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "admin-gateway:", err)
		os.Exit(1)
	}
}

// run is the whole program: it returns when ctx ends (after a graceful shutdown) or on a fatal
// error. listening, when not nil, receives the HTTP address once the server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, listening chan<- net.Addr) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "token" || args[0] == "serve") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "token" {
		return runToken(args, getenv, stdout, stderr)
	}

	// Configuration and logging.
	cfg, set, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr, "admin-gateway")
	if err := cfg.validate(log); err != nil {
		return err
	}
	log.Info("config", set.Values()...)

	// Database.
	db, err := postgres.Open(ctx, cfg.DatabaseURL, "admin-gateway", cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	if cmd == "migrate" || cfg.AutoMigrate {
		if err := postgres.Migrate(ctx, db.DB, log); err != nil {
			return err
		}
		if cmd == "migrate" {
			log.Info("migrations_done")
			return nil
		}
	}

	// Services.
	verifier, err := auth.NewVerifierFromConfig(ctx, auth.Settings{
		Secret: cfg.JWTSecret, PublicKeyFile: cfg.JWTPublicKey, JWKSURL: cfg.JWTJWKSURL,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
	}, log)
	if err != nil {
		return err
	}
	store := postgres.NewStore(db)
	api := adminapi.New(store, verifier, adminapi.Config{
		ReferralURLTemplate: cfg.ReferralURLTemplate,
		Attempts:            postgres.AttemptLimit{Max: cfg.CodeAttemptLimit, Window: cfg.CodeAttemptWindow},
	}, log)

	// Background work: change notifications for the Query Gateway, and upkeep of expired
	// idempotency records and old attempt failures.
	go store.RunNotifier(ctx, log)
	go func() {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := store.Purge(ctx, cfg.CodeAttemptWindow); err != nil && ctx.Err() == nil {
					log.Warn("purge_failed", "err", err)
				}
			}
		}
	}()

	// HTTP.
	srv := web.NewServer(log, web.Options{
		Name:             "admin-gateway",
		MethodNotAllowed: true,
		Ready:            db.PingContext,
		RequestTimeout:   cfg.RequestTimeout,
		TrustedProxies:   cfg.Proxies,
	})
	api.Register(srv.Echo)
	return srv.Serve(ctx, cfg.HTTPAddr, cfg.DrainDelay, cfg.ShutdownTimeout, listening)
}

// runToken prints a development token signed with the configured HS256 secret.
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin-gateway token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "role: player, tenant_admin, client_admin, super_admin or service")
	tenant := fs.String("tenant", "", "tenant id (tenant_id claim); several separated by commas give tenant_ids")
	sub := fs.String("sub", "", "user id (sub claim)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := getenv("PHOENIX_JWT_SECRET")
	if secret == "" && (getenv("PHOENIX_DEV") == "true" || getenv("PHOENIX_DEV") == "1") {
		secret = config.DevSecret
		fmt.Fprintln(stderr, "warning: signing with the public development secret (PHOENIX_DEV)")
	}
	if len(secret) < auth.MinSecretBytes {
		return fmt.Errorf("token: set PHOENIX_JWT_SECRET (at least %d bytes) or PHOENIX_DEV=true", auth.MinSecretBytes)
	}
	p := auth.Principal{UserID: *sub, Role: auth.Role(*role)}
	if tenants := splitComma(*tenant); len(tenants) == 1 {
		p.TenantID = tenants[0]
	} else if len(tenants) > 1 {
		p.TenantIDs = tenants
	}
	switch p.Role {
	case auth.RolePlayer, auth.RoleTenantAdmin, auth.RoleClientAdmin, auth.RoleSuperAdmin, auth.RoleService:
	default:
		return fmt.Errorf("token: --role must be player, tenant_admin, client_admin, super_admin or service")
	}
	if p.UserID == "" || len(p.UserID) > 128 {
		return fmt.Errorf("token: --sub must be 1-128 characters")
	}
	tok, err := auth.Sign([]byte(secret), p, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
