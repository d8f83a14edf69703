package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// Workload names (keys of the report).
const (
	wEcho        = "baseline: bare Echo, constant JSON"
	wPGReads     = "baseline: stats+codes straight from PostgreSQL"
	wQGMixed     = "query gateway: hot reads, 4 routes"
	wQGSame      = "query gateway: stats+codes"
	wPlainInsert = "baseline: plain INSERT (1 row)"
	wAdminWrites = "admin gateway: writes"
	wApply       = "apply-code, distinct codes"
	wContend     = "apply-code, 2,000 on one code"
	wPlainBatch  = "baseline: plain INSERT (batch)"
	wEvents      = "events: /v1/events/batch"
	wDownAdmin   = "downline page (admin gateway)"
	wDownQG      = "downline page (query gateway)"
	wMove        = "subtree move"
	wCycle       = "cycle check (rejected move)"
	wFresh       = "freshness: admin write → query read"
	wImpressions = "impressions: POST /v1/referral/impressions"
)

func (b *Bench) result(name string) *Result {
	for _, r := range b.results {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// serve runs h on a loopback listener and returns its base URL and a stop function.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func (b *Bench) workloads(ctx context.Context) error {
	if err := b.readWorkloads(ctx); err != nil {
		return err
	}
	if err := b.writeWorkloads(ctx); err != nil {
		return err
	}
	if err := b.applyWorkloads(ctx); err != nil {
		return err
	}
	if err := b.eventWorkloads(ctx); err != nil {
		return err
	}
	if err := b.hierarchyWorkloads(ctx); err != nil {
		return err
	}
	if err := b.settle(ctx); err != nil {
		return err
	}
	return b.freshnessWorkload(ctx)
}

// readWorkloads: the bare Echo baseline, the PostgreSQL baseline and the Query Gateway.
func (b *Bench) readWorkloads(ctx context.Context) error {
	main := b.data.Main()
	w := b.cfg.Workers
	hot := main.HotPlayers[:min(len(main.HotPlayers), 2000)]
	affs := main.AffUsers[:min(len(main.AffUsers), 2000)]
	for _, u := range hot {
		b.token(auth.RolePlayer, main.ID, u)
	}
	for _, u := range affs {
		b.token(auth.RolePlayer, main.ID, u)
	}
	pick := func(list []string, i int) string { return list[(i*7919)%len(list)] }

	// Baseline 1: a bare Echo handler answering constant JSON.
	if err := b.bareEcho(ctx, wEcho, func(i int) string { return b.token(auth.RolePlayer, main.ID, pick(hot, i)) }); err != nil {
		return err
	}

	// Baseline 2: the same stats and codes reads computed straight from PostgreSQL (JWT checked
	// the same way as on the Query Gateway).
	pgURL, stopPG, err := b.pgReadServer(ctx)
	if err != nil {
		return err
	}
	b.logf("reads: PostgreSQL baseline")
	b.add(Run(ctx, wPGReads, w, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		path := "/v1/referral/stats?period=30d"
		if i%2 == 1 {
			path = "/v1/referral/codes"
		}
		_, err := b.http.Do(ctx, http.MethodGet, pgURL+path, b.token(auth.RolePlayer, main.ID, pick(hot, i)), nil, nil)
		return err
	}))
	stopPG()

	// The Query Gateway: the same two routes, then the four-route mix.
	qg := b.qa.URL()
	b.logf("reads: query gateway, stats+codes")
	b.add(Run(ctx, wQGSame, w, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		path := "/v1/referral/stats?period=30d"
		if i%2 == 1 {
			path = "/v1/referral/codes"
		}
		_, err := b.http.Do(ctx, http.MethodGet, qg+path, b.token(auth.RolePlayer, main.ID, pick(hot, i)), nil, nil)
		return err
	}))
	b.logf("reads: query gateway, stats/codes/affiliate-me/leaderboard")
	routes := hotRoutes
	request := func(k, i int) (string, string) {
		if k == 2 {
			return qg + routes[k], b.token(auth.RolePlayer, main.ID, pick(affs, i))
		}
		return qg + routes[k], b.token(auth.RolePlayer, main.ID, pick(hot, i))
	}
	b.add(Run(ctx, wQGMixed, w, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		url, tok := request(i%4, i)
		_, err := b.http.Do(ctx, http.MethodGet, url, tok, nil, nil)
		return err
	}))
	// Each route alone, to see which one sets the pace of the mix.
	for k, r := range routes {
		route, _, _ := strings.Cut(r, "?")
		time.Sleep(time.Second) // let the previous run's requests drain
		b.add(Run(ctx, "query gateway: "+route+" alone", w, 0, max(b.cfg.Duration/3, time.Second), func(ctx context.Context, _, i int) error {
			url, tok := request(k, i)
			_, err := b.http.Do(ctx, http.MethodGet, url, tok, nil, nil)
			return err
		}))
	}
	return nil
}

