package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// DevSecret is the HS256 secret PHOENIX_DEV=true uses when none is configured. Never use it in
// production: anyone can mint tokens with it.
const DevSecret = "phoenix-development-secret-not-for-production"

// Common is the configuration both gateways share.
type Common struct {
	HTTPAddr        string
	DatabaseURL     string
	LogLevel        string
	Dev             bool
	JWTSecret       string
	JWTPublicKey    string
	JWTJWKSURL      string
	JWTIssuer       string
	JWTAudience     string
	DBMaxConns      int
	RequestTimeout  time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	// TrustedProxies is the PHOENIX_TRUSTED_PROXIES text: a comma-separated CIDR list.
	TrustedProxies string
	// Proxies is TrustedProxies parsed by Validate.
	Proxies []netip.Prefix
	// CodeAttemptLimit and CodeAttemptWindow are the failed code-attempt limit of SPEC §4.3,
	// which apply-code (admin) and validate (query) both enforce.
	CodeAttemptLimit  int
	CodeAttemptWindow time.Duration
	// VisitorLimit is the in-memory limit of SPEC §4.3 on a visitor's failed attempts per client
	// address across every tenant, over CodeAttemptWindow: anonymous validation (query) and
	// impressions of invalid codes (admin, §15) count against it.
	VisitorLimit int
}

// RegisterCommon defines the shared settings on s with the binary's default listen address.
func (c *Common) RegisterCommon(s *Set, defaultAddr string) {
	s.String(&c.HTTPAddr, "http-addr", "PHOENIX_HTTP_ADDR", defaultAddr, "HTTP listen address")
	s.String(&c.DatabaseURL, "database-url", "PHOENIX_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/phoenix?sslmode=disable", "PostgreSQL URL")
	s.String(&c.LogLevel, "log-level", "PHOENIX_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.Bool(&c.Dev, "dev", "PHOENIX_DEV", false, "development mode: use a fixed, public JWT secret when none is set")
	s.Secret(&c.JWTSecret, "jwt-secret", "PHOENIX_JWT_SECRET", "HS256 secret, at least 32 bytes")
	s.String(&c.JWTPublicKey, "jwt-public-key-file", "PHOENIX_JWT_PUBLIC_KEY_FILE", "", "PEM public key file (RSA → RS256, EC → ES256, Ed25519 → EdDSA)")
	s.String(&c.JWTJWKSURL, "jwt-jwks-url", "PHOENIX_JWT_JWKS_URL", "", "JWKS URL, refreshed in the background")
	s.String(&c.JWTIssuer, "jwt-issuer", "PHOENIX_JWT_ISSUER", "", "required iss claim, when set")
	s.String(&c.JWTAudience, "jwt-audience", "PHOENIX_JWT_AUDIENCE", "", "required aud claim, when set")
	s.Int(&c.DBMaxConns, "db-max-conns", "PHOENIX_DB_MAX_CONNS", 20, "maximum PostgreSQL connections")
	s.Duration(&c.RequestTimeout, "request-timeout", "PHOENIX_REQUEST_TIMEOUT", 30*time.Second, "bound on each request's work")
	s.Duration(&c.DrainDelay, "drain-delay", "PHOENIX_DRAIN_DELAY", 0, "after SIGTERM, how long /readyz answers 503 before the server stops accepting")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "PHOENIX_SHUTDOWN_TIMEOUT", 20*time.Second, "how long in-flight requests may take to finish on shutdown")
	s.String(&c.TrustedProxies, "trusted-proxies", "PHOENIX_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed (the client address is the right-most untrusted entry)")
	s.Int(&c.CodeAttemptLimit, "code-attempt-limit", "PHOENIX_CODE_ATTEMPT_LIMIT", 20, "failed apply/validate attempts allowed per player (and, for anonymous validation, per client address) per window (0 disables)")
	s.Duration(&c.CodeAttemptWindow, "code-attempt-window", "PHOENIX_CODE_ATTEMPT_WINDOW", 10*time.Minute, "window of the failed code-attempt limit")
	s.Int(&c.VisitorLimit, "visitor-limit", "PHOENIX_VISITOR_LIMIT", 200, "failed visitor attempts (anonymous validations, impressions of invalid codes) per client address per window, across every tenant (0 disables)")
}

// ParseProxies parses a comma-separated list of CIDRs (a bare address is a /32 or /128).
func ParseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("PHOENIX_TRUSTED_PROXIES: %q is not a CIDR or an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("PHOENIX_TRUSTED_PROXIES: %q is not a CIDR or an address", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Validate checks the shared settings and applies PHOENIX_DEV.
func (c *Common) Validate(log *slog.Logger) error {
	var errs []string
	if c.JWTSecret == "" && c.JWTPublicKey == "" && c.JWTJWKSURL == "" {
		if !c.Dev {
			errs = append(errs, "no JWT key: set PHOENIX_JWT_SECRET, PHOENIX_JWT_PUBLIC_KEY_FILE or PHOENIX_JWT_JWKS_URL (or PHOENIX_DEV=true for development)")
		} else {
			c.JWTSecret = DevSecret
			log.Warn("DEVELOPMENT MODE: using the fixed, public development JWT secret; anyone can mint tokens. Never run this in production.")
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, "PHOENIX_JWT_SECRET must be at least 32 bytes")
	}
	if c.DBMaxConns < 1 {
		errs = append(errs, "PHOENIX_DB_MAX_CONNS must be at least 1")
	}
	if c.CodeAttemptLimit < 0 || c.CodeAttemptWindow <= 0 {
		errs = append(errs, "PHOENIX_CODE_ATTEMPT_LIMIT must be ≥ 0 and PHOENIX_CODE_ATTEMPT_WINDOW > 0")
	}
	if c.VisitorLimit < 0 {
		errs = append(errs, "PHOENIX_VISITOR_LIMIT must be ≥ 0")
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err.Error())
	}
	proxies, err := ParseProxies(c.TrustedProxies)
	if err != nil {
		errs = append(errs, err.Error())
	}
	c.Proxies = proxies
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Logger returns the JSON logger of a binary at the configured level (info when the level is
// invalid: Validate reports that).
func (c *Common) Logger(w io.Writer, app string) *slog.Logger {
	level, _ := ParseLevel(c.LogLevel)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("app", app)
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("PHOENIX_LOG_LEVEL: %q is not a level (debug, info, warn, error)", s)
	}
	return l, nil
}
