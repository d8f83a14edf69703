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
	"strings"
	"syscall"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/config"
	"github.com/phoenix-referral/phoenix/pkg/console"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
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

// impressionPruneBatch bounds the impressions one pruning transaction deletes.
const impressionPruneBatch = 5000

// run is the whole program: it returns when ctx ends (after a graceful shutdown) or on a fatal
// error. listening, when not nil, receives the HTTP address once the server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, listening chan<- net.Addr) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve", "migrate":
	case "help":
		return runHelp(args, getenv, stdout)
	case "token":
		return runToken(args, getenv, stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q (see admin-gateway help)", cmd)
	}

	// Configuration and logging.
	cfg, set, err := loadConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr, "admin-gateway")
	if err := cfg.validate(log, cmd); err != nil {
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
	store.OutboxRetention = cfg.OutboxRetention
	store.SignalRetention = cfg.SignalRetention
	store.ImpressionTTL = cfg.ImpressionTTL
	sealer, err := secretSealer(ctx, cfg, store)
	if err != nil {
		return err
	}
	api := adminapi.New(store, verifier, adminapi.Config{
		ReferralURLTemplate:  cfg.ReferralURLTemplate,
		Attempts:             referral.AttemptLimit{Max: cfg.CodeAttemptLimit, Window: cfg.CodeAttemptWindow},
		Visitors:             referral.AttemptLimit{Max: cfg.VisitorLimit, Window: cfg.CodeAttemptWindow},
		AddressHashKey:       []byte(cfg.AddressHashKey),
		Sealer:               sealer,
		AllowPrivateWebhooks: cfg.WebhookAllowPrivate,
	}, log)

	// Background work: change notifications for the Query Gateway, and upkeep of expired
	// idempotency records, old attempt failures, risk signals and impressions past their
	// retention.
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
				// Risk signals past their retention (§12), in bounded batches.
				if _, err := store.PruneSignals(ctx, cfg.SignalRetention); err != nil && ctx.Err() == nil {
					log.Warn("prune_signals_failed", "err", err)
				}
				// Impressions past their retention (§15), in bounded batches.
				if n, err := store.PruneImpressions(ctx, cfg.ImpressionRetention, impressionPruneBatch); err != nil && ctx.Err() == nil {
					log.Warn("impression_prune_failed", "err", err)
				} else if n > 0 {
					log.Info("impressions_pruned", "deleted", n)
				}
				if n, err := store.PruneOutbox(ctx, time.Now().Add(-cfg.OutboxRetention)); err != nil && ctx.Err() == nil {
					log.Warn("outbox_prune_failed", "err", err)
				} else if n > 0 {
					log.Info("outbox_pruned", "events", n)
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
		// Nearly every request holds one connection; twice the pool keeps it busy while the rest
		// of a burst waits parked, not decoded.
		MaxInFlight: 2 * cfg.DBMaxConns,
	})
	api.Register(srv.Echo)
	srv.Registry.MustRegister(api.Collectors()...)
	if cfg.Console {
		// The development sign-in mints tokens with the HS256 secret, so it needs one and dev mode.
		var opts console.Options
		if cfg.Dev && cfg.JWTSecret != "" {
			opts.DevSecret = []byte(cfg.JWTSecret)
		}
		if err := console.Register(srv.Echo, opts); err != nil {
			return err
		}
	}

	// Webhook deliveries (§11): the dispatcher leases due deliveries, woken by the change
	// notifications every publishing write sends. It stops with the process: no new claims,
	// the attempts in flight finish and are recorded (what a shutdown timeout cuts short is
	// leased again by another replica when its lease ends).
	webhook.RegisterBacklog(srv.Registry, store, log)
	dctx, stopDispatch := context.WithCancel(ctx)
	defer stopDispatch()
	dispatched := make(chan struct{})
	if sealer == nil {
		close(dispatched)
	} else {
		d := webhook.NewDispatcher(store, sealer, webhook.Config{AllowPrivate: cfg.WebhookAllowPrivate},
			webhook.NewMetrics(srv.Registry), log)
		dsn, err := postgres.WithApplicationName(cfg.DatabaseURL, "admin-gateway-webhooks")
		if err != nil {
			return err
		}
		go webhook.Listen(dctx, dsn, postgres.ChangesChannel, d, log)
		go func() { d.Run(dctx); close(dispatched) }()
	}
	err = srv.Serve(ctx, cfg.HTTPAddr, cfg.DrainDelay, cfg.ShutdownTimeout, listening)
	stopDispatch()
	select {
	case <-dispatched:
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("webhook_dispatcher_stop_timeout")
	}
	return err
}

