// Command phoenix-bench measures Phoenix Referral end to end on one machine: it starts both
// gateways against a database and a Redis logical database of its own, seeds a realistic data
// set, drives the read, write, apply-code, ingestion, hierarchy and freshness workloads next to
// baselines measured in the same run, injects faults under load, and writes docs/BENCHMARKS.md
// with SVG charts. docs/benchmarking.md describes every workload and how to read the report.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
)

// Config is the bench's settings (flags).
type Config struct {
	Quick         bool
	AdminBin      string
	QueryBin      string
	PGBase        string // server URL without the database name
	DBName        string
	RedisAddr     string
	RedisDB       int
	RedisShared   bool
	RedisPort     int
	AdminPort     int
	QueryPort     int
	Query2Port    int
	Tenants       int
	Players       int
	Affiliates    int
	TreeNodes     int
	MoveNodes     int
	History       int
	Workers       int
	Duration      time.Duration
	FreshRate     int
	Faults        string // comma list: redis,listener,projector,postgres
	PGRestart     bool
	Out           string
	ChartDir      string
	LogDir        string
	PGCluster     string
	RedisRestart  string
	EventBatch    int
	EventWorkers  int
	ContendApply  int
	ContendLimit  int
	RedisTimeout  string
	ProjectionCap time.Duration
	Only          string // "scale": only the scale section
	Scale         bool
	ScaleSizes    string // comma list of tenant sizes (referrals)
	ScaleBacklog  int
	ScaleWrites   int
	ScaleWait     time.Duration
	ScaleRSSCap   int // MiB
}

