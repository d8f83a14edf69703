package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// event is one background request's outcome during a fault.
type event struct {
	at time.Time
	ok bool
}

// injection performs a fault and returns when the dependency is back (or the takeover happened).
type injection func(ctx context.Context) (note string, err error)

func (b *Bench) runFaults(ctx context.Context) error {
	if err := b.settle(ctx); err != nil {
		return err
	}
	var list []string
	for _, f := range strings.Split(b.cfg.Faults, ",") {
		if f = strings.TrimSpace(f); f != "" && f != "redis" {
			list = append(list, f)
		}
	}
	if b.cfg.PGRestart {
		list = append(list, "postgres")
	}
	// Redis last: a wiped Redis makes the projector rebuild everything, which runs on afterwards.
	if strings.Contains(","+b.cfg.Faults+",", ",redis,") {
		list = append(list, "redis")
	}
	for i, f := range list {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		readFrom := b.qa
		var inj injection
		var after func(context.Context) error
		switch f {
		case "redis":
			inj = b.killRedis
		case "listener":
			inj = b.killListener
		case "projector":
			leader, standby := b.qa, b.qb
			if b.qb.Metric(ctx, "phoenix_projector_leader") == 1 {
				leader, standby = b.qb, b.qa
			}
			readFrom = standby
			inj = func(ctx context.Context) (string, error) {
				leader.Kill()
				t0 := time.Now()
				for standby.Metric(ctx, "phoenix_projector_leader") != 1 {
					if time.Since(t0) > 60*time.Second {
						return "", fmt.Errorf("no takeover within 60 s")
					}
					time.Sleep(20 * time.Millisecond)
				}
				return fmt.Sprintf("killed %s (SIGKILL); %s took over in %.2f s", leader.Name, standby.Name, time.Since(t0).Seconds()), nil
			}
			after = func(ctx context.Context) error { return leader.Start(ctx) }
		case "postgres":
			inj = b.restartPostgres
		default:
			return fmt.Errorf("unknown fault %q (redis, listener, projector)", f)
		}
		b.logf("fault %d: %s", i+1, f)
		row, err := b.fault(ctx, f, i, readFrom, inj)
		if err != nil {
			row.Failed = true
			row.Note = "FAILED: " + err.Error()
			b.logf("  fault %s failed: %v", f, err)
		}
		b.faults = append(b.faults, row)
		b.logf("  down %.2fs, read errors %d/%d (after recovery %d), write errors %d, acked %d, lost %d, recovered in %.2fs, stale %d/%d — %s",
			row.Down.Seconds(), row.ReadErrors, row.ReadErrors+row.ReadOK, row.ErrorsOutside, row.WriteErrors, row.Acked, row.Lost,
			row.Recover.Seconds(), row.Stale, row.Checked, row.Note)
		if after != nil {
			if err := after(ctx); err != nil {
				return err
			}
		}
		b.memory("fault: " + f)
	}
	return nil
}

