package referral

import "testing"

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
		{"literal object", `{"meta": {"country": "DE", "score": 2.5}}`, true},
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
	} {
		if _, err := ParseFilter("filter", []byte(f)); ErrorCode(err) != EValidation {
			t.Errorf("ParseFilter(%s) = %v, want VALIDATION_FAILED", f, err)
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
