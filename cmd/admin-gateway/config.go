package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/config"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Config is the Admin Gateway's configuration.
type Config struct {
	config.Common
	AutoMigrate         bool
	ReferralURLTemplate string
	// AddressHashKey keys referral.AddressHash (PHOENIX_ADDRESS_HASH_KEY): risk signals and
	// impressions store client addresses only under it.
	AddressHashKey string
	// OutboxRetention is how long outbound events are kept (PHOENIX_OUTBOX_RETENTION).
	OutboxRetention time.Duration
	// WebhookAllowPrivate lets webhooks reach loopback, private and link-local destinations and
	// use http (PHOENIX_WEBHOOK_ALLOW_PRIVATE: development and tests).
	WebhookAllowPrivate bool
	// SecretKey seals webhook secrets and the stored answers that show them
	// (PHOENIX_SECRET_KEY); without it no endpoint can be created.
	SecretKey string
	// ImpressionTTL is how old an impression apply-code still links; ImpressionRetention how long
	// impressions are kept (SPEC §15).
	ImpressionTTL       time.Duration
	ImpressionRetention time.Duration
	// SignalRetention is how long risk signals are kept and count (PHOENIX_SIGNAL_RETENTION).
	SignalRetention time.Duration
	// Console serves the back-office console at /console/ (PHOENIX_CONSOLE).
	Console bool
}

// devSecretKey is the webhook secret key PHOENIX_DEV=true uses when none is configured.
const devSecretKey = "phoenix-development-secret-key-not-for-production"

// devAddressHashKey is the address hash key PHOENIX_DEV=true uses when none is configured.
const devAddressHashKey = "phoenix-development-address-key-not-for-production"

const usage = `admin-gateway: the write side of Phoenix Referral.

Usage:
  admin-gateway [flags]            serve the Admin Gateway
  admin-gateway migrate [flags]    apply database migrations and exit
  admin-gateway token --role R [--tenant T] --sub S [--ttl 1h]
                                   print a development HS256 token
  admin-gateway help [command]     print the usage of serve, migrate or token`

func loadConfig(args []string, getenv func(string) string, out io.Writer) (*Config, *config.Set, error) {
	var c Config
	s := config.New("admin-gateway", getenv, usage, out)
	c.RegisterCommon(s, ":8080")
	s.Bool(&c.AutoMigrate, "auto-migrate", "PHOENIX_AUTO_MIGRATE", false, "apply migrations at start")
	s.String(&c.ReferralURLTemplate, "referral-url-template", "PHOENIX_REFERRAL_URL_TEMPLATE", "", "referral link template, e.g. https://play.example.com/join?ref={code}")
	s.Bool(&c.Console, "console", "PHOENIX_CONSOLE", true, "serve the back-office console at /console/ (with PHOENIX_DEV=true it offers a development sign-in)")
	s.Secret(&c.AddressHashKey, "address-hash-key", "PHOENIX_ADDRESS_HASH_KEY", "key of the hash under which client addresses are stored (risk signals, impressions), at least 32 bytes; required outside development")
	s.Duration(&c.OutboxRetention, "outbox-retention", "PHOENIX_OUTBOX_RETENTION", outbox.DefaultRetention, "how long outbound events are kept for the feed and replays")
	s.Bool(&c.WebhookAllowPrivate, "webhook-allow-private", "PHOENIX_WEBHOOK_ALLOW_PRIVATE", false, "let webhooks reach loopback, private and link-local addresses and use http (development and tests only)")
	s.Secret(&c.SecretKey, "secret-key", "PHOENIX_SECRET_KEY", "key that encrypts webhook secrets, at least 32 bytes; required when webhook endpoints exist outside development")
	s.Duration(&c.ImpressionTTL, "impression-ttl", "PHOENIX_IMPRESSION_TTL", referral.DefaultImpressionTTL, "how old an impression apply-code still links to the referral (at least 1m)")
	s.Duration(&c.ImpressionRetention, "impression-retention", "PHOENIX_IMPRESSION_RETENTION", referral.DefaultImpressionRetention, "how long impressions are kept (at least PHOENIX_IMPRESSION_TTL); their counters are kept")
	s.Duration(&c.SignalRetention, "signal-retention", "PHOENIX_SIGNAL_RETENTION", referral.DefaultSignalRetention, "how long risk signals (devices and address hashes of players) are kept and matched, e.g. 2160h")
	if err := s.Parse(args); err != nil {
		return nil, s, err
	}
	return &c, s, nil
}

// validate checks the configuration of command cmd (serve or migrate) and applies PHOENIX_DEV.
// Serving needs PHOENIX_ADDRESS_HASH_KEY outside development: without it no client address could
// be stored safely. Migrating stores none.
func (c *Config) validate(log *slog.Logger, cmd string) error {
	err := c.Common.Validate(log)
	switch {
	case c.AddressHashKey == "" && c.Dev:
		c.AddressHashKey = devAddressHashKey
		log.Warn("DEVELOPMENT MODE: using the fixed, public address hash key; stored address hashes can be reversed by anyone. Never run this in production.")
	case c.AddressHashKey == "" && cmd == "serve":
		err = errors.Join(err, fmt.Errorf("PHOENIX_ADDRESS_HASH_KEY is required (at least %d bytes; or PHOENIX_DEV=true for development)", referral.MinAddressHashKey))
	case c.AddressHashKey != "" && len(c.AddressHashKey) < referral.MinAddressHashKey:
		err = errors.Join(err, fmt.Errorf("PHOENIX_ADDRESS_HASH_KEY must be at least %d bytes", referral.MinAddressHashKey))
	}
	switch {
	case c.SecretKey == "" && c.Dev:
		c.SecretKey = devSecretKey
		log.Warn("DEVELOPMENT MODE: using the fixed, public webhook secret key; stored webhook secrets can be read by anyone with the database. Never run this in production.")
	case c.SecretKey != "" && len(c.SecretKey) < minSecretKey:
		err = errors.Join(err, fmt.Errorf("PHOENIX_SECRET_KEY must be at least %d bytes", minSecretKey))
	}
	if c.OutboxRetention < time.Hour {
		err = errors.Join(err, errors.New("PHOENIX_OUTBOX_RETENTION must be at least 1h"))
	}
	if c.WebhookAllowPrivate {
		log.Warn("PHOENIX_WEBHOOK_ALLOW_PRIVATE: webhooks may reach loopback, private and link-local addresses over http. Development and tests only.")
	}
	if c.SignalRetention <= 0 {
		err = errors.Join(err, errors.New("PHOENIX_SIGNAL_RETENTION must be positive"))
	}
	if c.ImpressionTTL < time.Minute || c.ImpressionRetention < c.ImpressionTTL {
		err = errors.Join(err, errors.New("PHOENIX_IMPRESSION_TTL must be at least 1m and PHOENIX_IMPRESSION_RETENTION at least PHOENIX_IMPRESSION_TTL"))
	}
	return err
}

// minSecretKey is the shortest PHOENIX_SECRET_KEY accepted.
const minSecretKey = 32
