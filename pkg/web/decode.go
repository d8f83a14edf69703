package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// MaxBodyBytes is the largest request body accepted (SPEC §3).
const MaxBodyBytes = 1 << 20

// ReadBody reads the request body, answering BODY_TOO_LARGE past MaxBodyBytes.
func ReadBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > MaxBodyBytes {
		return nil, referral.Errorf(referral.EBodyTooLarge, "request body is larger than 1 MiB")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, referral.Errorf(referral.EBodyTooLarge, "request body is larger than 1 MiB")
		}
		return nil, referral.Errorf(referral.EInvalidJSON, "request body could not be read")
	}
	if len(body) > MaxBodyBytes {
		return nil, referral.Errorf(referral.EBodyTooLarge, "request body is larger than 1 MiB")
	}
	return body, nil
}

// DecodeMode says how read-only fields in a body are treated.
type DecodeMode int

const (
	// RejectReadOnly answers VALIDATION_FAILED for a read-only field (POST, PATCH).
	RejectReadOnly DecodeMode = iota
	// IgnoreReadOnly drops read-only fields, so a client can PUT back what it read.
	IgnoreReadOnly
)

// Bind reads the request body and decodes it strictly into dst, a pointer to a struct with json
// tags: malformed JSON → INVALID_JSON; a non-object, an unknown field, a read-only field (per
// mode) or a value of the wrong type → VALIDATION_FAILED naming the field. Only the body is
// read: path and query parameters never reach dst.
func Bind(c echo.Context, dst any, mode DecodeMode, readOnly ...string) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	return Decode(body, dst, mode, readOnly...)
}

// Decode is Bind's decoding step over a body already read.
func Decode(body []byte, dst any, mode DecodeMode, readOnly ...string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return referral.Errorf(referral.EInvalidJSON, "request body is not valid JSON")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return referral.Invalid("body", "must be a JSON object")
	}
	known := jsonFields(reflect.TypeOf(dst))
	fe := referral.FieldErrors{}
	for k := range obj {
		switch {
		case contains(readOnly, k):
			if mode == IgnoreReadOnly {
				delete(obj, k)
				continue
			}
			fe.Add(k, "is read-only")
		case !known[k]:
			fe.Add(k, "is not a known field")
		}
	}
	if err := fe.Err(); err != nil {
		return err
	}
	for k, raw := range obj {
		field := reflect.ValueOf(dst).Elem().FieldByIndex(fieldIndex(reflect.TypeOf(dst), k))
		if err := json.Unmarshal(raw, field.Addr().Interface()); err != nil {
			fe.Add(k, typeReason(err))
		}
	}
	return fe.Err()
}

func typeReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("must be %s", jsonKind(te.Type))
	}
	var de *referral.Error
	if errors.As(err, &de) {
		for _, reason := range de.Fields {
			return reason
		}
		return de.Message
	}
	return "has an invalid value"
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type fieldInfo struct {
	names map[string]bool
	index map[string][]int
}

var fieldCache sync.Map // reflect.Type → fieldInfo

func structFields(t reflect.Type) fieldInfo {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if fi, ok := fieldCache.Load(t); ok {
		return fi.(fieldInfo)
	}
	fi := fieldInfo{names: map[string]bool{}, index: map[string][]int{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fi.names[name] = true
		fi.index[name] = f.Index
	}
	fieldCache.Store(t, fi)
	return fi
}

func jsonFields(t reflect.Type) map[string]bool { return structFields(t).names }

func fieldIndex(t reflect.Type, name string) []int { return structFields(t).index[name] }
