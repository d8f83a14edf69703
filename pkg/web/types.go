package web

import (
	"bytes"
	"encoding/json"
	"time"
)

// Opt is an optional JSON field that tells "absent" from "null" from a value, for PATCH bodies
// and for fields whose omission means "default".
type Opt[T any] struct {
	Set   bool // the key was present
	Null  bool // the key was present with null
	Value T
}

// UnmarshalJSON records presence; json calls it only for keys present in the object.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Ptr returns nil when the field is absent or null, else a pointer to its value.
func (o Opt[T]) Ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}

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

// TimePtr converts an optional time for a response (nil stays nil → null).
func TimePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}

// List is the envelope of every paginated list (SPEC §3).
type List[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}