// hotRoutes are the Query Gateway reads of the hot-GET mix, in round-robin order; the third is
// answered for affiliates only.
var hotRoutes = []string{"/v1/referral/stats?period=30d", "/v1/referral/codes", "/v1/affiliate/me", "/v1/referral/leaderboard?period=30d&limit=10"}

// bareEcho measures the bare Echo baseline under name: an Echo handler inside phoenix-bench
// answering a constant JSON body to cfg.Workers connections, each request carrying tok(i).
func (b *Bench) bareEcho(ctx context.Context, name string, tok func(i int) string) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/v1/referral/stats", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, []byte(`{"period":"30d","total_referrals":3,"successful_referrals":1,"pending_referrals":2,"rejected_referrals":0,"conversion_rate":33.3,"rewards":[]}`))
	})
	url, stop, err := serve(e)
	if err != nil {
		return err
	}
	defer stop()
	b.logf("reads: bare Echo baseline (%d connections, %s)", b.cfg.Workers, b.cfg.Duration)
	b.add(Run(ctx, name, b.cfg.Workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		_, err := b.http.Do(ctx, http.MethodGet, url+"/v1/referral/stats", tok(i), nil, nil)
		return err
	}))
	return nil
}

// pgReadServer serves /v1/referral/stats and /v1/referral/codes computed by SQL per request.
func (b *Bench) pgReadServer(ctx context.Context) (string, func(), error) {
	v, err := auth.NewVerifierFromConfig(ctx, auth.Settings{Secret: string(b.secret)}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return "", nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			_ = c.JSON(he.Code, map[string]any{"error": fmt.Sprint(he.Message)})
			return
		}
		_ = c.JSON(http.StatusInternalServerError, map[string]any{"error": err.Error()})
	}
	mw := []echo.MiddlewareFunc{auth.Authenticate(v), auth.Guard(auth.RolePlayer)}
	type stats struct {
		Total    int64    `db:"total" json:"total_referrals"`
		Succ     int64    `db:"succ" json:"successful_referrals"`
		Pending  int64    `db:"pending" json:"pending_referrals"`
		Rejected int64    `db:"rejected" json:"rejected_referrals"`
		Period   string   `db:"-" json:"period"`
		Rate     float64  `db:"-" json:"conversion_rate"`
		Rewards  []amount `db:"-" json:"rewards"`
	}
	e.GET("/v1/referral/stats", func(c echo.Context) error {
		p := auth.PrincipalOf(c)
		tenant := auth.TenantOf(c)
		const q = `SELECT count(*) AS total,
			count(*) FILTER (WHERE phoenix_successful(status)) AS succ,
			count(*) FILTER (WHERE status = 'pending') AS pending,
			count(*) FILTER (WHERE status = 'rejected') AS rejected
			FROM referrals WHERE tenant_id = $1 AND referrer_id = $2 AND created_at >= now() - interval '30 days'`
		var s stats
		if err := b.db.GetContext(c.Request().Context(), &s, q, tenant, p.UserID); err != nil {
			return err
		}
		const qr = `SELECT currency_id, sum(amount) AS amount FROM rewards WHERE tenant_id = $1 AND user_id = $2 GROUP BY currency_id ORDER BY currency_id`
		s.Rewards = []amount{}
		if err := b.db.SelectContext(c.Request().Context(), &s.Rewards, qr, tenant, p.UserID); err != nil {
			return err
		}
		s.Period = "30d"
		if s.Total > 0 {
			s.Rate = float64(s.Succ*1000/s.Total) / 10
		}
		return c.JSON(http.StatusOK, s)
	}, mw...)
	e.GET("/v1/referral/codes", func(c echo.Context) error {
		p := auth.PrincipalOf(c)
		const q = `SELECT id, tenant_id, code, owner_user_id, campaign_id, usage_limit, uses, active, expires_at, created_at, updated_at
			FROM referral_codes WHERE tenant_id = $1 AND owner_user_id = $2 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC`
		var rows []codeRow
		if err := b.db.SelectContext(c.Request().Context(), &rows, q, auth.TenantOf(c), p.UserID); err != nil {
			return err
		}
		items := make([]codeJSON, 0, len(rows))
		for _, r := range rows {
			items = append(items, r.json())
		}
		return c.JSON(http.StatusOK, map[string]any{"items": items})
	}, mw...)
	return serve(e)
}

