package referral

import (
	"math"
	"testing"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"0", 0, true}, {"1", RateScale, true}, {"0.05", 50000, true}, {"0.123456", 123456, true},
		{"1.0", RateScale, true}, {"5e-2", 50000, true}, {"0.5E0", 500000, true}, {"1e-6", 1, true},
		{"0.100000", 100000, true}, {"-0", 0, true}, {"0.0000000", 0, true}, {".5", 500000, true},
		{"0.1234567", 0, false}, {"1.000001", 0, false}, {"2", 0, false}, {"-0.1", 0, false},
		{"", 0, false}, {"abc", 0, false}, {"1e-7", 0, false}, {"10e-1", RateScale, true},
		{"0.5e1", 0, false}, {"1e99", 0, false}, {"0x1", 0, false}, {".", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRateString(t *testing.T) {
	for r, want := range map[Rate]string{0: "0", RateScale: "1", 50000: "0.05", 123456: "0.123456", 1: "0.000001", 500000: "0.5"} {
		if got := r.String(); got != want {
			t.Errorf("Rate(%d).String() = %q, want %q", int64(r), got, want)
		}
		back, err := ParseRate(want)
		if err != nil || back != r {
			t.Errorf("round trip %q = %v, %v", want, back, err)
		}
	}
}

func TestRateApply(t *testing.T) {
	tests := []struct {
		rate Rate
		base int64
		want int64
	}{
		{50000, 5000, 250}, {50000, 19, 0}, {50000, 20, 1}, {333333, 100, 33}, {RateScale, 7, 7},
		{0, 100, 0}, {100000, 0, 0}, {1, 999999, 0}, {1, 1000000, 1},
		{999999, math.MaxInt64, 9223362813482738952}, {RateScale, math.MaxInt64, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := tt.rate.Apply(tt.base); got != tt.want {
			t.Errorf("Rate(%d).Apply(%d) = %d, want %d", int64(tt.rate), tt.base, got, tt.want)
		}
	}
}
