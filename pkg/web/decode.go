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
	"unicode/utf16"
	"unicode/utf8"

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

// Items is a JSON array whose items the caller decodes one by one, as a batch does: Decode
// checks that it is an array and leaves each item's text as it came, hostile values included, so
// that one bad item can be rejected alone.
type Items []json.RawMessage

// Decode is Bind's decoding step over a body already read. Before anything is decoded the whole
// text is checked with CheckJSON (except the items of Items fields), because encoding/json would
// silently turn invalid UTF-8 and unpaired surrogates into U+FFFD.
func Decode(body []byte, dst any, mode DecodeMode, readOnly ...string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := syntaxError(body); err != nil {
		return err
	}
	info := structFields(reflect.TypeOf(dst))
	fe := referral.FieldErrors{}
	checkText(body, "", info.items, fe)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		fe.Add("body", "must be a JSON object")
		return fe.Err()
	}
	for k := range obj {
		switch {
		case contains(readOnly, k):
			if mode == IgnoreReadOnly {
				delete(obj, k)
				continue
			}
			fe.Add(k, "is read-only")
		case !info.names[k]:
			fe.Add(k, unknownReason(info, k))
		}
	}
	if err := fe.Err(); err != nil {
		return err
	}
	for k, raw := range obj {
		field := reflect.ValueOf(dst).Elem().FieldByIndex(info.index[k])
		if err := json.Unmarshal(raw, field.Addr().Interface()); err != nil {
			fe.Add(k, typeReason(err))
		}
	}
	return fe.Err()
}

// syntaxError returns INVALID_JSON saying where body stops being JSON, or nil when it is JSON.
func syntaxError(body []byte) error {
	if json.Valid(body) {
		return nil
	}
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.Unmarshal(body, &raw); !errors.As(err, &se) {
		return referral.Errorf(referral.EInvalidJSON, "request body is not valid JSON")
	}
	// Offset counts the bytes read when the error was found, the offending one included.
	at := min(max(int(se.Offset)-1, 0), len(body))
	line := 1 + bytes.Count(body[:at], []byte{'\n'})
	col := at - bytes.LastIndexByte(body[:at], '\n')
	return referral.Errorf(referral.EInvalidJSON, "request body is not valid JSON: %s at line %d, column %d (byte offset %d)",
		se, line, col, at)
}

// unknownReason explains an unknown key, pointing at the field it differs from only in case:
// keys match exactly, unlike encoding/json's case-insensitive matching.
func unknownReason(info fieldInfo, key string) string {
	for name := range info.names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("is not a known field (field names are case-sensitive: did you mean %q?)", name)
		}
	}
	return "is not a known field"
}

// Reasons CheckJSON gives for the values no request may carry.
const (
	reasonNUL       = "must not contain NUL (\\u0000)"
	reasonUTF8      = "must be valid UTF-8"
	reasonSurrogate = "must not contain an unpaired UTF-16 surrogate escape"
	reasonNumber    = "must be a finite number of at most 1000 characters with an exponent within ±1000"
)

// CheckJSON checks raw, one JSON text, for the values no request may carry anywhere (SPEC §3):
// a string or key holding NUL, invalid UTF-8 or an unpaired UTF-16 surrogate escape, and a number
// referral.StorableNumber refuses. It works on the text because encoding/json replaces invalid
// UTF-8 and unpaired surrogates with U+FFFD while decoding, which would merge distinct values. It
// returns nil or VALIDATION_FAILED naming each bad value by its path under field (dotted keys,
// [n] for array items); malformed text is VALIDATION_FAILED for field.
func CheckJSON(raw []byte, field string) error {
	if !json.Valid(raw) {
		return referral.Invalid(field, "must be valid JSON")
	}
	fe := referral.FieldErrors{}
	checkText(raw, field, nil, fe)
	return fe.Err()
}

// checkText walks data, valid JSON, into fe; the values of the top-level members named in skip
// are not checked (Items fields).
func checkText(data []byte, field string, skip map[string]bool, fe referral.FieldErrors) {
	w := textWalker{data: data, field: field, skip: skip, fe: fe}
	w.value()
}

// textWalker walks a valid JSON text keeping the path to the current value. encoding/json caps
// nesting at 10000 levels before the walk starts, which bounds the recursion.
type textWalker struct {
	data  []byte
	i     int
	field string
	path  []pathSeg
	skip  map[string]bool
	quiet int // > 0 inside a skipped value
	fe    referral.FieldErrors
}

// pathSeg is one step of a path: an object key (its JSON text, quotes excluded) or an index.
type pathSeg struct {
	key   []byte
	index int
}