// fault runs background reads and a known sequence of writes around inj, then checks that every
// acknowledged write is visible and that the Query Gateway agrees with PostgreSQL.
func (b *Bench) fault(ctx context.Context, name string, idx int, q *Proc, inj injection) (FaultRow, error) {
	main := b.data.Main()
	admin := b.token(auth.RoleTenantAdmin, main.ID, "bench_admin")
	owner := fmt.Sprintf("fault%s_%d", b.runID, idx)
	ownerTok := b.token(auth.RolePlayer, main.ID, owner)
	au := b.admin.URL()
	row := FaultRow{Fault: name}

	bg, stopBG := context.WithCancel(ctx)
	var mu sync.Mutex
	var reads []event
	var acked []uuid.UUID
	var wg sync.WaitGroup
	hot := main.HotPlayers
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; bg.Err() == nil; i += 4 {
				path := "/v1/referral/stats?period=30d"
				if i%2 == 1 {
					path = "/v1/referral/codes"
				}
				rctx, cancel := context.WithTimeout(bg, 2*time.Second)
				_, err := b.http.Do(rctx, http.MethodGet, q.URL()+path, b.token(auth.RolePlayer, main.ID, hot[(i*7919)%len(hot)]), nil, nil)
				cancel()
				if bg.Err() != nil {
					return
				}
				mu.Lock()
				reads = append(reads, event{at: time.Now(), ok: err == nil})
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	seq := 0
	wg.Add(1)
	go func() { // the known sequence of writes: codes owned by owner
		defer wg.Done()
		for bg.Err() == nil {
			seq++
			var c struct {
				ID uuid.UUID `json:"id"`
			}
			wctx, cancel := context.WithTimeout(bg, 5*time.Second)
			_, err := b.http.Do(wctx, http.MethodPost, au+"/v1/referral/codes", admin, map[string]any{
				"code": fmt.Sprintf("F%s%dX%d", strings.ToUpper(b.runID), idx, seq), "owner_user_id": owner, "usage_limit": 1}, &c)
			cancel()
			if bg.Err() != nil {
				return
			}
			mu.Lock()
			if err == nil {
				acked = append(acked, c.ID)
			} else {
				row.WriteErrors++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	rebuildsA, rebuildsB := b.qa.Metric(ctx, "phoenix_projector_rebuilds_total"), b.qb.Metric(ctx, "phoenix_projector_rebuilds_total")
	t0 := time.Now()
	note, err := inj(ctx)
	if err != nil {
		stopBG()
		wg.Wait()
		return row, err
	}
	back := time.Now()
	row.Down = back.Sub(t0)
	row.Note = note

	// Recovery: a write made now must become visible on the Query Gateway.
	var rec time.Duration
	for {
		var c struct {
			ID uuid.UUID `json:"id"`
		}
		_, err := b.http.Do(ctx, http.MethodPost, au+"/v1/referral/codes", admin, map[string]any{"owner_user_id": owner, "usage_limit": 1}, &c)
		if err == nil {
			_, err = b.waitVisible(ctx, q.URL(), ownerTok, back, 90*time.Second, func(items []codeJSON) bool {
				for _, it := range items {
					if it.ID == c.ID {
						return true
					}
				}
				return false
			})
			if err == nil {
				rec = time.Since(back)
				mu.Lock()
				acked = append(acked, c.ID)
				mu.Unlock()
				break
			}
		}
		if time.Since(back) > 120*time.Second {
			stopBG()
			wg.Wait()
			return row, fmt.Errorf("not recovered after 120 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	row.Recover = rec
	recovered := back.Add(rec)
	if name == "redis" {
		// A wiped Redis is rebuilt from PostgreSQL (reads fall through meanwhile): wait for the
		// rebuild so that the stale check below compares the rebuilt read models.
		t1 := time.Now()
		for time.Since(t1) < 5*time.Minute {
			if b.qa.Metric(ctx, "phoenix_projector_rebuilds_total") > rebuildsA || b.qb.Metric(ctx, "phoenix_projector_rebuilds_total") > rebuildsB {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		row.Note += fmt.Sprintf("; read models rebuilt %.1f s after Redis came back", time.Since(back).Seconds())
	}
	time.Sleep(time.Second) // load continues after recovery: errors here count against the system
	stopBG()
	wg.Wait()
	// A write cut off by stopping the writer may still commit: let the projector catch up with
	// everything written so far before judging.
	time.Sleep(200 * time.Millisecond)
	if err := b.settleOn(ctx, q); err != nil {
		row.Note += "; " + err.Error()
	}

	for _, e := range reads {
		if e.ok {
			row.ReadOK++
			continue
		}
		row.ReadErrors++
		if e.at.Before(t0) || e.at.After(recovered) {
			row.ErrorsOutside++
		}
	}

	// Lost changes: every acknowledged write must be visible (after a settle of at most 10 s).
	row.Acked = len(acked)
	want := map[uuid.UUID]bool{}
	for _, id := range acked {
		want[id] = true
	}
	missing := len(want)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var out struct {
			Items []codeJSON `json:"items"`
		}
		if _, err := b.http.Do(ctx, http.MethodGet, q.URL()+"/v1/referral/codes", ownerTok, nil, &out); err == nil {
			missing = len(want)
			for _, it := range out.Items {
				if want[it.ID] {
					missing--
				}
			}
			if missing == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	row.Lost = missing

	// Stale answers: the Query Gateway against PostgreSQL for a sample of players and the owner.
	users := append([]string{owner}, hot[:min(len(hot), 100)]...)
	for _, u := range users {
		row.Checked++
		diff, err := b.agrees(ctx, q.URL(), main.ID, u)
		for try := 0; err != nil && try < 5; try++ { // a read that failed is retried, not judged
			time.Sleep(200 * time.Millisecond)
			diff, err = b.agrees(ctx, q.URL(), main.ID, u)
		}
		if err != nil {
			diff = "read failed: " + err.Error()
		}
		if diff != "" {
			row.Stale++
			if row.Stale <= 3 {
				row.Note += fmt.Sprintf("; stale for %s: %s", u, diff)
			}
		}
	}
	return row, nil
}

// agrees compares a player's code list and stats on the Query Gateway with PostgreSQL and
// describes the first difference ("" when they agree); err reports a read that failed.
func (b *Bench) agrees(ctx context.Context, qg, tenant, user string) (string, error) {
	tok := b.token(auth.RolePlayer, tenant, user)
	var got struct {
		Items []codeJSON `json:"items"`
	}
	if _, err := b.http.Do(ctx, http.MethodGet, qg+"/v1/referral/codes", tok, nil, &got); err != nil {
		return "", err
	}
	var rows []codeRow
	const q = `SELECT id, tenant_id, code, owner_user_id, campaign_id, usage_limit, uses, active, expires_at, created_at, updated_at
		FROM referral_codes WHERE tenant_id = $1 AND owner_user_id = $2 AND deleted_at IS NULL`
	if err := b.db.SelectContext(ctx, &rows, q, tenant, user); err != nil {
		return "", err
	}
	if len(rows) != len(got.Items) {
		return fmt.Sprintf("%d codes on the query gateway, %d in PostgreSQL", len(got.Items), len(rows)), nil
	}
	byID := map[uuid.UUID]codeJSON{}
	for _, it := range got.Items {
		byID[it.ID] = it
	}
	for _, r := range rows {
		it, ok := byID[r.ID]
		if !ok {
			return fmt.Sprintf("code %s missing on the query gateway", r.Code), nil
		}
		if it.Uses != r.Uses || it.Active != r.Active || (it.UsageLimit == nil) != (r.UsageLimit == nil) ||
			(it.UsageLimit != nil && *it.UsageLimit != *r.UsageLimit) {
			return fmt.Sprintf("code %s differs (uses %d/%d, active %v/%v)", r.Code, it.Uses, r.Uses, it.Active, r.Active), nil
		}
	}
	var st struct {
		Total int64 `json:"total_referrals"`
		Succ  int64 `json:"successful_referrals"`
	}
	if _, err := b.http.Do(ctx, http.MethodGet, qg+"/v1/referral/stats?period=all", tok, nil, &st); err != nil {
		return "", err
	}
	var want struct {
		Total int64 `db:"total"`
		Succ  int64 `db:"succ"`
	}
	const qs = `SELECT count(*) AS total, count(*) FILTER (WHERE phoenix_successful(status)) AS succ
		FROM referrals WHERE tenant_id = $1 AND referrer_id = $2`
	if err := b.db.GetContext(ctx, &want, qs, tenant, user); err != nil {
		return "", err
	}
	if want.Total != st.Total || want.Succ != st.Succ {
		return fmt.Sprintf("stats %d/%d referrals, PostgreSQL %d/%d", st.Total, st.Succ, want.Total, want.Succ), nil
	}
	return "", nil
}

func (b *Bench) killRedis(ctx context.Context) (string, error) {
	if b.redis != nil {
		b.redis.Kill()
		time.Sleep(3 * time.Second)
		if err := b.redis.Start(ctx); err != nil {
			return "", err
		}
		return "the bench's redis-server killed (SIGKILL), restarted empty after 3 s", nil
	}
	if out, err := exec.CommandContext(ctx, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "connect") && len(strings.TrimSpace(string(out))) > 0 {
		return "", fmt.Errorf("redis shutdown: %v: %s", err, out)
	}
	time.Sleep(3 * time.Second)
	if out, err := exec.CommandContext(ctx, "sh", "-c", b.cfg.RedisRestart).CombinedOutput(); err != nil {
		return "", fmt.Errorf("redis restart: %v: %s", err, out)
	}
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr})
	defer rdb.Close()
	for range 100 {
		if rdb.Ping(ctx).Err() == nil {
			return "Redis shut down (nosave), restarted empty after 3 s", nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("redis did not come back")
}

func (b *Bench) killListener(ctx context.Context) (string, error) {
	var n int
	const q = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'query-gateway-listener' AND datname = $1`
	if err := b.db.GetContext(ctx, &n, q, b.cfg.DBName); err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("no listener connection found")
	}
	return fmt.Sprintf("terminated %d listener backend(s)", n), nil
}

func (b *Bench) restartPostgres(ctx context.Context) (string, error) {
	args := append([]string{"--skip-systemctl-redirect"}, strings.Fields(b.cfg.PGCluster)...)
	args = append(args, "restart")
	if out, err := exec.CommandContext(ctx, "pg_ctlcluster", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("pg_ctlcluster: %v: %s", err, out)
	}
	for range 300 {
		if err := b.db.PingContext(ctx); err == nil {
			return "PostgreSQL restarted (pg_ctlcluster restart)", nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("postgres did not come back")
}