type amount struct {
	CurrencyID string `db:"currency_id" json:"currency_id"`
	Amount     int64  `db:"amount" json:"amount"`
}

type codeRow struct {
	ID         uuid.UUID  `db:"id"`
	TenantID   string     `db:"tenant_id"`
	Code       string     `db:"code"`
	Owner      *string    `db:"owner_user_id"`
	CampaignID *uuid.UUID `db:"campaign_id"`
	UsageLimit *int       `db:"usage_limit"`
	Uses       int        `db:"uses"`
	Active     bool       `db:"active"`
	ExpiresAt  *time.Time `db:"expires_at"`
	CreatedAt  time.Time  `db:"created_at"`
	UpdatedAt  time.Time  `db:"updated_at"`
}

// codeJSON is a code object as the Query Gateway serves it.
type codeJSON = apishape.Code

func (r codeRow) json() codeJSON {
	return codeJSON{ID: r.ID, TenantID: r.TenantID, Code: r.Code, OwnerUserID: r.Owner, CampaignID: r.CampaignID,
		UsageLimit: r.UsageLimit, Uses: r.Uses, Active: r.Active, ExpiresAt: apishape.TimePtr(r.ExpiresAt),
		CreatedAt: apishape.Time(r.CreatedAt), UpdatedAt: apishape.Time(r.UpdatedAt)}
}

// writeWorkloads: plain single-row INSERTs, then the Admin Gateway's write mix.
func (b *Bench) writeWorkloads(ctx context.Context) error {
	const ddl = `CREATE TABLE IF NOT EXISTS bench_plain (id uuid PRIMARY KEY, tenant_id text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL)`
	if _, err := b.db.ExecContext(ctx, ddl); err != nil {
		return err
	}
	const ddl2 = `CREATE TABLE IF NOT EXISTS bench_plain_events (tenant_id text NOT NULL, event_id text NOT NULL, type text NOT NULL,
		user_id text NOT NULL, occurred_at timestamptz NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL, PRIMARY KEY (tenant_id, event_id))`
	if _, err := b.db.ExecContext(ctx, ddl2); err != nil {
		return err
	}
	main := b.data.Main()
	const workers = 32
	b.logf("writes: plain INSERT baseline (%d connections)", workers)
	r := Run(ctx, wPlainInsert, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		_, err := b.db.ExecContext(ctx, `INSERT INTO bench_plain (id, tenant_id, body, created_at) VALUES ($1, $2, $3, now())`,
			uuid.New(), main.ID, fmt.Sprintf(`{"name": "write %d", "usage_limit": %d}`, i, i))
		return err
	})
	r.Unit = "row"
	b.add(r)

	admin := b.token(auth.RoleTenantAdmin, main.ID, "bench_admin")
	au := b.admin.URL()
	codes := main.HotCodes[len(main.HotCodes)/2:]
	b.logf("writes: admin gateway mix (create affiliate / patch code / create campaign)")
	r = Run(ctx, wAdminWrites, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		var err error
		switch i % 3 {
		case 0:
			_, err = b.http.Do(ctx, http.MethodPost, au+"/v1/affiliates", admin,
				map[string]any{"user_id": fmt.Sprintf("nw%s_%d", b.runID, i), "status": "active"}, nil)
		case 1:
			c := codes[(i/3)%len(codes)]
			_, err = b.http.Do(ctx, http.MethodPatch, au+"/v1/referral/codes/"+c.ID.String(), admin,
				map[string]any{"usage_limit": 100000 + i}, nil)
		default:
			_, err = b.http.Do(ctx, http.MethodPost, au+"/v1/referral/campaigns", admin, map[string]any{
				"name": fmt.Sprintf("Bench campaign %d", i), "qualifying_event": "bench.never",
				"referrer_rewards": map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 5}}},
				"referee_rewards":  map[string]any{"wallet": []any{}}, "active": false,
			}, nil)
		}
		return err
	})
	b.add(r)

	// Impressions (SPEC §15): the platform reports clicks on the tenant's (unlimited) hot codes
	// with its service token, as many connections as the plain INSERT baseline. Every answer
	// must be valid: true with an impression id.
	svc := b.token(auth.RoleService, main.ID, "bench_platform")
	b.logf("writes: impressions (%d connections)", workers)
	r = Run(ctx, wImpressions, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		var out apishape.Impression
		c := main.HotCodes[(i*7919)%len(main.HotCodes)]
		if _, err := b.http.Do(ctx, http.MethodPost, au+"/v1/referral/impressions", svc,
			map[string]any{"code": c.Code, "source": "bench_qr"}, &out); err != nil {
			return err
		}
		if !out.Valid || out.ImpressionID == nil {
			return fmt.Errorf("impression of %s: %+v", c.Code, out)
		}
		return nil
	})
	r.Unit = "impression"
	b.add(r)
	return nil
}

