package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestEvtRefereeRevenueSaturates: an affiliate's referee_revenue grows by each event's base
// within a batch and across batches, and stops at the largest bigint instead of overflowing
// (referral.SaturatingAdd decides; storage writes the counter the engine computed).
func TestEvtRefereeRevenueSaturates(t *testing.T) {
	db := pgtest.DB(t)
	s := postgres.NewStore(db)
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	aff, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "partner", Status: referral.AffiliateActive})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplyCode(ctx, tenant, "player", aff.AffiliateCode, nil, nil); err != nil {
		t.Fatal(err)
	}
	rate := referral.Rate(0)
	if _, err := s.CreateCommissionRule(ctx, referral.CommissionRule{TenantID: tenant, Name: "r", EventType: "deposit.completed",
		CommissionField: "amount", CustomRate: &rate, CurrencyID: "EUR", Active: true}); err != nil {
		t.Fatal(err)
	}
	seq := 0
	batch := func(amounts ...int64) {
		t.Helper()
		var evs []referral.Event
		for _, a := range amounts {
			seq++
			evs = append(evs, referral.Event{TenantID: tenant, EventID: fmt.Sprintf("e%d", seq), Type: "deposit.completed",
				UserID: "player", OccurredAt: time.Now().UTC(), Payload: json.RawMessage(fmt.Sprintf(`{"amount": %d}`, a))})
		}
		if _, err := s.ProcessBatch(ctx, tenant, evs); err != nil {
			t.Fatal(err)
		}
	}
	revenue := func() int64 {
		t.Helper()
		var n int64
		if err := db.Get(&n, `SELECT referee_revenue FROM affiliates WHERE id = $1`, aff.ID); err != nil {
			t.Fatal(err)
		}
		return n
	}
	batch(5, 7)
	batch(30)
	if got := revenue(); got != 42 {
		t.Fatalf("referee_revenue = %d, want 42", got)
	}
	if _, err := db.Exec(`UPDATE affiliates SET referee_revenue = $2 WHERE id = $1`, aff.ID, int64(math.MaxInt64-50)); err != nil {
		t.Fatal(err)
	}
	batch(20, math.MaxInt64, 1)
	if got := revenue(); got != math.MaxInt64 {
		t.Fatalf("referee_revenue = %d, want %d", got, int64(math.MaxInt64))
	}
}