// secretSealer returns the sealer of PHOENIX_SECRET_KEY, or nil without one; without one the
// gateway refuses to start while webhook endpoints exist, since it could not sign for them.
func secretSealer(ctx context.Context, cfg *Config, store *postgres.Store) (*webhook.Sealer, error) {
	if cfg.SecretKey != "" {
		return webhook.NewSealer(cfg.SecretKey)
	}
	n, err := store.CountEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("%d webhook endpoints exist: set PHOENIX_SECRET_KEY to deliver to them", n)
	}
	return nil, nil
}

// runHelp prints the usage of a command to stdout and returns flag.ErrHelp (exit status 0);
// serve and migrate share their settings and so their usage.
func runHelp(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("help: unexpected arguments %v (usage: admin-gateway help [command])", args[1:])
	}
	topic := "serve"
	if len(args) == 1 {
		topic = args[0]
	}
	switch topic {
	case "serve", "migrate", "help":
		_, _, err := loadConfig([]string{"--help"}, getenv, stdout)
		return err
	case "token":
		return runToken([]string{"--help"}, getenv, stdout, io.Discard)
	}
	return fmt.Errorf("help: unknown command %q (commands: serve, migrate, token)", topic)
}

const tokenUsage = `admin-gateway token: print a development HS256 token, signed with $PHOENIX_JWT_SECRET
(or the public development secret when PHOENIX_DEV=true).

Usage:
  admin-gateway token --role R [--tenant T[,T...]] --sub S [--ttl 1h]

Tenants by role (SPEC §2): player, tenant_admin and service need exactly one --tenant;
client_admin needs one or more (comma-separated, the tenant_ids claim); super_admin needs none
(any tenant through ?tenant_id=) and takes at most one.`

// runToken prints a development token signed with the configured HS256 secret. It refuses a
// token the gateways would reject or its role could not use.
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin-gateway token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	role := fs.String("role", "", "role: player, tenant_admin, client_admin, super_admin or service")
	tenant := fs.String("tenant", "", "tenant id (tenant_id claim); for client_admin one or more separated by commas (tenant_ids claim)")
	sub := fs.String("sub", "", "user id (sub claim), 1-128 characters")
	ttl := fs.Duration("ttl", time.Hour, "lifetime, positive (e.g. 30m, 24h)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "%s\n\nFlags:\n", tokenUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("token: %w (see admin-gateway help token)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected arguments %v (see admin-gateway help token)", fs.Args())
	}
	p, err := tokenPrincipal(auth.Role(*role), *tenant, *sub)
	if err != nil {
		return err
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: --ttl must be positive, got %v", *ttl)
	}
	secret := getenv("PHOENIX_JWT_SECRET")
	if secret == "" && (getenv("PHOENIX_DEV") == "true" || getenv("PHOENIX_DEV") == "1") {
		secret = config.DevSecret
		fmt.Fprintln(stderr, "warning: signing with the public development secret (PHOENIX_DEV)")
	}
	if len(secret) < auth.MinSecretBytes {
		return fmt.Errorf("token: set PHOENIX_JWT_SECRET (at least %d bytes) or PHOENIX_DEV=true", auth.MinSecretBytes)
	}
	tok, err := auth.Sign([]byte(secret), p, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// tokenPrincipal is the principal of a token for role, the comma-separated tenants and sub,
// with the tenant claims each role needs (tokenUsage).
func tokenPrincipal(role auth.Role, tenants, sub string) (auth.Principal, error) {
	p := auth.Principal{UserID: sub, Role: role}
	ids := strings.FieldsFunc(tenants, func(r rune) bool { return r == ',' })
	for _, id := range ids {
		if !auth.ValidTenantID(id) {
			return p, fmt.Errorf("token: --tenant %q is not a tenant id (1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-')", id)
		}
	}
	switch role {
	case auth.RolePlayer, auth.RoleTenantAdmin, auth.RoleService:
		if len(ids) != 1 {
			return p, fmt.Errorf("token: role %s needs exactly one --tenant", role)
		}
		p.TenantID = ids[0]
	case auth.RoleClientAdmin:
		if len(ids) == 0 {
			return p, fmt.Errorf("token: role client_admin needs --tenant with the tenants it operates (comma-separated)")
		}
		p.TenantIDs = ids
	case auth.RoleSuperAdmin:
		if len(ids) > 1 {
			return p, fmt.Errorf("token: role super_admin takes at most one --tenant (none: any tenant through ?tenant_id=)")
		}
		if len(ids) == 1 {
			p.TenantID = ids[0]
		}
	default:
		return p, fmt.Errorf("token: --role must be player, tenant_admin, client_admin, super_admin or service, got %q", role)
	}
	if sub == "" || len(sub) > 128 {
		return p, fmt.Errorf("token: --sub must be 1-128 characters")
	}
	return p, nil
}
