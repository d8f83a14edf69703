package referral

import (
	"testing"
	"time"
)

func TestCommissionState(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		available time.Time
		payout    string
		want      string
	}{
		{now.Add(time.Second), "", CommissionPending},
		{now, "", CommissionAvailable},
		{now.Add(-time.Hour), "", CommissionAvailable},
		{now.Add(-time.Hour), PayoutPending, CommissionInPayout},
		{now.Add(-time.Hour), PayoutPaid, CommissionPaid},
		{now.Add(-time.Hour), PayoutFailed, CommissionAvailable},
		{now.Add(time.Hour), PayoutFailed, CommissionPending},
	} {
		if got := CommissionState(c.available, c.payout, now); got != c.want {
			t.Errorf("CommissionState(%v, %q) = %s, want %s", c.available.Sub(now), c.payout, got, c.want)
		}
	}
}

func TestAvailableAt(t *testing.T) {
	at := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	if got := AvailableAt(at, 30, 5); !got.Equal(at.AddDate(0, 0, 30)) {
		t.Errorf("positive row: %v", got)
	}
	if got := AvailableAt(at, 30, -5); !got.Equal(at) {
		t.Errorf("negative row is available at once: %v", got)
	}
	if got := AvailableAt(at, 0, 5); !got.Equal(at) {
		t.Errorf("no hold: %v", got)
	}
}

func TestPayoutPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     PayoutPolicy
		field string
	}{
		{"defaults", DefaultPayoutPolicy("t"), ""},
		{"bounds", PayoutPolicy{HoldDays: 365, MinimumPayout: []Wallet{{"EUR", 0}, {"USD", 1000}}}, ""},
		{"hold too long", PayoutPolicy{HoldDays: 366}, "hold_days"},
		{"negative hold", PayoutPolicy{HoldDays: -1}, "hold_days"},
		{"negative minimum", PayoutPolicy{MinimumPayout: []Wallet{{"EUR", -1}}}, "minimum_payout"},
		{"currency twice", PayoutPolicy{MinimumPayout: []Wallet{{"EUR", 1}, {"EUR", 2}}}, "minimum_payout"},
		{"empty currency", PayoutPolicy{MinimumPayout: []Wallet{{"", 1}}}, "minimum_payout"},
	} {
		err := c.p.Validate()
		var de *Error
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && (!asError(err, &de) || de.Fields[c.field] == ""):
			t.Errorf("%s: %v, want a %s failure", c.name, err, c.field)
		}
	}
	p := PayoutPolicy{MinimumPayout: []Wallet{{"EUR", 500}}}
	if p.Minimum("EUR") != 500 || p.Minimum("USD") != 0 {
		t.Errorf("Minimum: %d %d", p.Minimum("EUR"), p.Minimum("USD"))
	}
}

func TestCheckPayoutTransition(t *testing.T) {
	for _, from := range PayoutStatuses {
		for _, to := range PayoutStatuses {
			ok := from == PayoutPending && to != PayoutPending
			if err := CheckPayoutTransition(from, to); (err == nil) != ok || (err != nil && ErrorCode(err) != EInvalidTransition) {
				t.Errorf("%s → %s: %v", from, to, err)
			}
		}
	}
}

func TestDecidePayout(t *testing.T) {
	for _, c := range []struct {
		name    string
		c       PayoutCandidate
		minimum int64
		reason  string
	}{
		{"pays", PayoutCandidate{Status: AffiliateActive, Net: 100, Rows: 3}, 100, ""},
		{"below minimum", PayoutCandidate{Status: AffiliateActive, Net: 99, Rows: 3}, 100, SkipBelowMinimum},
		{"net zero", PayoutCandidate{Status: AffiliateActive, Net: 0, Rows: 2}, 0, SkipNothingAvailable},
		{"net negative", PayoutCandidate{Status: AffiliateActive, Net: -5, Rows: 1}, 0, SkipNothingAvailable},
		{"no rows", PayoutCandidate{Status: AffiliateActive}, 0, SkipNothingAvailable},
		{"suspended", PayoutCandidate{Status: AffiliateSuspended, Net: 100, Rows: 1}, 0, SkipNotActive},
		{"pending", PayoutCandidate{Status: AffiliatePending, Net: 100, Rows: 1}, 0, SkipNotActive},
		{"deleted, listed", PayoutCandidate{Status: AffiliateSuspended, Deleted: true, Net: 100, Rows: 1}, 0, ""},
	} {
		pay, reason := DecidePayout(c.c, c.minimum)
		if pay != (c.reason == "") || reason != c.reason {
			t.Errorf("%s: pay %v reason %q, want %q", c.name, pay, reason, c.reason)
		}
	}
}

func TestBalances(t *testing.T) {
	got := Balances([]StateSum{
		{"EUR", CommissionPending, 100, 0}, {"EUR", CommissionAvailable, -20, 30},
		{"USD", CommissionPaid, 7, 0}, {"EUR", CommissionInPayout, 50, 0}, {"EUR", CommissionPaid, 5, 1},
	})
	want := []Balance{{"EUR", 100, -20, 50, 5, 31}, {"USD", 0, 0, 0, 7, 0}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Balances = %+v, want %+v", got, want)
	}
}
