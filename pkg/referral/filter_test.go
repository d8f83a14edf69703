package referral

import (
	"errors"
	"strings"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	payload := `{"amount": 5000, "currency": "EUR", "first": true, "meta": {"country": "DE", "score": 2.5}, "tags": ["a"], "nothing": null}`
	tests := []struct {
		name   string
		filter string
		want   bool
	}{
		{"null filter", `null`, true},
		{"empty filter", `{}`, true},
		{"literal string", `{"currency": "EUR"}`, true},
		{"literal string mismatch", `{"currency": "USD"}`, false},
		{"literal number equal as 5000.0", `{"amount": 5000.0}`, true},
		{"literal bool", `{"first": true}`, true},
		{"literal null", `{"nothing": null}`, true},
		{"literal array", `{"tags": ["a"]}`, true},
		{"object by eq", `{"meta": {"eq": {"country": "DE", "score": 2.5}}}`, true},
		{"object by eq, other value", `{"meta": {"eq": {"country": "DE"}}}`, false},
		{"empty object by eq", `{"meta": {"eq": {}}}`, false},
		{"object by ne", `{"meta": {"ne": {"country": "FR"}}}`, true},
		{"object in list", `{"meta": {"in": [1, {"score": 2.5, "country": "DE"}]}}`, true},
		{"array of objects by literal", `{"tags": ["a"]}`, true},
		{"eq", `{"currency": {"eq": "EUR"}}`, true},
		{"ne", `{"currency": {"ne": "EUR"}}`, false},
		{"ne other", `{"currency": {"ne": "USD"}}`, true},
		{"gt true", `{"amount": {"gt": 4999}}`, true},
		{"gt equal", `{"amount": {"gt": 5000}}`, false},
		{"gte equal", `{"amount": {"gte": 5000}}`, true},
		{"lt", `{"amount": {"lt": 5000}}`, false},
		{"lte", `{"amount": {"lte": 5000}}`, true},
		{"range", `{"amount": {"gte": 1000, "lt": 10000}}`, true},
		{"decimal compare", `{"meta.score": {"gt": 2.4999}}`, true},
		{"in", `{"currency": {"in": ["USD", "EUR"]}}`, true},
		{"in miss", `{"currency": {"in": ["USD"]}}`, false},
		{"in numbers", `{"amount": {"in": [1, 5000]}}`, true},
		{"nested path", `{"meta.country": "DE"}`, true},
		{"missing field", `{"bonus": {"gte": 0}}`, false},
		{"missing nested", `{"meta.city": "Berlin"}`, false},
		{"path through scalar", `{"amount.x": 1}`, false},
		{"type mismatch gt string", `{"currency": {"gt": 1}}`, false},
		{"type mismatch eq number vs string", `{"amount": "5000"}`, false},
		{"ne missing field", `{"bonus": {"ne": 1}}`, false},
		{"and", `{"amount": {"gte": 1000}, "currency": {"in": ["EUR", "USD"]}}`, true},
		{"and one fails", `{"amount": {"gte": 1000}, "currency": "USD"}`, false},
	}
	p, err := DecodePayload([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter("filter", []byte(tt.filter))
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			if got := f.Match(p); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseFilterRejects(t *testing.T) {
	for _, f := range []string{
		`[]`, `"x"`, `1`, `{"amount": {"gt": "1"}}`, `{"amount": {"in": 1}}`, `{"a..b": 1}`, `{"": 1}`,
		`{"amount": {"lte": null}}`, `{`,
		// An object condition is always an operator object (SPEC §5.1).
		`{"amount": {"gtee": 5}}`, `{"amount": {"GTE": 5}}`, `{"amount": {"gte": 5, "gtee": 6}}`,
		`{"amount": {"bogus": 1}}`, `{"meta": {"country": "DE"}}`, `{"meta": {}}`,
		`{"amount": {"in": {"a": 1}}}`, `{"a": 1, "b": {"eq": 1, "Eq": 2}}`,
	} {
		_, err := ParseFilter("filter", []byte(f))
		var de *Error
		if !errors.As(err, &de) || de.Code != EValidation || de.Fields["filter"] == "" {
			t.Errorf("ParseFilter(%s) = %v, want VALIDATION_FAILED on filter", f, err)
		}
	}
}

// TestParseFilterNamesTheCondition checks that a typo is reported with its path and operator.
func TestParseFilterNamesTheCondition(t *testing.T) {
	_, err := ParseFilter("qualifying_filter", []byte(`{"currency": "EUR", "amount": {"gte": 5, "gtee": 6}}`))
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("ParseFilter = %v", err)
	}
	msg := de.Fields["qualifying_filter"]
	for _, want := range []string{`"amount"`, `"gtee"`, "eq, ne, gt, gte, lt, lte, in"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %s", msg, want)
		}
	}
}

func TestIntegerAt(t *testing.T) {
	p, _ := DecodePayload([]byte(`{"a": 5000, "b": 1.5, "c": "7", "d": -1, "e": 1e3, "f": 99999999999999999999, "g": {"h": 3}}`))
	tests := []struct {
		path string
		want int64
		ok   bool
	}{
		{"a", 5000, true}, {"b", 0, false}, {"c", 0, false}, {"d", 0, false}, {"e", 1000, true},
		{"f", 0, false}, {"g.h", 3, true}, {"zz", 0, false},
	}
	for _, tt := range tests {
		got, ok := IntegerAt(p, tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("IntegerAt(%q) = %d, %v; want %d, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}
