package referral

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
)

// CodeAlphabet is the alphabet of generated codes: no 0/O or 1/I, which readers confuse.
const CodeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// GeneratedCodeLength is the length of a generated code.
const GeneratedCodeLength = 8

// Limits on codes (§4.2).
const (
	// MaxPlayerCodes is how many active player-created codes one player may own.
	MaxPlayerCodes = 10
	// MaxUsageLimit is the largest usage_limit a code may have.
	MaxUsageLimit = 1_000_000
)

var codePattern = regexp.MustCompile(`^[A-Z0-9_-]{3,32}$`)

// NormalizeCode upper-cases a code and checks it is 3–32 characters of [A-Z0-9_-].
// It returns the normalised code, or a VALIDATION_FAILED error for field.
func NormalizeCode(field, code string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if !codePattern.MatchString(c) {
		return "", Invalid(field, "must be 3-32 characters of A-Z, 0-9, _ and -")
	}
	return c, nil
}

// GenerateCode returns a random code of GeneratedCodeLength characters drawn uniformly from
// CodeAlphabet with crypto/rand.
func GenerateCode() (string, error) {
	// len(CodeAlphabet) is 32, so the low five bits of a random byte pick uniformly.
	var buf [GeneratedCodeLength]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	for i, b := range buf {
		buf[i] = CodeAlphabet[b&31]
	}
	return string(buf[:]), nil
}

// ReferralURL renders a referral link from a template containing {code}; an empty template
// yields "".
func ReferralURL(template, code string) string {
	if template == "" {
		return ""
	}
	return strings.ReplaceAll(template, "{code}", code)
}
