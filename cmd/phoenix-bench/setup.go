package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
)

// machineInfo describes the machine the numbers come from.
func machineInfo(ctx context.Context, cfg Config) [][2]string {
	cpu, mem := "?", "?"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "MemTotal:") {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(sc.Text(), "MemTotal:")), "%d", &kb)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
		f.Close()
	}
	pgv := "?"
	if db, err := sqlx.ConnectContext(ctx, "postgres", cfg.PGBase+"/postgres?sslmode=disable"); err == nil {
		_ = db.GetContext(ctx, &pgv, "SHOW server_version")
		db.Close()
	}
	rv := "?"
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if strings.HasPrefix(l, "redis_version:") {
				rv = strings.TrimSpace(strings.TrimPrefix(l, "redis_version:"))
			}
		}
	}
	rdb.Close()
	kernel := "?"
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		kernel = strings.TrimSpace(string(out))
	}
	mode := "full"
	if cfg.Quick {
		mode = "quick (`--quick`)"
	}
	return [][2]string{
		{"date (UTC)", time.Now().UTC().Format("2006-01-02 15:04 MST")},
		{"run", mode},
		{"CPUs (nproc)", fmt.Sprint(runtime.NumCPU())},
		{"CPU model", cpu},
		{"memory", mem},
		{"kernel", kernel},
		{"Go", runtime.Version()},
		{"PostgreSQL", pgv},
		{"Redis", rv},
		{"load average at start (1/5/15 min)", loadAvg()},
	}
}

// setup recreates the bench database, migrates it and flushes the bench's Redis database.
func (b *Bench) setup(ctx context.Context) error {
	admin, err := sqlx.ConnectContext(ctx, "postgres", b.cfg.PGBase+"/postgres?sslmode=disable")
	if err != nil {
		return err
	}
	defer admin.Close()
	if b.cfg.Only == "" { // a section run alone brings its own database
		b.logf("recreating database %s", b.cfg.DBName)
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, b.cfg.DBName)); err != nil {
			return err
		}
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %q`, b.cfg.DBName)); err != nil {
			return err
		}
	}
	if !b.cfg.RedisShared {
		logs, _ := filepath.Abs(b.cfg.LogDir)
		b.redis = &RedisServer{Port: b.cfg.RedisPort, Dir: filepath.Join(os.TempDir(), fmt.Sprintf("phoenix-bench-redis-%d", b.cfg.RedisPort)),
			Log: filepath.Join(logs, "redis.log")}
		if err := os.MkdirAll(logs, 0o755); err != nil {
			return err
		}
		b.logf("starting a private redis-server on 127.0.0.1:%d", b.cfg.RedisPort)
		if err := b.redis.Start(ctx); err != nil {
			return err
		}
		b.cfg.RedisAddr, b.cfg.RedisDB = fmt.Sprintf("127.0.0.1:%d", b.cfg.RedisPort), 0
	}
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr, DB: b.cfg.RedisDB})
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("redis flushdb %d: %w", b.cfg.RedisDB, err)
	}
	if b.cfg.Only != "" {
		return nil
	}
	b.logf("flushed Redis database %d; migrating", b.cfg.RedisDB)
	cmd := exec.CommandContext(ctx, b.cfg.AdminBin, "migrate")
	cmd.Env = append(os.Environ(), b.gatewayEnv(b.cfg.AdminPort)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("admin-gateway migrate: %w: %s", err, out)
	}
	b.db, err = sqlx.ConnectContext(ctx, "postgres", b.dsn()+"&application_name=phoenix-bench")
	if err != nil {
		return err
	}
	b.db.SetMaxOpenConns(80)
	b.db.SetMaxIdleConns(80)
	return nil
}

// loadAvg reads /proc/loadavg: other work on the machine shows here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " / ")
}
