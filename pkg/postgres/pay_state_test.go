package postgres_test

import (
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestCommissionStateAgreesWithDomain: phoenix_commission_state, the SQL side of the rule
// (migration 00006), answers as referral.CommissionState for every payout status the payouts
// table admits, none, and available_at before, at and after now.
func TestCommissionStateAgreesWithDomain(t *testing.T) {
	db := pgtest.DB(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, status := range append([]string{""}, referral.PayoutStatuses...) {
		for _, d := range []time.Duration{-time.Hour, -time.Microsecond, 0, time.Microsecond, 24 * time.Hour} {
			at := now.Add(d)
			var got string
			var arg any
			if status != "" {
				arg = status
			}
			if err := db.Get(&got, `SELECT phoenix_commission_state($1, $2, $3)`, at, arg, now); err != nil {
				t.Fatal(err)
			}
			if want := referral.CommissionState(at, status, now); got != want {
				t.Errorf("phoenix_commission_state(now%+v, %q) = %s, referral.CommissionState = %s", d, status, got, want)
			}
		}
	}
}
