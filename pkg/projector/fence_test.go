package projector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/cache"
)

// TestQryProjectorDeposedLeader: a replica that still believes it leads after another took over
// (a higher term) has every write refused — documents of a tenant its successor wrote, and the
// position — so it cannot overwrite its successor's work; it learns so from ErrFenced.
func TestQryProjectorDeposedLeader(t *testing.T) {
	old, rdb := qryProjector(t)
	ctx := context.Background()
	old.term = 100
	qryInsertCampaign(t, old, "t1", "first")
	qryRound(t, old)

	next := New(old.db, cache.New(rdb), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Config{})
	next.term = 200
	qryInsertCampaign(t, next, "t1", "second")
	qryRound(t, next)
	want := qryCampaigns(t, rdb, "t1")
	pos, _, err := next.cache.Position(ctx)
	if err != nil || pos.Term != 200 {
		t.Fatalf("successor's position %+v, %v", pos, err)
	}

	// The deposed replica's round over t1 is refused as a whole.
	if _, err := old.db.Exec(`UPDATE campaigns SET name = 'stale' WHERE name = 'first'`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Round(ctx); !errors.Is(err, cache.ErrFenced) {
		t.Fatalf("deposed round over t1: %v, want ErrFenced", err)
	}
	if got := qryCampaigns(t, rdb, "t1"); got != want {
		t.Fatalf("deposed replica overwrote t1: %s", got)
	}
	// A tenant the successor never wrote takes the deposed writes (they are recomputed from
	// PostgreSQL, as the successor's would be), but its position is refused.
	qryRound(t, next)
	if pos, _, err = next.cache.Position(ctx); err != nil {
		t.Fatal(err)
	}
	qryInsertCampaign(t, old, "t2", "other")
	if _, err := old.Round(ctx); !errors.Is(err, cache.ErrFenced) {
		t.Fatalf("deposed round over t2: %v, want ErrFenced", err)
	}
	if got, _, _ := next.cache.Position(ctx); got != pos {
		t.Fatalf("position after the deposed round: %+v", got)
	}
	// The successor goes on undisturbed.
	qryRound(t, next)
	if got := qryCampaigns(t, rdb, "t2"); !strings.Contains(got, "other") {
		t.Fatalf("t2 campaigns %s", got)
	}
	if got := qryCount(next.metrics.Rebuilds); got != 0 {
		t.Fatalf("successor rebuilt %v times", got)
	}
}
