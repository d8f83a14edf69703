package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// refClock is a settable clock for Store.Now.
type refClock struct{ t time.Time }

func (c *refClock) now() time.Time { return c.t }

func refStore(t *testing.T) (*postgres.Store, *refClock, string) {
	t.Helper()
	s := postgres.NewStore(pgtest.DB(t))
	clock := &refClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s.Now = clock.now
	return s, clock, pgtest.Tenant(t)
}

func TestRefStoreExpiryBoundary(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	at := clock.t
	later := at.Add(time.Microsecond)
	for code, exp := range map[string]time.Time{"ENDSNOW": at, "ENDSLATER": later} {
		if _, err := s.CreateAdminCode(ctx, referral.Code{TenantID: tenant, Code: code, Active: true, ExpiresAt: &exp}); err != nil {
			t.Fatal(err)
		}
	}
	// A code is expired from its expires_at on.
	if _, _, err := s.ApplyCode(ctx, tenant, "p1", "ENDSNOW", nil, nil); referral.ErrorCode(err) != referral.ECodeExpired {
		t.Fatalf("apply at expires_at: %v, want CODE_EXPIRED", err)
	}
	ref, _, err := s.ApplyCode(ctx, tenant, "p1", "ENDSLATER", nil, nil)
	if err != nil {
		t.Fatalf("apply before expires_at: %v", err)
	}
	if !ref.CreatedAt.Equal(at) || string(ref.Metadata) != "{}" || ref.ReferrerID != nil || ref.Status != referral.StatusPending {
		t.Fatalf("referral = %+v", ref)
	}
}

func TestRefStoreStatsPeriods(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	now := clock.t
	if _, err := s.CreatePlayerCode(ctx, tenant, "owner", "OWNER1", nil); err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	// Referrals created exactly at, just inside and just outside the 7- and 30-day bounds.
	ages := []time.Duration{0, 7 * day, 7*day + time.Microsecond, 30 * day, 30*day + time.Microsecond, 400 * day}
	for i, age := range ages {
		clock.t = now.Add(-age)
		if _, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("p%d", i), "OWNER1", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	clock.t = now
	for _, tt := range []struct {
		period referral.Period
		want   int64
	}{{referral.Period7d, 2}, {referral.Period30d, 4}, {referral.Period90d, 5}, {referral.PeriodAll, 6}} {
		st, err := s.ReferralStats(ctx, tenant, tt.period, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != tt.want || st.Pending != tt.want || st.Successful != 0 || st.Rejected != 0 {
			t.Errorf("period %v: %+v, want total %d", tt.period, st, tt.want)
		}
		board, err := s.Leaderboard(ctx, tenant, tt.period, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(board) != 1 || board[0] != (referral.LeaderboardEntry{Rank: 1, UserID: "owner", Total: tt.want}) {
			t.Errorf("period %v: leaderboard %+v", tt.period, board)
		}
	}
	codes, total, err := s.ListCodes(ctx, tenant, referral.CodeFilter{Limit: 10})
	if err != nil || total != 1 {
		t.Fatalf("ListCodes: %v, %d", err, total)
	}
	if c := codes[0]; c.Uses != len(ages) {
		t.Fatalf("uses = %d, want %d", codes[0].Uses, len(ages))
	}
}
