package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// scaleSet is the scale section's data set: a database of its own holding one tenant per size
// (ascending; the last is the big tenant) and a small tenant, with what was measured on it.
type scaleSet struct {
	db     *sqlx.DB
	dbName string
	sizes  []*pgtest.BigTenantData
	small  *pgtest.BigTenantData
	info   []string
	costs  []scaleCost
}

// big is the largest tenant: the one the freshness, hot-read, backlog and rebuild workloads use.
func (s *scaleSet) big() *pgtest.BigTenantData { return s.sizes[len(s.sizes)-1] }

// parseSizes reads the --scale-sizes list.
func parseSizes(list string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			return nil, fmt.Errorf("--scale-sizes %q: each size is a number of referrals ≥ 100", list)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes), nil
}

// sizeLabel names a tenant size: 10k, 1M, 2500.
func sizeLabel(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// scaleDSN is the scale database's URL.
func (b *Bench) scaleDSN() string {
	return b.cfg.PGBase + "/" + b.sc.dbName + "?sslmode=disable"
}

// scaleSeed recreates the scale database, migrates it, seeds one tenant per size and the small
// tenant (pgtest.SeedBigTenant: COPY, triggers off, ANALYZE) and flushes the bench's Redis
// database, so the Query Gateway started next rebuilds everything from the tables.
func (b *Bench) scaleSeed(ctx context.Context, sizes []int) error {
	s := b.sc
	admin, err := sqlx.ConnectContext(ctx, "postgres", b.cfg.PGBase+"/postgres?sslmode=disable")
	if err != nil {
		return err
	}
	defer admin.Close()
	b.logf("scale: recreating database %s", s.dbName)
	for _, q := range []string{`DROP DATABASE IF EXISTS %q WITH (FORCE)`, `CREATE DATABASE %q`} {
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(q, s.dbName)); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, b.cfg.AdminBin, "migrate")
	cmd.Env = append(os.Environ(), b.gatewayEnvOn(b.cfg.AdminPort, b.scaleDSN())...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("admin-gateway migrate: %w: %s", err, out)
	}
	if s.db, err = sqlx.ConnectContext(ctx, "postgres", b.scaleDSN()+"&application_name=phoenix-bench"); err != nil {
		return err
	}
	s.db.SetMaxOpenConns(8)
	t0 := time.Now()
	for _, n := range sizes {
		d, err := pgtest.SeedBigTenant(ctx, s.db, pgtest.BigTenant{Tenant: "scale-" + sizeLabel(n), Referrals: n})
		if err != nil {
			return fmt.Errorf("seed %d referrals: %w", n, err)
		}
		s.sizes = append(s.sizes, d)
		b.logf("scale: seeded %s: %d referrals, %d affiliates (depth %d), %d rewards in %.1fs",
			d.Tenant, d.Referrals, d.Referrers, d.MaxDepth, d.Rows["rewards"], d.Took.Seconds())
	}
	if s.small, err = pgtest.SeedBigTenant(ctx, s.db, pgtest.BigTenant{Tenant: "scale-small", Referrals: 1000}); err != nil {
		return fmt.Errorf("seed the small tenant: %w", err)
	}
	big := s.big()
	s.info = append(s.info,
		fmt.Sprintf("Database `%s` of its own: one tenant per size (%s referrals), each referral a distinct player referred by one of referrals/10 affiliates that form one tree (3 children per node; the %s tenant's %d affiliates are %d levels deep) and own an unlimited code; statuses 40%% converted, 5%% verified, 5%% rejected, 50%% pending over 90 days; a referrer and a referee reward per successful referral (%d reward rows in the %s tenant); one deposit campaign, 3 tiers, one commission rule, an active 3-level policy.",
			s.dbName, b.cfg.ScaleSizes, sizeLabel(big.Referrals), big.Referrers, big.MaxDepth+1, big.Rows["rewards"], sizeLabel(big.Referrals)),
		fmt.Sprintf("A small tenant `%s` of the same shape with %d referrals.", s.small.Tenant, s.small.Referrals),
		fmt.Sprintf("Seeding took %.1f s (pgtest.SeedBigTenant: COPY, triggers off, ANALYZE).", time.Since(t0).Seconds()))
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr, DB: b.cfg.RedisDB})
	defer rdb.Close()
	return rdb.FlushDB(ctx).Err()
}

// scaleDrop stops the scale section's gateways and drops its database (the disk is shared).
func (b *Bench) scaleDrop() {
	for _, p := range []*Proc{b.qa, b.admin} {
		p.Stop()
	}
	if b.sc.db != nil {
		b.sc.db.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := sqlx.ConnectContext(ctx, "postgres", b.cfg.PGBase+"/postgres?sslmode=disable")
	if err != nil {
		b.logf("scale: drop %s: %v", b.sc.dbName, err)
		return
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, b.sc.dbName)); err != nil {
		b.logf("scale: drop %s: %v", b.sc.dbName, err)
	}
}