func main() {
	cfg := Config{}
	flag.BoolVar(&cfg.Quick, "quick", false, "small data set and short workloads (≤ 3 minutes)")
	flag.StringVar(&cfg.AdminBin, "admin-bin", "bin/admin-gateway", "admin-gateway binary")
	flag.StringVar(&cfg.QueryBin, "query-bin", "bin/query-gateway", "query-gateway binary")
	flag.StringVar(&cfg.PGBase, "pg", "postgres://postgres@127.0.0.1:5432", "PostgreSQL server URL (no database)")
	flag.StringVar(&cfg.DBName, "db", "phoenix_bench", "database the bench drops and recreates")
	flag.BoolVar(&cfg.RedisShared, "redis-shared", false, "use the shared Redis server (--redis, --redis-db) instead of a private redis-server; the Redis fault then shuts the shared server down and restarts it with --redis-restart")
	flag.IntVar(&cfg.RedisPort, "redis-port", 16479, "port of the bench's private redis-server")
	flag.StringVar(&cfg.RedisAddr, "redis", "127.0.0.1:6379", "shared Redis address (with --redis-shared)")
	flag.IntVar(&cfg.RedisDB, "redis-db", 9, "logical database the bench flushes and uses on the shared Redis (with --redis-shared)")
	flag.IntVar(&cfg.AdminPort, "admin-port", 18480, "Admin Gateway port")
	flag.IntVar(&cfg.QueryPort, "query-port", 18481, "first Query Gateway port")
	flag.IntVar(&cfg.Query2Port, "query2-port", 18482, "second Query Gateway port")
	flag.IntVar(&cfg.Tenants, "tenants", 4, "tenants (the first holds the full data set, the others a tenth of it)")
	flag.IntVar(&cfg.Players, "players", 0, "players in the main tenant (default 100000, quick 10000)")
	flag.IntVar(&cfg.Affiliates, "affiliates", 0, "affiliates in the main tenant (default 10000, quick 2000)")
	flag.IntVar(&cfg.TreeNodes, "tree-nodes", 0, "affiliates in the hierarchy tenant's tree (default 100000, quick 12000)")
	flag.IntVar(&cfg.MoveNodes, "move-nodes", 10000, "size of the subtree that is moved")
	flag.IntVar(&cfg.History, "history", 0, "historical events in the main tenant (default 100000, quick 10000)")
	flag.IntVar(&cfg.Workers, "workers", 64, "connections of the read workloads")
	flag.DurationVar(&cfg.Duration, "duration", 0, "length of each timed workload (default 10s, quick 3s)")
	flag.IntVar(&cfg.FreshRate, "fresh-rate", 200, "writes per second of the freshness workload")
	flag.StringVar(&cfg.Faults, "faults", "redis,listener,projector", "faults to inject (redis, listener, projector); Redis always goes last")
	flag.BoolVar(&cfg.PGRestart, "pg-restart", false, "also restart PostgreSQL under load (affects every user of the server)")
	flag.StringVar(&cfg.Out, "out", "docs/BENCHMARKS.md", "report file")
	flag.StringVar(&cfg.ChartDir, "charts", "docs/bench", "directory of the SVG charts")
	flag.StringVar(&cfg.LogDir, "logs", "run/bench", "directory of the gateways' logs")
	flag.StringVar(&cfg.PGCluster, "pg-cluster", "15 main", "pg_ctlcluster version and name")
	flag.StringVar(&cfg.RedisRestart, "redis-restart", `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`, "shell command that restarts Redis after the Redis fault")
	flag.IntVar(&cfg.EventBatch, "event-batch", 100, "events per /v1/events/batch request")
	flag.IntVar(&cfg.EventWorkers, "event-workers", 8, "concurrent batch requests")
	flag.IntVar(&cfg.ContendApply, "contend-applies", 2000, "concurrent applies against one code")
	flag.IntVar(&cfg.ContendLimit, "contend-limit", 500, "usage_limit of the contended code")
	flag.StringVar(&cfg.RedisTimeout, "redis-timeout", "", "PHOENIX_REDIS_TIMEOUT of the query gateways (default: the gateway's own in quick runs, 5s in full runs, whose initial rebuild writes one large MULTI/EXEC per tenant)")
	flag.DurationVar(&cfg.ProjectionCap, "projection-wait", 8*time.Minute, "how long to wait for the first projection of the seeded database")
	flag.StringVar(&cfg.Only, "only", "", `run one section alone: "scale" (the million-referral tenant; report in docs/BENCHMARKS-scale.md unless --out is given)`)
	flag.BoolVar(&cfg.Scale, "scale", true, "run the scale section (the million-referral tenant) after the faults")
	flag.StringVar(&cfg.ScaleSizes, "scale-sizes", "", "tenant sizes of the scale section in referrals, comma-separated; the largest is the one the freshness, hot-read, backlog and rebuild workloads use (default 10000,100000,1000000, quick 2000,10000,20000)")
	flag.IntVar(&cfg.ScaleBacklog, "scale-backlog", 0, "changes in the scale section's backlog (default 1000000, quick 20000; at most the largest size)")
	flag.IntVar(&cfg.ScaleWrites, "scale-writes", 5, "isolated writes per change kind and tenant size in the projection-cost workload")
	flag.DurationVar(&cfg.ScaleWait, "scale-wait", 3*time.Minute, "how long the scale section waits for the backlog to catch up (and for the projector to settle)")
	flag.IntVar(&cfg.ScaleRSSCap, "scale-rss-cap", 1024, "MiB of query gateway RSS at which the scale section stops waiting for the backlog (the machine is shared)")
	flag.Parse()
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if cfg.Only == "scale" && !outSet {
		cfg.Out = "docs/BENCHMARKS-scale.md"
	}
	cfg.defaults()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &Bench{cfg: cfg, started: time.Now()}
	err := b.Main(ctx)
	b.Shutdown()
	if err != nil {
		fmt.Fprintln(os.Stderr, "phoenix-bench:", err)
		os.Exit(1)
	}
}

func (c *Config) defaults() {
	pick := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	pick(&c.Players, 100000, 10000)
	pick(&c.Affiliates, 10000, 2000)
	pick(&c.TreeNodes, 100000, 12000)
	pick(&c.History, 100000, 10000)
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
		if c.Quick {
			c.Duration = 3 * time.Second
		}
	}
	c.MoveNodes = min(c.MoveNodes, c.TreeNodes-2)
	if c.RedisTimeout == "" && !c.Quick {
		c.RedisTimeout = "5s"
	}
	if c.PGRestart && c.Quick {
		c.PGRestart = false
	}
	if c.ScaleSizes == "" {
		c.ScaleSizes = "10000,100000,1000000"
		if c.Quick {
			c.ScaleSizes = "2000,10000,20000"
		}
	}
	pick(&c.ScaleBacklog, 1_000_000, 20_000)
}

