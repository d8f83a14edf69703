package referral

import (
	"math"
	"testing"
	"time"
)

func TestPeriodStart(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for period, want := range map[Period]string{"7d": "2026-03-24T12:00:00Z", "30d": "2026-03-01T12:00:00Z", "90d": "2025-12-31T12:00:00Z"} {
		if got := period.Start(now).Format(time.RFC3339); got != want {
			t.Errorf("%s: %s, want %s", period, got, want)
		}
	}
	for _, p := range []Period{PeriodAll, "", "1y"} {
		if got := p.Start(now); got != nil {
			t.Errorf("%q has a start: %v", p, got)
		}
	}
	if len(PeriodNames) != 4 || DefaultPeriod != Period30d {
		t.Errorf("periods %v, default %s", PeriodNames, DefaultPeriod)
	}
	for _, n := range PeriodNames {
		if _, ok := periodLengths[Period(n)]; !ok && Period(n) != PeriodAll {
			t.Errorf("period %s has no length", n)
		}
	}
}

func TestConversionRate(t *testing.T) {
	tests := []struct {
		successful, total int64
		want              float64
	}{
		{0, 0, 0},
		{5, 0, 0},
		{0, 7, 0},
		{7, 7, 100},
		{1, 2, 50},
		{1, 3, 33.3},
		{2, 3, 66.7},
		{7, 11, 63.6},
		{10, 14, 71.4},
		{1, 16, 6.3},   // 6.25 rounds half up
		{1, 2000, 0.1}, // 0.05 rounds half up
		{1, 2001, 0},   // 0.049… rounds down
		{3, 8, 37.5},   // exact
		{-1, 5, 0},     // clamped
		{9, 5, 100},    // clamped
		{math.MaxInt64 / 3, math.MaxInt64, 33.3},
		{math.MaxInt64, math.MaxInt64, 100},
	}
	for _, tt := range tests {
		if got := ConversionRate(tt.successful, tt.total); got != tt.want {
			t.Errorf("ConversionRate(%d, %d) = %v, want %v", tt.successful, tt.total, got, tt.want)
		}
	}
}
