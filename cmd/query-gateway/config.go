package main

import (
	"io"
	"log/slog"
	"strings"

	"github.com/phoenix-referral/phoenix/pkg/config"
)

// Config is the Query Gateway's configuration.
type Config struct {
	config.Common
	RedisClusterAddrs string
}

const usage = `query-gateway: the read side of Phoenix Referral, served from Redis read models.

Usage:
  query-gateway [flags]`

func loadConfig(args []string, getenv func(string) string, out io.Writer) (*Config, *config.Set, error) {
	var c Config
	s := config.New("query-gateway", getenv, usage, out)
	c.RegisterCommon(s, ":8081")
	s.String(&c.RedisClusterAddrs, "redis-cluster-addrs", "PHOENIX_REDIS_CLUSTER_ADDRS", "", "comma-separated Redis Cluster seed addresses (instead of --redis-url)")
	if err := s.Parse(args); err != nil {
		return nil, s, err
	}
	return &c, s, nil
}

func (c *Config) validate(log *slog.Logger) error { return c.Common.Validate(log) }

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
