package queryapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/projector"
)

// qryDeployment is one deployment: its database, its Redis database number on a shared server,
// its projector and one Query Gateway with the in-process cache on.
type qryDeployment struct {
	t    *testing.T
	db   *sqlx.DB
	rdb  *redis.Client
	api  *API
	e    *echo.Echo
	proj *projector.Projector
}

func qryNewDeployment(t *testing.T, name, redisURL string, tenant string) *qryDeployment {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	d := &qryDeployment{t: t, db: pgtest.MustOpenDB(t), rdb: rdb}
	d.api, d.e, _ = qryServeAPI(t, d.db, rdb, Config{LocalTTL: time.Hour, Deployment: name})
	d.proj = projector.New(d.db, cache.New(rdb), qryLog, nil, projector.Config{Deployment: name})
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		d.api.Watch(ctx, rdb)
	}()
	t.Cleanup(func() { cancel(); <-watching })
	for deadline := time.Now().Add(5 * time.Second); !d.api.local.token().ok; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the in-process cache never subscribed")
		}
	}
	if _, err := postgres.NewStore(d.db).CreatePlayerCode(ctx, tenant, "alice", strings.ToUpper(name)+"1", nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// project runs rounds until the projector has caught up.
func (d *qryDeployment) project() {
	d.t.Helper()
	for again := true; again; {
		var err error
		if again, err = d.proj.Round(context.Background()); err != nil {
			d.t.Fatal(err)
		}
	}
}

// moments returns how many flushes and invalidations the in-process cache has seen.
func (d *qryDeployment) moments() (epoch, gen uint64) {
	d.api.local.mu.Lock()
	defer d.api.local.mu.Unlock()
	return d.api.local.epoch, d.api.local.gen
}

// TestQryDeploymentsShareRedis: two deployments on one Redis server (each its own database
// number, one tenant id in both) never see each other's invalidations — not a rebuild's, not a
// round's — while each sees its own.
func TestQryDeploymentsShareRedis(t *testing.T) {
	url, _ := cachetest.Server(t)
	tenant := pgtest.Tenant(t)
	blue := qryNewDeployment(t, "blue", url+"?db=1", tenant)
	green := qryNewDeployment(t, "green", url+"?db=2", tenant)
	reader := &qryWorld{t: t, tenant: tenant}
	codes := func(d *qryDeployment) string {
		return string(reader.read(d.e, "/v1/referral/codes", "alice", nil))
	}

	before, _ := blue.moments()
	blue.project() // a rebuild: announces every tenant on blue's channel once it is served
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if e, _ := blue.moments(); e != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("blue never saw its rebuild's announcement")
		}
	}
	blueAnswer := codes(blue)
	e0, g0 := blue.moments()
	green.project() // green's rebuild
	if _, err := postgres.NewStore(green.db).CreatePlayerCode(context.Background(), tenant, "alice", "GREEN2", nil); err != nil {
		t.Fatal(err)
	}
	green.project() // a round: announces the tenant on green's channel
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(codes(green), `"GREEN2"`); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("green never saw its own announcement: %s", codes(green))
		}
	}
	// A message of blue's own, published after green's, arrives after them on blue's
	// subscription: once blue has it, it would have had green's.
	if _, err := postgres.NewStore(blue.db).CreatePlayerCode(context.Background(), tenant, "alice", "BLUE2", nil); err != nil {
		t.Fatal(err)
	}
	if got := codes(blue); got != blueAnswer {
		t.Fatalf("blue's answer was not kept in process: %s, then %s", blueAnswer, got)
	}
	blue.project()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(codes(blue), `"BLUE2"`); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("blue never saw its own announcement: %s", codes(blue))
		}
	}
	if e1, g1 := blue.moments(); e1 != e0 || g1 != g0+1 {
		t.Errorf("blue's cache saw %d flushes and %d invalidations after its rebuild, want 0 and 1 (its own)", e1-e0, g1-g0)
	}
	if strings.Contains(codes(blue), "GREEN") || strings.Contains(codes(green), "BLUE") {
		t.Errorf("answers crossed deployments: blue %s, green %s", codes(blue), codes(green))
	}
}
