package main

import (
	"io"
	"log/slog"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/config"
)

// Config is the Admin Gateway's configuration.
type Config struct {
	config.Common
	AutoMigrate         bool
	ReferralURLTemplate string
	CodeAttemptLimit    int
	CodeAttemptWindow   time.Duration
}

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
	s.Int(&c.CodeAttemptLimit, "code-attempt-limit", "PHOENIX_CODE_ATTEMPT_LIMIT", 20, "failed apply/validate attempts allowed per player per window (0 disables)")
	s.Duration(&c.CodeAttemptWindow, "code-attempt-window", "PHOENIX_CODE_ATTEMPT_WINDOW", 10*time.Minute, "window of the failed code-attempt limit")
	if err := s.Parse(args); err != nil {
		return nil, s, err
	}
	return &c, s, nil
}

func (c *Config) validate(log *slog.Logger) error { return c.Common.Validate(log) }
