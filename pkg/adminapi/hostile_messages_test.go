package adminapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestHostileFilterOperators checks SPEC §5.1: an object condition is always an operator object,
// so a typo is rejected when written instead of being stored as a literal that never matches,
// and an object value is matched with eq.
func TestHostileFilterOperators(t *testing.T) {
	w := evtNew(t)
	e := w.e
	for _, filter := range []string{
		`{"amount": {"gtee": 5}}`, `{"amount": {"GTE": 5}}`, `{"amount": {"gte": 5, "gtee": 6}}`,
		`{"amount": {"bogus": 1}}`, `{"meta": {"country": "DE"}}`, `{"meta": {}}`,
	} {
		before := hostileSnapshot(t, e)
		campaign := `{"name": "c", "qualifying_event": "deposit.completed", "qualifying_filter": ` + filter + `}`
		eb := e.do(http.MethodPost, "/v1/referral/campaigns", w.adm, campaign).fail(t, 400, "VALIDATION_FAILED")
		if eb.Error.Fields["qualifying_filter"] == "" {
			t.Errorf("campaign filter %s: fields = %q", filter, eb.Error.Fields)
		}
		rule := `{"name": "r", "event_type": "deposit.completed", "currency_id": "EUR", "event_filter": ` + filter + `}`
		eb = e.do(http.MethodPost, "/v1/affiliate/commission-rules", w.adm, rule).fail(t, 400, "VALIDATION_FAILED")
		if eb.Error.Fields["event_filter"] == "" {
			t.Errorf("rule filter %s: fields = %q", filter, eb.Error.Fields)
		}
		if hostileSnapshot(t, e) != before {
			t.Fatalf("filter %s: a rejected write was stored", filter)
		}
	}
	msg := e.do(http.MethodPost, "/v1/referral/campaigns", w.adm,
		`{"name": "c", "qualifying_event": "x", "qualifying_filter": {"amount": {"gte": 5, "gtee": 6}}}`).
		fail(t, 400, "VALIDATION_FAILED").Error.Fields["qualifying_filter"]
	if !strings.Contains(msg, `"amount"`) || !strings.Contains(msg, `"gtee"`) {
		t.Errorf("message %q names neither the path nor the operator", msg)
	}

	w.campaign(t, "deposit.completed", map[string]any{"meta": map[string]any{"eq": map[string]any{"country": "DE"}}},
		evtWallet("points", 100), evtWallet("points", 50))
	refPlayerCode(t, e, "alice", map[string]any{"code": "ALICEEQ"})
	w.apply(t, "bob", "ALICEEQ")
	fr := w.event(t, evtBody("dep_fr", "deposit.completed", "bob", map[string]any{"meta": map[string]any{"country": "FR"}}))
	if len(fr.Rewards) != 0 {
		t.Fatalf("an object that differs matched: %+v", fr)
	}
	de := w.event(t, evtBody("dep_de", "deposit.completed", "bob", map[string]any{"meta": map[string]any{"country": "DE"}}))
	if got, want := evtRewarded(de.Rewards), "bob/referee=50 points alice/referrer=100 points"; got != want {
		t.Fatalf("eq on an object: rewards = %q, want %q", got, want)
	}
}

// TestHostileInvalidJSONPosition checks that INVALID_JSON says where the body breaks.
func TestHostileInvalidJSONPosition(t *testing.T) {
	e := newEnv(t)
	body := "{\n  \"name\": \"c\",\n  \"active\": tru\n}"
	eb := e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), body).fail(t, 400, "INVALID_JSON")
	if !strings.Contains(eb.Error.Message, "line 3, column 16") {
		t.Errorf("message %q gives no position", eb.Error.Message)
	}
	eb = e.do(http.MethodPost, "/v1/events/batch", e.admin(), `{"events": [{"event_id": "a"},]}`).fail(t, 400, "INVALID_JSON")
	if !strings.Contains(eb.Error.Message, "line 1, column 31") {
		t.Errorf("message %q gives no position", eb.Error.Message)
	}
}

// TestHostileFieldMessages checks that a field that is present is never reported missing: a key
// in the wrong case is an unknown field (pointing at the right one), a value in the wrong case or
// of the wrong type says so — alone and inside a batch.
func TestHostileFieldMessages(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, event, field, want string
		absent                   string // a field that must not be reported
	}{
		{"key in the wrong case", `{"event_id": "e1", "Type": "deposit.completed", "user_id": "u"}`,
			"Type", `is not a known field (field names are case-sensitive: did you mean "type"?)`, "type"},
		{"value in the wrong case", `{"event_id": "e1", "type": "Deposit.Completed", "user_id": "u"}`,
			"type", "must be 1 to 100 characters of a-z, 0-9, '.', '_' and '-' (lower case)", ""},
		{"wrong type", `{"event_id": "e1", "type": 5, "user_id": "u"}`, "type", "must be a string", ""},
		{"missing", `{"event_id": "e1", "user_id": "u"}`, "type", "is required", ""},
		{"id too long", `{"event_id": "` + strings.Repeat("x", 129) + `", "type": "t", "user_id": "u"}`,
			"event_id", "must be 1 to 128 characters without NUL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eb := e.do(http.MethodPost, "/v1/events", e.admin(), tt.event).fail(t, 400, "VALIDATION_FAILED")
			var out struct {
				Results []evtOutcome `json:"results"`
			}
			e.do(http.MethodPost, "/v1/events/batch", e.admin(), `{"events": [`+tt.event+`]}`).must(t, 200, &out)
			if len(out.Results) != 1 || out.Results[0].Error == nil {
				t.Fatalf("batch results = %+v", out.Results)
			}
			for where, fields := range map[string]map[string]string{"single": eb.Error.Fields, "batch": out.Results[0].Error.Fields} {
				if got := fields[tt.field]; got != tt.want {
					t.Errorf("%s: fields[%q] = %q, want %q", where, tt.field, got, tt.want)
				}
				if reason, ok := fields[tt.absent]; ok {
					t.Errorf("%s: fields[%q] = %q for a field that was sent", where, tt.absent, reason)
				}
			}
		})
	}
}
