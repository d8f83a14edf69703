package main

import (
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/config"
)

// Config is the Query Gateway's configuration.
type Config struct {
	config.Common
	RedisURL            string
	RedisClusterAddrs   string
	RedisTimeout        time.Duration
	ReferralURLTemplate string
	FallbackConcurrency int
	CatchUpInterval     time.Duration
	ChangeRetention     time.Duration
	LocalCacheTTL       time.Duration
	Deployment          string
}

const usage = `query-gateway: the read side of Phoenix Referral, served from Redis read models.

Usage:
  query-gateway [flags]`

// loadConfig reads the configuration from args and the environment. The usage text goes to
// stdout when asked for (--help); a flag error is returned for the caller to report.
func loadConfig(args []string, getenv func(string) string, stdout io.Writer) (*Config, *config.Set, error) {
	var c Config
	s := config.New("query-gateway", getenv, usage, stdout)
	c.RegisterCommon(s, ":8081")
	s.String(&c.RedisURL, "redis-url", "PHOENIX_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (single node)")
	s.String(&c.RedisClusterAddrs, "redis-cluster-addrs", "PHOENIX_REDIS_CLUSTER_ADDRS", "", "comma-separated Redis Cluster seed addresses (instead of --redis-url)")
	s.Duration(&c.RedisTimeout, "redis-timeout", "PHOENIX_REDIS_TIMEOUT", 250*time.Millisecond, "Redis dial/read/write timeout (reads fall back to PostgreSQL past it)")
	s.String(&c.ReferralURLTemplate, "referral-url-template", "PHOENIX_REFERRAL_URL_TEMPLATE", "", "referral link template, e.g. https://play.example.com/join?ref={code}")
	s.Int(&c.FallbackConcurrency, "fallback-concurrency", "PHOENIX_FALLBACK_CONCURRENCY", 16, "concurrent PostgreSQL reads on behalf of a missing or unavailable Redis")
	s.Duration(&c.CatchUpInterval, "catch-up-interval", "PHOENIX_CATCH_UP_INTERVAL", time.Second, "catch-up timer covering missed notifications")
	s.Duration(&c.LocalCacheTTL, "local-cache-ttl", "PHOENIX_LOCAL_CACHE_TTL", 500*time.Millisecond, "longest an answer is kept in process (dropped at once when its tenant changes); 0 disables")
	s.Duration(&c.ChangeRetention, "change-retention", "PHOENIX_CHANGE_RETENTION", 7*24*time.Hour, "how long applied changes are kept in the change log")
	s.String(&c.Deployment, "deployment", "PHOENIX_DEPLOYMENT", "", "names this deployment's invalidation channel on Redis, apart from other deployments sharing the server (default: derived from the database's identity)")
	if err := s.Parse(args); err != nil {
		return nil, s, err
	}
	return &c, s, nil
}

func (c *Config) validate(log *slog.Logger) error {
	if err := c.Common.Validate(log); err != nil {
		return err
	}
	if c.FallbackConcurrency < 1 {
		return errors.New("PHOENIX_FALLBACK_CONCURRENCY must be at least 1")
	}
	if c.LocalCacheTTL < 0 || c.LocalCacheTTL > time.Second {
		return errors.New("PHOENIX_LOCAL_CACHE_TTL must be from 0 to 1s (SPEC §7 freshness)")
	}
	if c.Deployment != "" && !deploymentName.MatchString(c.Deployment) {
		return errors.New("PHOENIX_DEPLOYMENT must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
	}
	if c.RedisTimeout <= 0 || c.CatchUpInterval <= 0 || c.ChangeRetention < time.Hour {
		return errors.New("PHOENIX_REDIS_TIMEOUT and PHOENIX_CATCH_UP_INTERVAL must be > 0, PHOENIX_CHANGE_RETENTION ≥ 1h")
	}
	return nil
}

// deploymentName is what PHOENIX_DEPLOYMENT may be: it becomes part of a Redis channel name.
var deploymentName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// clusterAddrs splits PHOENIX_REDIS_CLUSTER_ADDRS.
func (c *Config) clusterAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.RedisClusterAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
