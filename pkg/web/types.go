package web

import (
	"bytes"
	"encoding/json"
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