// applyWorkloads: contention on one code, then throughput across distinct codes.
func (b *Bench) applyWorkloads(ctx context.Context) error {
	main := b.data.Main()
	admin := b.token(auth.RoleTenantAdmin, main.ID, "bench_admin")
	au := b.admin.URL()
	var code struct {
		ID   uuid.UUID `json:"id"`
		Code string    `json:"code"`
	}
	if _, err := b.http.Do(ctx, http.MethodPost, au+"/v1/referral/codes", admin, map[string]any{
		"code": "HOT" + strings.ToUpper(b.runID), "usage_limit": b.cfg.ContendLimit, "owner_user_id": main.HotPlayers[0],
	}, &code); err != nil {
		return fmt.Errorf("create contended code: %w", err)
	}
	n := b.cfg.ContendApply
	toks := make([]string, n)
	for i := range n {
		toks[i] = b.token(auth.RolePlayer, main.ID, fmt.Sprintf("ct%s_%d", b.runID, i))
	}
	b.logf("apply-code: %d concurrent applies against %s (usage_limit %d)", n, code.Code, b.cfg.ContendLimit)
	var ok, exhausted, other atomic.Int64
	var firstOther atomic.Value
	start := make(chan struct{})
	durs := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			st, err := b.http.Do(ctx, http.MethodPost, au+"/v1/referral/apply-code", toks[i], map[string]any{"code": code.Code}, nil, 200, 409)
			durs[i] = time.Since(t0)
			var se *StatusError
			switch {
			case err == nil && st == 200:
				ok.Add(1)
			case err == nil && st == 409:
				exhausted.Add(1)
			case errors.As(err, &se):
				other.Add(1)
				firstOther.CompareAndSwap(nil, se.Error())
			default:
				other.Add(1)
				firstOther.CompareAndSwap(nil, fmt.Sprint(err))
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	r := &Result{Name: wContend, Workers: n, Ops: n, Errors: int(other.Load()), Elapsed: time.Since(t0), Unit: "apply", PerOp: 1, Durations: durs}
	sortDurations(r.Durations)
	var uses, refs int
	_ = b.db.GetContext(ctx, &uses, `SELECT uses FROM referral_codes WHERE id = $1`, code.ID)
	_ = b.db.GetContext(ctx, &refs, `SELECT count(*) FROM referrals WHERE code_id = $1`, code.ID)
	r.Note = fmt.Sprintf("%d succeeded, %d CODE_EXHAUSTED, %d other; code uses = %d, referrals = %d", ok.Load(), exhausted.Load(), other.Load(), uses, refs)
	if v, ok := firstOther.Load().(string); ok {
		r.FirstErr = v
	}
	b.add(r)
	b.logf("  %s", r.Note)
	exact := ok.Load() == int64(b.cfg.ContendLimit) && uses == b.cfg.ContendLimit && refs == b.cfg.ContendLimit && other.Load() == 0
	b.targets = append(b.targets, Target{Name: "Apply-code contention", Goal: fmt.Sprintf("%d concurrent applies, usage_limit %d → exactly %d succeed", n, b.cfg.ContendLimit, b.cfg.ContendLimit),
		Measured: r.Note, Met: exact})

	// Throughput across distinct codes, fresh players.
	codes := main.HotCodes[:max(len(main.HotCodes)/2, 1)]
	const workers = 32
	b.logf("apply-code: distinct codes (%d connections)", workers)
	ra := Run(ctx, wApply, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		tok := b.token(auth.RolePlayer, main.ID, fmt.Sprintf("ap%s_%d", b.runID, i))
		_, err := b.http.Do(ctx, http.MethodPost, au+"/v1/referral/apply-code", tok,
			map[string]any{"code": codes[(i*7919)%len(codes)].Code, "metadata": map[string]any{"source": "bench"}}, nil)
		return err
	})
	ra.Unit = "apply"
	b.add(ra)
	return nil
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

// eventWorkloads: plain batched INSERTs, then /v1/events/batch with a 3-level hierarchy.
func (b *Bench) eventWorkloads(ctx context.Context) error {
	main := b.data.Main()
	batch, workers := b.cfg.EventBatch, b.cfg.EventWorkers
	b.logf("events: plain INSERT baseline (%d rows per statement, %d connections)", batch, workers)
	r := Run(ctx, wPlainBatch, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		var sb strings.Builder
		args := make([]any, 0, batch*4)
		sb.WriteString(`INSERT INTO bench_plain_events (tenant_id, event_id, type, user_id, occurred_at, payload, created_at) VALUES `)
		for k := range batch {
			if k > 0 {
				sb.WriteString(",")
			}
			n := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, 'deposit.completed', $%d, now(), $%d, now())", n+1, n+2, n+3, n+4)
			args = append(args, main.ID, fmt.Sprintf("plain_%d_%d", i, k), main.EventUsers[(i*batch+k)%len(main.EventUsers)],
				`{"amount": 2000, "currency": "EUR"}`)
		}
		_, err := b.db.ExecContext(ctx, sb.String(), args...)
		return err
	})
	r.Unit, r.PerOp = "event", batch
	b.add(r)

	svc := b.token(auth.RoleService, main.ID, "bench_platform")
	au := b.admin.URL()
	b.logf("events: /v1/events/batch (%d per batch, %d connections)", batch, workers)
	var rejected atomic.Int64
	var commissions atomic.Int64
	r = Run(ctx, wEvents, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		evs := make([]map[string]any, batch)
		for k := range batch {
			evs[k] = map[string]any{"event_id": fmt.Sprintf("ev%s_%d_%d", b.runID, i, k), "type": "deposit.completed",
				"user_id": main.EventUsers[(i*batch+k)%len(main.EventUsers)], "payload": map[string]any{"amount": 2000, "currency": "EUR"}}
		}
		var out struct {
			Results []struct {
				Status      string `json:"status"`
				Commissions []any  `json:"commissions"`
			} `json:"results"`
		}
		if _, err := b.http.Do(ctx, http.MethodPost, au+"/v1/events/batch", svc, map[string]any{"events": evs}, &out); err != nil {
			return err
		}
		for _, res := range out.Results {
			if res.Status != "processed" {
				rejected.Add(1)
			}
			commissions.Add(int64(len(res.Commissions)))
		}
		if len(out.Results) != batch {
			return fmt.Errorf("batch answered %d results for %d events", len(out.Results), batch)
		}
		return nil
	})
	r.Unit, r.PerOp = "event", batch
	ok := (r.Ops - r.Errors) * batch
	if ok > 0 {
		r.Note = fmt.Sprintf("%d events, %d not processed, %.2f commission rows per event", ok, rejected.Load(), float64(commissions.Load())/float64(ok))
	}
	b.add(r)
	return nil
}

