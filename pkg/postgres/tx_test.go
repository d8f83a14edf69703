package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestTxRetriesRealDeadlock provokes a real deadlock between two write transactions (each holds
// one advisory lock and waits for the other's): PostgreSQL aborts one, the helper reruns it, and
// both succeed.
func TestTxRetriesRealDeadlock(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	ctx := context.Background()
	key := time.Now().UnixNano()
	var runs atomic.Int32
	var holding sync.WaitGroup
	holding.Add(2)
	tx := func(first, second int64) func(tx *sqlx.Tx) error {
		var once sync.Once
		return func(tx *sqlx.Tx) error {
			runs.Add(1)
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, first); err != nil {
				return err
			}
			// Only the first run waits for the other transaction to hold its lock: a rerun
			// finds the way free once the winner commits.
			once.Do(func() { holding.Done(); holding.Wait() })
			_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, second)
			return err
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- s.TxWrite(ctx, tx(key, key+1)) }()
	go func() { errs <- s.TxWrite(ctx, tx(key+1, key)) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("transaction failed: %v", err)
		}
	}
	if n := runs.Load(); n != 3 {
		t.Fatalf("%d runs, want 3 (the deadlock's victim ran twice)", n)
	}
}

func TestTxRetryIsBounded(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	ctx := context.Background()
	for _, code := range []pq.ErrorCode{"40001", "40P01"} {
		runs := 0
		err := s.TxWrite(ctx, func(tx *sqlx.Tx) error {
			runs++
			return &pq.Error{Code: code}
		})
		var pe *pq.Error
		if runs != 5 || referral.ErrorCode(err) != referral.EUnavailable || !errors.As(err, &pe) || pe.Code != code {
			t.Fatalf("%s: %d runs, error %v; want 5 runs, UNAVAILABLE wrapping the PostgreSQL error", code, runs, err)
		}
	}
	// Any other error ends the transaction at once.
	runs := 0
	err := s.TxWrite(ctx, func(tx *sqlx.Tx) error {
		runs++
		return &pq.Error{Code: "23505"}
	})
	if runs != 1 || err == nil {
		t.Fatalf("unique violation: %d runs, error %v", runs, err)
	}
	// A cancelled context stops the retries.
	cctx, cancel := context.WithCancel(ctx)
	runs = 0
	err = s.TxWrite(cctx, func(tx *sqlx.Tx) error {
		runs++
		cancel()
		return &pq.Error{Code: "40P01"}
	})
	if runs != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %d runs, error %v", runs, err)
	}
}

// TestTxSignalsWritesOnly checks that only committed writes wake the change notifier: reads,
// including failed ones, and failed writes never do.
func TestTxSignalsWritesOnly(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	code, err := s.CreateAdminCode(ctx, referral.Code{TenantID: tenant, Code: "SIGNAL", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s.TakeChangeSignal() {
		t.Fatal("a committed write did not signal")
	}
	reads := map[string]func() error{
		"GetCode": func() error { _, err := s.GetCode(ctx, tenant, code.ID); return err },
		"ListCodes": func() error {
			_, _, err := s.ListCodes(ctx, tenant, referral.CodeFilter{Limit: 10})
			return err
		},
		"CodeClaims": func() error { _, _, _, err := s.CodeClaims(ctx, tenant, code.ID, 10, 0); return err },
		"GetCampaign": func() error {
			_, err := s.GetCampaign(ctx, tenant, uuid.New())
			return ignoreNotFound(err)
		},
		"ListCampaigns": func() error {
			_, _, err := s.ListCampaigns(ctx, tenant, referral.CampaignFilter{Limit: 10})
			return err
		},
		"GetAffiliate": func() error { _, err := s.GetAffiliate(ctx, tenant, uuid.New()); return ignoreNotFound(err) },
		"ListAffiliates": func() error {
			_, _, err := s.ListAffiliates(ctx, tenant, referral.AffiliateFilter{Limit: 10})
			return err
		},
		"GetReferral": func() error { _, err := s.GetReferral(ctx, tenant, uuid.New()); return ignoreNotFound(err) },
		"ListReferrals": func() error {
			_, _, err := s.ListReferrals(ctx, tenant, referral.ReferralFilter{Limit: 10})
			return err
		},
		"ReferralStats": func() error { _, err := s.ReferralStats(ctx, tenant, referral.PeriodAll, nil); return err },
		"Leaderboard":   func() error { _, err := s.Leaderboard(ctx, tenant, referral.PeriodAll, 10); return err },
		"ListTiers": func() error {
			_, _, err := s.ListTiers(ctx, tenant, referral.TierFilter{Limit: 10})
			return err
		},
		"ListCommissionRules": func() error {
			_, _, err := s.ListCommissionRules(ctx, tenant, referral.CommissionRuleFilter{Limit: 10})
			return err
		},
		"GetHierarchyPolicy": func() error { _, err := s.GetHierarchyPolicy(ctx, tenant); return ignoreNotFound(err) },
		"ListRewards": func() error {
			_, _, err := s.ListRewards(ctx, tenant, referral.RewardLedgerFilter{Limit: 10})
			return err
		},
		"ListCommissions": func() error {
			_, _, err := s.ListCommissions(ctx, tenant, referral.CommissionLedgerFilter{Limit: 10})
			return err
		},
		"Simulate": func() error {
			_, err := s.Simulate(ctx, referral.Event{TenantID: tenant, EventID: "sim", Type: "deposit.completed",
				UserID: "nobody", OccurredAt: time.Now()})
			return err
		},
		"failed write": func() error {
			_, err := s.CreateAdminCode(ctx, referral.Code{TenantID: tenant, Code: "SIGNAL", Active: true})
			if referral.ErrorCode(err) != referral.ECodeTaken {
				return errors.Join(errors.New("want CODE_TAKEN"), err)
			}
			return nil
		},
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.TakeChangeSignal() {
			t.Errorf("%s signalled a change", name)
		}
	}
}

func ignoreNotFound(err error) error {
	if referral.ErrorCode(err) == referral.ENotFound {
		return nil
	}
	return err
}