// Bench holds the running stack and everything measured.
type Bench struct {
	cfg     Config
	started time.Time
	secret  []byte
	hashKey []byte // the Admin Gateway's PHOENIX_ADDRESS_HASH_KEY
	db      *sqlx.DB
	admin   *Proc
	qa, qb  *Proc
	redis   *RedisServer
	http    *Client
	data    *Dataset
	tokMu   sync.Mutex
	tokens  map[string]string
	runID   string

	sc          *scaleSet // the scale section's data set and costs (nil until it runs)
	rebuildPeak int64
	rebuildTime time.Duration

	machine  [][2]string
	results  []*Result
	memRows  []MemRow
	targets  []Target
	faults   []FaultRow
	notes    []string
	seedInfo []string
}

// MemRow is the gateways' memory after one workload.
type MemRow struct {
	Workload             string
	AdminHWM, QueryHWM   int64
	AdminRSS, QueryRSS   int64
	Query2HWM, Query2RSS int64
}

// Target is one SPEC §9 target and its verdict.
type Target struct {
	Name     string
	Goal     string
	Measured string
	Met      bool
}

// FaultRow is one injected fault's outcome.
type FaultRow struct {
	Fault         string
	Down          time.Duration
	ReadErrors    int
	ReadOK        int
	WriteErrors   int
	Acked         int
	Lost          int
	Recover       time.Duration
	Stale         int
	Checked       int
	ErrorsOutside int
	Note          string
	Failed        bool
}

