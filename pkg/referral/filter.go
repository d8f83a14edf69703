package referral

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Limits on filters, so a stored filter stays cheap to evaluate on every event.
const (
	MaxFilterConditions = 32
	MaxFilterInList     = 100
	MaxFilterBytes      = 16 << 10
	MaxPathSegments     = 8
)

var filterOps = map[string]bool{"eq": true, "ne": true, "gt": true, "gte": true, "lt": true, "lte": true, "in": true}

// opList names the operators in error messages.
const opList = "eq, ne, gt, gte, lt, lte, in"

// Filter is a parsed qualifying_filter or event_filter: payload paths mapped to conditions, all
// of which must hold. A condition is a literal that is not an object (JSON equality) or an
// operator object whose keys are all operators. The nil *Filter matches every payload.
type Filter struct {
	raw   json.RawMessage
	conds []filterCond
}

type filterCond struct {
	path []string
	ops  []filterOp
}

type filterOp struct {
	name  string
	value any   // decoded with UseNumber
	list  []any // for "in"
}

// ParseFilter validates a filter given as JSON. JSON null (or empty input) yields a nil filter
// that matches everything. Errors are VALIDATION_FAILED for field.
func ParseFilter(field string, raw []byte) (*Filter, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > MaxFilterBytes {
		return nil, Invalid(field, "filter is too large")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, Invalid(field, "must be null or an object of path to condition")
	}
	if len(top) > MaxFilterConditions {
		return nil, Invalid(field, fmt.Sprintf("at most %d conditions", MaxFilterConditions))
	}
	paths := make([]string, 0, len(top))
	for p := range top {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	f := &Filter{}
	for _, p := range paths {
		segs := strings.Split(p, ".")
		if len(segs) > MaxPathSegments {
			return nil, Invalid(field, fmt.Sprintf("path %q is deeper than %d segments", p, MaxPathSegments))
		}
		for _, s := range segs {
			if s == "" {
				return nil, Invalid(field, fmt.Sprintf("path %q has an empty segment", p))
			}
		}
		ops, err := parseCondition(top[p])
		if err != nil {
			return nil, Invalid(field, fmt.Sprintf("condition for %q: %v", p, err))
		}
		f.conds = append(f.conds, filterCond{path: segs, ops: ops})
	}
	canon, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return nil, Invalid(field, "must be valid JSON")
	}
	f.raw = canon
	return f, nil
}

func parseCondition(raw json.RawMessage) ([]filterOp, error) {
	v, err := decodeJSONValue(raw)
	if err != nil {
		return nil, err
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return []filterOp{{name: "eq", value: v}}, nil
	}
	// An object is always an operator object (SPEC §5.1): reading {"gtee": 5} as a literal would
	// store a condition that never matches.
	if len(obj) == 0 {
		return nil, fmt.Errorf("an operator object needs one of %s (to match {}, write {\"eq\": {}})", opList)
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if !filterOps[name] {
			return nil, fmt.Errorf("%q is not an operator: use %s (to match an object, write {\"eq\": {...}})", name, opList)
		}
	}
	ops := make([]filterOp, 0, len(obj))
	for _, name := range names {
		val := obj[name]
		switch name {
		case "gt", "gte", "lt", "lte":
			if _, ok := val.(json.Number); !ok {
				return nil, fmt.Errorf("%s takes a number", name)
			}
			ops = append(ops, filterOp{name: name, value: val})
		case "in":
			list, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("in takes an array")
			}
			if len(list) > MaxFilterInList {
				return nil, fmt.Errorf("in takes at most %d values", MaxFilterInList)
			}
			ops = append(ops, filterOp{name: name, list: list})
		default:
			ops = append(ops, filterOp{name: name, value: val})
		}
	}
	return ops, nil
}

// MarshalJSON returns the filter as it was written (null for a nil filter).
func (f *Filter) MarshalJSON() ([]byte, error) {
	if f == nil {
		return []byte("null"), nil
	}
	return f.raw, nil
}

// Match reports whether payload satisfies every condition. A missing field or a type mismatch
// fails the condition.
func (f *Filter) Match(payload map[string]any) bool {
	if f == nil {
		return true
	}
	for _, c := range f.conds {
		v, ok := lookup(payload, c.path)
		if !ok {
			return false
		}
		for _, op := range c.ops {
			if !op.holds(v) {
				return false
			}
		}
	}
	return true
}

func (op filterOp) holds(v any) bool {
	switch op.name {
	case "eq":
		return jsonEqual(v, op.value)
	case "ne":
		return !jsonEqual(v, op.value)
	case "in":
		for _, x := range op.list {
			if jsonEqual(v, x) {
				return true
			}
		}
		return false
	}
	c, ok := compareNumbers(v, op.value)
	if !ok {
		return false
	}
	switch op.name {
	case "gt":
		return c > 0
	case "gte":
		return c >= 0
	case "lt":
		return c < 0
	default: // lte
		return c <= 0
	}
}

func lookup(payload map[string]any, path []string) (any, bool) {
	var cur any = payload
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[seg]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// Lookup returns the value at a dotted path of a payload decoded by DecodePayload.
func Lookup(payload map[string]any, dotted string) (any, bool) {
	return lookup(payload, strings.Split(dotted, "."))
}

// IntegerAt returns the value at a dotted path when it is an integer ≥ 0 that fits in int64.
func IntegerAt(payload map[string]any, dotted string) (int64, bool) {
	v, ok := Lookup(payload, dotted)
	if !ok {
		return 0, false
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok || !r.IsInt() || r.Sign() < 0 || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// DecodePayload decodes an event payload (a JSON object) keeping numbers exact.
func DecodePayload(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	v, err := decodeJSONValue(raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("payload must be a JSON object")
	}
	return m, nil
}

func decodeJSONValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid JSON: trailing data")
	}
	return v, nil
}

func compareNumbers(a, b any) (int, bool) {
	x, ok1 := a.(json.Number)
	y, ok2 := b.(json.Number)
	if !ok1 || !ok2 {
		return 0, false
	}
	rx, ok1 := new(big.Rat).SetString(string(x))
	ry, ok2 := new(big.Rat).SetString(string(y))
	if !ok1 || !ok2 {
		return 0, false
	}
	return rx.Cmp(ry), true
}

// jsonEqual is JSON equality: numbers compare by value, objects and arrays element-wise.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		c, ok := compareNumbers(x, b)
		return ok && c == 0
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}