// hierarchyWorkloads: downline pages on both gateways, subtree moves and the cycle check.
func (b *Bench) hierarchyWorkloads(ctx context.Context) error {
	tr := b.data.Tree
	admin := b.token(auth.RoleTenantAdmin, tr.Tenant, "bench_admin")
	au, qg := b.admin.URL(), b.qa.URL()
	const workers = 8
	pages := []string{"depth=1&limit=50&offset=0", "depth=12&limit=50&offset=0", "depth=12&limit=50&offset=1000", "depth=3&limit=100&offset=0"}
	b.logf("hierarchy: downline pages on the admin gateway (%d connections)", workers)
	b.add(Run(ctx, wDownAdmin, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		node := tr.Inner[(i*31)%len(tr.Inner)]
		_, err := b.http.Do(ctx, http.MethodGet, fmt.Sprintf("%s/v1/affiliates/%s/downline?%s", au, node, pages[i%len(pages)]), admin, nil, nil)
		return err
	}))
	for _, u := range tr.InnerU {
		b.token(auth.RolePlayer, tr.Tenant, u)
	}
	b.logf("hierarchy: downline pages on the query gateway")
	b.add(Run(ctx, wDownQG, workers, 0, b.cfg.Duration, func(ctx context.Context, _, i int) error {
		u := tr.InnerU[(i*31)%len(tr.InnerU)]
		_, err := b.http.Do(ctx, http.MethodGet, fmt.Sprintf("%s/v1/affiliate/downline?%s", qg, pages[i%len(pages)]), b.token(auth.RolePlayer, tr.Tenant, u), nil, nil)
		return err
	}))

	b.logf("hierarchy: moving the %d-node subtree", b.cfg.MoveNodes)
	parents := []uuid.UUID{tr.Other, tr.Root, tr.Other, tr.Root}
	r := Run(ctx, wMove, 1, len(parents), 2*time.Minute, func(ctx context.Context, _, i int) error {
		_, err := b.http.Do(ctx, http.MethodPut, fmt.Sprintf("%s/v1/affiliates/%s/hierarchy", au, tr.Mover), admin,
			map[string]any{"parent_affiliate_id": parents[i]}, nil)
		return err
	})
	r.Unit = "move"
	var moved int
	_ = b.db.GetContext(ctx, &moved, `SELECT count(*) FROM affiliates WHERE ancestors @> ARRAY[$1]::uuid[] AND deleted_at IS NULL`, tr.Mover)
	r.Note = fmt.Sprintf("%d moves of a subtree of %d nodes (%d descendants)", r.Ops, moved+1, moved)
	b.add(r)
	rc := Run(ctx, wCycle, 1, 50, time.Minute, func(ctx context.Context, _, i int) error {
		_, err := b.http.Do(ctx, http.MethodPut, fmt.Sprintf("%s/v1/affiliates/%s/hierarchy", au, tr.Root), admin,
			map[string]any{"parent_affiliate_id": tr.Deep}, nil, 422)
		return err
	})
	rc.Note = fmt.Sprintf("root under its deepest descendant (depth %d) → 422 HIERARCHY_CYCLE", tr.MaxDep)
	b.add(rc)
	return nil
}

