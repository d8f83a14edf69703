package referral

import (
	"errors"
	"math/bits"
	"strconv"
	"strings"
)

// RateScale is the number of rate units in 1: rates carry at most six decimal places.
const RateScale = 1_000_000

// Rate is a fraction between 0 and 1 held exactly as millionths (0.05 is Rate(50000)).
type Rate int64

var errRate = errors.New("must be a number from 0 to 1 with at most 6 decimal places")

// ParseRate parses a decimal literal such as "0.05", "1", "0.123456" or "5e-2" exactly.
// Values outside 0–1 or with more than six decimal places are rejected.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '-' || s[0] == '+' {
		if strings.HasPrefix(s, "-") && isZero(s[1:]) {
			return 0, nil
		}
		return 0, errRate
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e < -30 || e > 30 {
			return 0, errRate
		}
		mant, exp = s[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" {
		return 0, errRate
	}
	digits := intPart + frac
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errRate
		}
	}
	// value = digits × 10^(exp - len(frac)); scale to millionths.
	shift := exp - len(frac) + 6
	digits = strings.TrimLeft(digits, "0")
	if shift < 0 {
		cut := len(digits) + shift
		if cut < 0 {
			cut = 0
		}
		if strings.Trim(digits[cut:], "0") != "" {
			return 0, errRate
		}
		digits = digits[:cut]
	} else {
		if len(digits) > 0 && len(digits)+shift > 7 {
			return 0, errRate
		}
		if len(digits) > 0 {
			digits += strings.Repeat("0", shift)
		}
	}
	if digits == "" {
		return 0, nil
	}
	if len(digits) > 7 {
		return 0, errRate
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v > RateScale {
		return 0, errRate
	}
	return Rate(v), nil
}

func isZero(s string) bool {
	r, err := ParseRate(s)
	return err == nil && r == 0
}

// String formats the rate as the shortest exact decimal ("0.05", "1", "0").
func (r Rate) String() string {
	if r%RateScale == 0 {
		return strconv.FormatInt(int64(r)/RateScale, 10)
	}
	frac := strings.TrimRight(strconv.FormatInt(int64(r)%RateScale+RateScale, 10)[1:], "0")
	return strconv.FormatInt(int64(r)/RateScale, 10) + "." + frac
}

// Apply returns floor(base × r) computed exactly in integers; base must be ≥ 0.
// The result never exceeds base, so it cannot overflow.
func (r Rate) Apply(base int64) int64 {
	if base <= 0 || r <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(base), uint64(r))
	q, _ := bits.Div64(hi, lo, RateScale)
	return int64(q)
}