func (b *Bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %6.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// token returns a cached HS256 token for role, tenant and sub.
func (b *Bench) token(role auth.Role, tenant, sub string) string {
	key := string(role) + "|" + tenant + "|" + sub
	b.tokMu.Lock()
	defer b.tokMu.Unlock()
	if t, ok := b.tokens[key]; ok {
		return t
	}
	t, err := auth.Sign(b.secret, auth.Principal{UserID: sub, Role: role, TenantID: tenant}, 3*time.Hour, time.Now())
	if err != nil {
		panic(err)
	}
	b.tokens[key] = t
	return t
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// Main runs every phase in order.
func (b *Bench) Main(ctx context.Context) error {
	b.tokens = map[string]string{}
	b.secret = []byte(randomHex(32))
	b.hashKey = []byte(randomHex(32))
	b.runID = randomHex(3)
	b.http = NewClient(max(b.cfg.Workers, 256))
	for _, bin := range []string{b.cfg.AdminBin, b.cfg.QueryBin} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("binary %s: %w (build it first: scripts/bench.sh does)", bin, err)
		}
	}
	if b.cfg.Only != "" && b.cfg.Only != "scale" {
		return fmt.Errorf(`--only %q: the only section that runs alone is "scale"`, b.cfg.Only)
	}
	mode := "full"
	if b.cfg.Quick {
		mode = "quick"
	}
	if b.cfg.Only == "" {
		b.logf("mode %s: %d players, %d affiliates, %d tree nodes, %d history events, %s per workload",
			mode, b.cfg.Players, b.cfg.Affiliates, b.cfg.TreeNodes, b.cfg.History, b.cfg.Duration)
	}
	if b.cfg.Scale || b.cfg.Only == "scale" {
		b.logf("mode %s: scale section with tenants of %s referrals, a backlog of %d changes, %s per workload",
			mode, b.cfg.ScaleSizes, b.cfg.ScaleBacklog, b.cfg.Duration)
	}
	b.machine = machineInfo(ctx, b.cfg)

	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if b.cfg.Only == "" {
		if err := b.seed(ctx); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if err := b.startStack(ctx); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if err := b.workloads(ctx); err != nil {
			return fmt.Errorf("workloads: %w", err)
		}
		if err := b.runFaults(ctx); err != nil {
			return fmt.Errorf("faults: %w", err)
		}
	}
	if b.cfg.Scale || b.cfg.Only == "scale" {
		if err := b.scale(ctx); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	if err := b.report(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	b.logf("report written to %s, %d targets met of %d", b.cfg.Out, b.metCount(), len(b.targets))
	if bad := b.correctnessFailures(); len(bad) > 0 {
		return fmt.Errorf("correctness checks failed (the report has the details): %s", strings.Join(bad, "; "))
	}
	return nil
}

// correctnessFailures lists the checks that are about right answers rather than speed: the
// contended code's exact count, lost changes and stale answers after faults. A missed speed
// target is a result; one of these failing makes the run fail.
func (b *Bench) correctnessFailures() []string {
	var bad []string
	for _, t := range b.targets {
		if t.Name == "Apply-code contention" && !t.Met {
			bad = append(bad, "apply-code contention: "+t.Measured)
		}
	}
	for _, f := range b.faults {
		if f.Failed || f.Lost > 0 || f.Stale > 0 {
			bad = append(bad, fmt.Sprintf("fault %s: lost %d, stale %d %s", f.Fault, f.Lost, f.Stale, f.Note))
		}
	}
	return bad
}

func (b *Bench) metCount() int {
	n := 0
	for _, t := range b.targets {
		if t.Met {
			n++
		}
	}
	return n
}

// Shutdown stops the gateways the bench started.
func (b *Bench) Shutdown() {
	for _, p := range []*Proc{b.qa, b.qb, b.admin} {
		if p != nil {
			p.Stop()
		}
	}
	if b.db != nil {
		b.db.Close()
	}
	if b.redis != nil {
		b.redis.Kill()
		os.RemoveAll(b.redis.Dir)
	}
}

// dsn is the bench database's URL.
func (b *Bench) dsn() string {
	return b.cfg.PGBase + "/" + b.cfg.DBName + "?sslmode=disable"
}

func (b *Bench) redisURL() string {
	return fmt.Sprintf("redis://%s/%d", b.cfg.RedisAddr, b.cfg.RedisDB)
}

func (b *Bench) gatewayEnv(port int) []string { return b.gatewayEnvOn(port, b.dsn()) }

// gatewayEnvOn is a gateway's environment with the database dsn.
func (b *Bench) gatewayEnvOn(port int, dsn string) []string {
	env := []string{
		"PHOENIX_HTTP_ADDR=127.0.0.1:" + fmt.Sprint(port),
		"PHOENIX_DATABASE_URL=" + dsn,
		"PHOENIX_REDIS_URL=" + b.redisURL(),
		"PHOENIX_JWT_SECRET=" + string(b.secret),
		"PHOENIX_ADDRESS_HASH_KEY=" + string(b.hashKey),
		"PHOENIX_LOG_LEVEL=warn",
		"PHOENIX_DEV=false",
	}
	if b.cfg.RedisTimeout != "" {
		env = append(env, "PHOENIX_REDIS_TIMEOUT="+b.cfg.RedisTimeout)
	}
	return env
}

// startStack starts the Admin Gateway and two Query Gateways and waits for the first projection.
func (b *Bench) startStack(ctx context.Context) error {
	logs, _ := filepath.Abs(b.cfg.LogDir)
	b.admin = &Proc{Name: "admin-gateway", Bin: b.cfg.AdminBin, Env: b.gatewayEnv(b.cfg.AdminPort),
		Addr: fmt.Sprintf("127.0.0.1:%d", b.cfg.AdminPort), Log: filepath.Join(logs, "admin-gateway.log")}
	b.qa = &Proc{Name: "query-gateway-a", Bin: b.cfg.QueryBin, Env: b.gatewayEnv(b.cfg.QueryPort),
		Addr: fmt.Sprintf("127.0.0.1:%d", b.cfg.QueryPort), Log: filepath.Join(logs, "query-gateway-a.log")}
	b.qb = &Proc{Name: "query-gateway-b", Bin: b.cfg.QueryBin, Env: b.gatewayEnv(b.cfg.Query2Port),
		Addr: fmt.Sprintf("127.0.0.1:%d", b.cfg.Query2Port), Log: filepath.Join(logs, "query-gateway-b.log")}
	for _, p := range []*Proc{b.admin, b.qa} {
		b.logf("starting %s on %s", p.Name, p.Addr)
		if err := p.Start(ctx); err != nil {
			return err
		}
	}
	// The first replica rebuilds the read models from the seeded database: wait for it.
	rebuild, hwm, err := b.waitRebuild(ctx, b.qa)
	if err != nil {
		return err
	}
	b.rebuildPeak, b.rebuildTime = hwm, rebuild
	b.seedInfo = append(b.seedInfo, fmt.Sprintf("Initial projection of the seeded database into Redis (query gateway rebuild): %.1f s, query gateway peak RSS %s.",
		rebuild.Seconds(), mib(hwm)))
	b.logf("first projection done in %.1fs (peak RSS %s)", rebuild.Seconds(), mib(hwm))
	b.logf("starting %s on %s (standby replica)", b.qb.Name, b.qb.Addr)
	if err := b.qb.Start(ctx); err != nil {
		return err
	}
	for _, p := range []*Proc{b.admin, b.qa, b.qb} {
		p.ResetPeak()
	}
	return nil
}

// waitRebuild waits until q, just started on a wiped Redis, has rebuilt its read models and
// serves them, and returns how long that took and q's peak RSS meanwhile.
func (b *Bench) waitRebuild(ctx context.Context, q *Proc) (time.Duration, int64, error) {
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr, DB: b.cfg.RedisDB})
	defer rdb.Close()
	t0 := time.Now()
	for q.Metric(ctx, "phoenix_projector_rebuilds_total") < 1 || !serving(ctx, cache.New(rdb)) {
		if !q.Alive() {
			return 0, 0, fmt.Errorf("%s exited during the first projection (log %s)", q.Name, q.Log)
		}
		if time.Since(t0) > b.cfg.ProjectionCap {
			return 0, 0, fmt.Errorf("the first projection did not finish in %s (log %s)", b.cfg.ProjectionCap, q.Log)
		}
		if n := int(time.Since(t0).Seconds()); n > 0 && n%15 == 0 && time.Since(t0)%time.Second < 100*time.Millisecond {
			rss, _ := q.Memory()
			b.logf("  still projecting after %ds (RSS %s)", n, mib(rss))
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, hwm := q.Memory()
	return time.Since(t0), hwm, nil
}

// serving reports whether the read models in c are served: a finished rebuild
// (phoenix_projector_rebuilds_total) is not yet — the rounds after it catch up on the changes
// committed meanwhile, and the round that finds the log caught up installs the rebuild's epoch
// in every tenant and clears the position's Building mark.
func serving(ctx context.Context, c *cache.Store) bool {
	pos, ok, err := c.Position(ctx)
	return err == nil && ok && pos.Epoch != "" && !pos.Building
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// memory records the gateways' memory after a workload and resets the peak marks.
func (b *Bench) memory(workload string) {
	r := MemRow{Workload: workload}
	r.AdminRSS, r.AdminHWM = b.admin.Memory()
	r.QueryRSS, r.QueryHWM = b.qa.Memory()
	r.Query2RSS, r.Query2HWM = b.qb.Memory()
	b.memRows = append(b.memRows, r)
	for _, p := range []*Proc{b.admin, b.qa, b.qb} {
		p.ResetPeak()
	}
}

func (b *Bench) add(r *Result) *Result {
	b.results = append(b.results, r)
	b.memory(r.Name)
	m := b.memRows[len(b.memRows)-1]
	r.AdminHWM, r.QueryHWM = m.AdminHWM, max(m.QueryHWM, m.Query2HWM)
	b.logf("  %-34s %8.0f %s/s  p50 %s  p99 %s  p999 %s  errors %d/%d", r.Name, r.Throughput(), r.Unit,
		fmtDur(r.Pct(0.50)), fmtDur(r.Pct(0.99)), fmtDur(r.Pct(0.999)), r.Errors, r.Ops)
	if r.FirstErr != "" {
		b.logf("    first error: %s", r.FirstErr)
	}
	return r
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}
