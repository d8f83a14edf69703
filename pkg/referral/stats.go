package referral

import (
	"math/bits"
	"time"
)

// Period is the window of a stats or leaderboard read (§4.4): the last 7, 30 or 90 days up to
// now, or all time.
type Period string

// The periods a read may ask for.
const (
	Period7d  Period = "7d"
	Period30d Period = "30d"
	Period90d Period = "90d"
	PeriodAll Period = "all"
	// DefaultPeriod is the period of a read that names none.
	DefaultPeriod = Period30d
)

// PeriodNames lists the periods' names in the contract's order, for parsing a period parameter
// and for keeping one document per period.
var PeriodNames = []string{string(Period7d), string(Period30d), string(Period90d), string(PeriodAll)}

var periodLengths = map[Period]time.Duration{
	Period7d:  7 * 24 * time.Hour,
	Period30d: 30 * 24 * time.Hour,
	Period90d: 90 * 24 * time.Hour,
}

// Start returns the start of the period ending at now: nil for all time, and for a name that is
// not a period.
func (p Period) Start(now time.Time) *time.Time {
	d, ok := periodLengths[p]
	if !ok {
		return nil
	}
	t := now.Add(-d)
	return &t
}

// ConversionRate is successful/total×100 rounded half up to one decimal (§4.4), 0 when total is
// 0. It is computed in integers, so 1 of 3 gives exactly 33.3; successful is taken within
// 0..total.
func ConversionRate(successful, total int64) float64 {
	if total <= 0 {
		return 0
	}
	successful = min(max(successful, 0), total)
	// tenths = floor((successful×1000 + total/2) / total) = (successful×2000 + total) / (2×total),
	// in 128 bits: neither product overflows, and the quotient is at most 1000.
	hi, lo := bits.Mul64(uint64(successful), 2000)
	lo, carry := bits.Add64(lo, uint64(total), 0)
	tenths, _ := bits.Div64(hi+carry, lo, 2*uint64(total))
	return float64(tenths) / 10
}
