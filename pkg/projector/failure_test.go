package projector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// qryProjector returns a projector over a fresh database and a Redis server of its own.
func qryProjector(t *testing.T) (*Projector, *redis.Client) {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), "qry-projector-test", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, rdb := cachetest.Server(t)
	return New(db, cache.New(rdb), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Config{}), rdb
}

func qryGauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

// TestQryProjectorFailuresVisible: while rounds fail (Redis unreachable) every failure is
// counted, and the backlog and lag gauges keep rising with the change log instead of showing
// the last successful round's figures; per-tenant backlog names the biggest tenants.
func TestQryProjectorFailuresVisible(t *testing.T) {
	p, _ := qryProjector(t)
	ctx := context.Background()
	qryInsertCampaign(t, p, "t1", "first")
	qryRound(t, p)
	p.lastOK = time.Now()

	// Redis goes away: rounds fail.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })
	p.cache = cache.New(dead)
	for i := range 3 {
		qryInsertCampaign(t, p, "big", "b")
		if i == 0 {
			qryInsertCampaign(t, p, "small", "s")
		}
		_, err := p.Round(ctx)
		if err == nil {
			t.Fatal("a round without Redis succeeded")
		}
		p.lastBacklog = time.Time{} // the gauges are refreshed at most once a second
		p.failed(ctx, err, i+1)
		if got, want := qryGauge(p.metrics.Backlog), float64(i+2); got != want {
			t.Fatalf("failure %d: backlog %v, want %v", i+1, got, want)
		}
		if got := qryGauge(p.metrics.TenantBacklog.WithLabelValues("big")); got != float64(i+1) {
			t.Fatalf("failure %d: big tenant's backlog %v, want %d", i+1, got, i+1)
		}
	}
	if got := qryCount(p.metrics.Failures); got != 3 {
		t.Fatalf("failures %v, want 3", got)
	}
	lag := qryGauge(p.metrics.Lag)
	time.Sleep(20 * time.Millisecond)
	p.lastBacklog = time.Time{}
	p.failed(ctx, errors.New("still down"), 4)
	if got := qryGauge(p.metrics.Lag); got <= lag {
		t.Fatalf("lag %v did not rise from %v while rounds failed", got, lag)
	}
}
