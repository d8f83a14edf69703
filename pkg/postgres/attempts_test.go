package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestReserveAttemptExact reserves 150 attempts of one subject at once against a limit of 20:
// exactly 20 get a slot. Freed slots (attempts that did not fail) can be taken again; kept ones
// (failures) cannot.
func TestReserveAttemptExact(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	lim := referral.AttemptLimit{Max: 20, Window: 10 * time.Minute}
	const n = 150
	slots := make(chan referral.Attempt, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.ReserveAttempt(ctx, lim, tenant, "player:guesser")
			var de *referral.Error
			switch {
			case err == nil:
				slots <- a
			case referral.ErrorCode(err) != referral.ERateLimited:
				t.Errorf("reserve: %v", err)
			case !errors.As(err, &de) || de.RetryAfter < 1 || de.RetryAfter > 600:
				t.Errorf("RATE_LIMITED with Retry-After %d", de.RetryAfter)
			}
		}()
	}
	wg.Wait()
	close(slots)
	var got []referral.Attempt
	for a := range slots {
		got = append(got, a)
	}
	if len(got) != lim.Max {
		t.Fatalf("%d of %d reservations got a slot, want %d", len(got), n, lim.Max)
	}
	// Five attempts did not fail, the others did: five slots come free, and only five.
	for i, a := range got {
		if err := a.Settle(ctx, i >= 5); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		_, err := s.ReserveAttempt(ctx, lim, tenant, "player:guesser")
		if i < 5 && err != nil || i == 5 && referral.ErrorCode(err) != referral.ERateLimited {
			t.Fatalf("reservation %d after settling: %v", i, err)
		}
	}
	// Other subjects and tenants have limits of their own; a zero Max disables the limit.
	if _, err := s.ReserveAttempt(ctx, lim, tenant, "ip:192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveAttempt(ctx, lim, pgtest.Tenant(t), "player:guesser"); err != nil {
		t.Fatal(err)
	}
	off, err := s.ReserveAttempt(ctx, referral.AttemptLimit{}, tenant, "player:guesser")
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Settle(ctx, false); err != nil {
		t.Fatal(err)
	}
}