// freshnessWorkload: writes at a fixed rate on the Admin Gateway; each write's key is polled on
// the Query Gateway until the new value shows.
func (b *Bench) freshnessWorkload(ctx context.Context) error {
	main := b.data.Main()
	admin := b.token(auth.RoleTenantAdmin, main.ID, "bench_admin")
	au, qg := b.admin.URL(), b.qa.URL()
	codes := main.HotCodes[len(main.HotCodes)/2:]
	slots := min(len(codes), max(b.cfg.FreshRate, 1))
	for _, c := range codes[:slots] {
		b.token(auth.RolePlayer, main.ID, c.Owner)
	}
	b.logf("freshness: %d writes/s on the admin gateway, each polled on the query gateway", b.cfg.FreshRate)
	interval := time.Second / time.Duration(max(b.cfg.FreshRate, 1))
	total := int(b.cfg.Duration / interval)
	var mu sync.Mutex
	var durs []time.Duration
	var errs int
	var firstErr string
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	t0 := time.Now()
	polled := 0
	for i := range total {
		<-tick.C
		wg.Add(1)
		poll := i%freshSample == 0
		if poll {
			polled++
		}
		go func() {
			defer wg.Done()
			c := codes[i%slots]
			limit := 200000 + i
			var d time.Duration
			var err error
			if poll {
				d, err = b.writeAndSee(ctx, au, qg, admin, c, limit)
			} else {
				_, err = b.http.Do(ctx, http.MethodPatch, au+"/v1/referral/codes/"+c.ID.String(), admin, map[string]any{"usage_limit": limit}, nil)
				if err == nil {
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				if firstErr == "" {
					firstErr = err.Error()
				}
				return
			}
			durs = append(durs, d)
		}()
	}
	tick.Stop()
	wg.Wait()
	r := &Result{Name: wFresh, Workers: slots, Ops: polled, Errors: errs, Elapsed: time.Since(t0), Unit: "write", PerOp: 1, Durations: durs, FirstErr: firstErr}
	sortDurations(r.Durations)
	r.written = total
	r.Note = fmt.Sprintf("%d writes in %.1f s (%.0f/s); every %dth write is polled on the query gateway, every 2 ms for its first 50 ms, then every 5 ms, past 200 ms every fortieth of the wait (the poll interval bounds the error); latency = acknowledged PATCH → first read showing it; errors count writes that failed or stayed invisible for 2 s",
		total, r.Elapsed.Seconds(), float64(total)/r.Elapsed.Seconds(), freshSample)
	b.add(r)
	return nil
}

// writeAndSee patches a code's usage_limit and polls the owner's code list until it shows.
func (b *Bench) writeAndSee(ctx context.Context, au, qg, admin string, c CodeRef, limit int) (time.Duration, error) {
	return b.writeAndSeeWithin(ctx, au, qg, admin, c, limit, 2*time.Second)
}

func (b *Bench) writeAndSeeWithin(ctx context.Context, au, qg, admin string, c CodeRef, limit int, within time.Duration) (time.Duration, error) {
	if _, err := b.http.Do(ctx, http.MethodPatch, au+"/v1/referral/codes/"+c.ID.String(), admin, map[string]any{"usage_limit": limit}, nil); err != nil {
		return 0, err
	}
	acked := time.Now()
	return b.waitVisible(ctx, qg, b.token(auth.RolePlayer, b.data.Main().ID, c.Owner), acked, within, func(items []codeJSON) bool {
		for _, it := range items {
			if it.ID == c.ID && it.UsageLimit != nil && *it.UsageLimit >= limit {
				return true
			}
		}
		return false
	})
}

// waitVisible polls the caller's code list on qg until seen says yes, returning the time since from.
func (b *Bench) waitVisible(ctx context.Context, qg, tok string, from time.Time, limit time.Duration, seen func([]codeJSON) bool) (time.Duration, error) {
	return b.poll(ctx, qg+"/v1/referral/codes", tok, from, limit, func(raw []byte) bool {
		var out struct {
			Items []codeJSON `json:"items"`
		}
		return json.Unmarshal(raw, &out) == nil && seen(out.Items)
	})
}

// poll GETs url with tok until seen says yes of the answer's body, returning the time since
// from; it gives up limit after from. It polls every 2 ms for the first 50 ms, then every 5 ms
// (the interval bounds the error of the figure); past 200 ms every fortieth of the time waited
// so far (at most 100 ms), so that slow answers stay within 2.5% and many writes waiting for
// seconds do not load the Query Gateway with their polls.
func (b *Bench) poll(ctx context.Context, url, tok string, from time.Time, limit time.Duration, seen func(body []byte) bool) (time.Duration, error) {
	deadline := from.Add(limit)
	for {
		var raw json.RawMessage
		_, err := b.http.Do(ctx, http.MethodGet, url, tok, nil, &raw)
		if err == nil && seen(raw) {
			return time.Since(from), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			if err != nil {
				return 0, fmt.Errorf("not visible after %s: %w", limit, err)
			}
			return 0, fmt.Errorf("not visible after %s", limit)
		}
		switch waited := time.Since(from); {
		case waited < 50*time.Millisecond:
			time.Sleep(2 * time.Millisecond)
		case waited < 200*time.Millisecond:
			time.Sleep(5 * time.Millisecond)
		default:
			time.Sleep(min(waited/40, 100*time.Millisecond))
		}
	}
}

// freshSample: one write in freshSample is polled on the Query Gateway. Polling every write would
// load the Query Gateway with thousands of reads per second and measure that load instead.
const freshSample = 4

// settle waits until the projector has caught up with everything written so far: a probe write
// made now becomes visible on the Query Gateway.
func (b *Bench) settle(ctx context.Context) error { return b.settleOn(ctx, b.qa) }

// settleOn is settle against one Query Gateway replica.
func (b *Bench) settleOn(ctx context.Context, q *Proc) error {
	main := b.data.Main()
	c := main.HotCodes[len(main.HotCodes)-1]
	t0 := time.Now()
	limit := 900000 + int(time.Now().Unix()%90000)
	if _, err := b.writeAndSeeWithin(ctx, b.admin.URL(), q.URL(), b.token(auth.RoleTenantAdmin, main.ID, "bench_admin"), c, limit, 3*time.Minute); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	b.logf("projector caught up in %.1fs", time.Since(t0).Seconds())
	return nil
}