func (w *textWalker) report(reason string) {
	if w.quiet == 0 {
		w.fe.Add(w.name(), reason)
	}
}

// name renders the current path: field, keys joined with dots, indexes as [n]; "body" when empty.
func (w *textWalker) name() string {
	var b strings.Builder
	b.WriteString(w.field)
	for _, s := range w.path {
		if s.key == nil {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(keyText(s.key))
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// keyText decodes a key's JSON text for naming it in an error (only there may U+FFFD appear).
func keyText(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+string(raw)+`"`), &s); err != nil {
		return string(raw)
	}
	return s
}

func (w *textWalker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

func (w *textWalker) value() {
	w.space()
	switch w.data[w.i] {
	case '{':
		w.object()
	case '[':
		w.array()
	case '"':
		if reason := w.str(); reason != "" {
			w.report(reason)
		}
	case 't', 'n':
		w.i += 4
	case 'f':
		w.i += 5
	default:
		start := w.i
		for w.i < len(w.data) && strings.IndexByte("+-.0123456789eE", w.data[w.i]) >= 0 {
			w.i++
		}
		if !referral.StorableNumber(string(w.data[start:w.i])) {
			w.report(reasonNumber)
		}
	}
}

func (w *textWalker) object() {
	top := len(w.path) == 0
	w.i++ // {
	w.space()
	if w.data[w.i] == '}' {
		w.i++
		return
	}
	for {
		w.space()
		start := w.i
		reason := w.str()
		w.path = append(w.path, pathSeg{key: w.data[start+1 : w.i-1]})
		if reason != "" {
			w.report("key " + reason)
		}
		w.space()
		w.i++ // :
		skipped := top && w.skip[keyText(w.path[0].key)]
		if skipped {
			w.quiet++
		}
		w.value()
		if skipped {
			w.quiet--
		}
		w.path = w.path[:len(w.path)-1]
		w.space()
		w.i++ // , or }
		if w.data[w.i-1] == '}' {
			return
		}
	}
}

func (w *textWalker) array() {
	w.i++ // [
	w.space()
	if w.data[w.i] == ']' {
		w.i++
		return
	}
	for n := 0; ; n++ {
		w.path = append(w.path, pathSeg{index: n})
		w.value()
		w.path = w.path[:len(w.path)-1]
		w.space()
		w.i++ // , or ]
		if w.data[w.i-1] == ']' {
			return
		}
	}
}

// str moves past the string at w.i and returns why it may not be stored, or "".
func (w *textWalker) str() string {
	reason := ""
	bad := func(r string) {
		if reason == "" {
			reason = r
		}
	}
	w.i++ // opening quote
	for {
		c := w.data[w.i]
		switch {
		case c == '"':
			w.i++
			return reason
		case c == '\\' && w.data[w.i+1] == 'u':
			r := hexRune(w.data[w.i+2 : w.i+6])
			w.i += 6
			switch {
			case r == 0:
				bad(reasonNUL)
			case utf16.IsSurrogate(r):
				if r < 0xdc00 && w.lowSurrogateNext() {
					w.i += 6
					continue
				}
				bad(reasonSurrogate)
			}
		case c == '\\':
			w.i += 2
		case c < utf8.RuneSelf:
			w.i++
		default:
			r, size := utf8.DecodeRune(w.data[w.i:])
			if r == utf8.RuneError && size == 1 {
				bad(reasonUTF8)
			}
			w.i += size
		}
	}
}

// lowSurrogateNext reports whether a \uDC00–\uDFFF escape follows at w.i.
func (w *textWalker) lowSurrogateNext() bool {
	d := w.data[w.i:]
	if len(d) < 6 || d[0] != '\\' || d[1] != 'u' {
		return false
	}
	r := hexRune(d[2:6])
	return r >= 0xdc00 && r <= 0xdfff
}

// hexRune decodes the four hex digits of a \u escape (valid JSON guarantees them).
func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
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
	items map[string]bool // fields of type Items (or *Items)
}

var fieldCache sync.Map // reflect.Type → fieldInfo

var itemsType = reflect.TypeOf(Items(nil))

func structFields(t reflect.Type) fieldInfo {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if fi, ok := fieldCache.Load(t); ok {
		return fi.(fieldInfo)
	}
	fi := fieldInfo{names: map[string]bool{}, index: map[string][]int{}, items: map[string]bool{}}
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
		fi.items[name] = f.Type == itemsType || f.Type == reflect.PointerTo(itemsType)
	}
	fieldCache.Store(t, fi)
	return fi
}
