// Package apishape holds the public JSON shapes both gateways answer with: one Go type per API
// object of SPEC §3–§6 and of the OpenAPI documents (pkg/adminapi/openapi.yaml,
// pkg/queryapi/openapi.yaml), and the named converters from the domain types of pkg/referral.
//
// The Query Gateway's read model stores the same types in Redis, so a hot read renders what it
// read, and a field is added in one place. A test checks every type against the matching schema
// of both OpenAPI documents.
//
// The package imports only the domain: storage, the read model and the HTTP packages import it,
// never the other way round.
package apishape

import (
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Time is a timestamp rendered as RFC 3339 UTC with "Z" and at most microsecond precision.
type Time time.Time

// TimeLayout renders times the way every response carries them.
const TimeLayout = "2006-01-02T15:04:05.999999Z"

// FormatTime renders t as TimeLayout in UTC, truncated to microseconds.
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(TimeLayout)
}

// MarshalJSON renders the time per TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + FormatTime(time.Time(t)) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var tt time.Time
	if err := tt.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = Time(tt.UTC().Truncate(time.Microsecond))
	return nil
}

// TimePtr converts an optional time (nil stays nil, rendered null).
func TimePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}

// Rate is a rate as an exact JSON number from 0 to 1 with at most six decimals (SPEC §4.6).
type Rate referral.Rate

// MarshalJSON writes the shortest exact decimal.
func (r Rate) MarshalJSON() ([]byte, error) { return []byte(referral.Rate(r).String()), nil }

// UnmarshalJSON reads a JSON number exactly; other JSON types and out-of-range values are
// VALIDATION_FAILED.
func (r *Rate) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "" || s[0] == '"' || s == "null" || s == "true" || s == "false" || s[0] == '{' || s[0] == '[' {
		return referral.Invalid("rate", "must be a number from 0 to 1 with at most 6 decimal places")
	}
	v, err := referral.ParseRate(s)
	if err != nil {
		return referral.Invalid("rate", err.Error())
	}
	*r = Rate(v)
	return nil
}

// ratePtr converts an optional rate (nil stays nil, rendered null).
func ratePtr(r *referral.Rate) *Rate {
	if r == nil {
		return nil
	}
	v := Rate(*r)
	return &v
}

// List is the envelope of every paginated list (SPEC §3).
type List[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// Items is the envelope of an unpaginated list.
type Items[T any] struct {
	Items []T `json:"items"`
}

// Slice converts each element of in with conv; the result is never nil, so an empty list
// renders as [] and not null.
func Slice[T, J any](in []T, conv func(T) J) []J {
	out := make([]J, 0, len(in))
	for _, v := range in {
		out = append(out, conv(v))
	}
	return out
}

// ErrorBody is the error envelope of SPEC §3, the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of the error envelope: an error code, a human-readable message and,
// for VALIDATION_FAILED, the reason per field.
type ErrorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// Health is the answer of the health and readiness probes.
type Health struct {
	Status string `json:"status"`
}

// NewErrorDetail converts a domain error to the inside of the error envelope.
func NewErrorDetail(e *referral.Error) ErrorDetail {
	return ErrorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields}
}
