package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

type sampleWallet struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

type sampleRequest struct {
	Name       string             `json:"name"`
	Limit      Opt[int]           `json:"usage_limit"`
	Active     *bool              `json:"active"`
	ExpiresAt  Opt[apishape.Time] `json:"expires_at"`
	Wallet     []sampleWallet     `json:"wallet"`
	Filter     json.RawMessage    `json:"filter"`
	Metadata   map[string]any     `json:"metadata"`
	CampaignID Opt[string]        `json:"campaign_id"`
}

func codeOf(err error) string { return referral.ErrorCode(err) }

func TestDecode(t *testing.T) {
	ro := []string{"id", "created_at"}
	tests := []struct {
		name  string
		body  string
		mode  DecodeMode
		code  string
		field string
	}{
		{"empty body is an empty object", ``, RejectReadOnly, "", ""},
		{"valid", `{"name": "x", "usage_limit": 5, "wallet": [{"currency_id": "p", "amount": 1}]}`, RejectReadOnly, "", ""},
		{"malformed", `{"name": `, RejectReadOnly, referral.EInvalidJSON, ""},
		{"trailing garbage", `{} x`, RejectReadOnly, referral.EInvalidJSON, ""},
		{"array body", `[]`, RejectReadOnly, referral.EValidation, "body"},
		{"null body", `null`, RejectReadOnly, referral.EValidation, "body"},
		{"unknown field", `{"nmae": "x"}`, RejectReadOnly, referral.EValidation, "nmae"},
		{"read-only rejected", `{"id": "x"}`, RejectReadOnly, referral.EValidation, "id"},
		{"read-only ignored", `{"id": "x", "created_at": 1}`, IgnoreReadOnly, "", ""},
		{"wrong type", `{"name": 1}`, RejectReadOnly, referral.EValidation, "name"},
		{"int overflow", `{"usage_limit": 1e40}`, RejectReadOnly, referral.EValidation, "usage_limit"},
		{"fraction for int", `{"usage_limit": 1.5}`, RejectReadOnly, referral.EValidation, "usage_limit"},
		{"bad time", `{"expires_at": "yesterday"}`, RejectReadOnly, referral.EValidation, "expires_at"},
		{"nested wrong type", `{"wallet": [{"amount": "1"}]}`, RejectReadOnly, referral.EValidation, "wallet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r sampleRequest
			err := Decode([]byte(tt.body), &r, tt.mode, ro...)
			if got := codeOrEmpty(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if tt.field != "" {
				var de *referral.Error
				errors.As(err, &de)
				if _, ok := de.Fields[tt.field]; !ok {
					t.Fatalf("fields = %v, want %q", de.Fields, tt.field)
				}
			}
		})
	}
}

func codeOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return codeOf(err)
}

func TestOptPresence(t *testing.T) {
	var r sampleRequest
	if err := Decode([]byte(`{"usage_limit": null, "expires_at": "2026-01-02T03:04:05.1234567+01:00"}`), &r, RejectReadOnly); err != nil {
		t.Fatal(err)
	}
	if !r.Limit.Set || !r.Limit.Null || r.Limit.Ptr() != nil {
		t.Errorf("usage_limit null: %+v", r.Limit)
	}
	if r.CampaignID.Set {
		t.Errorf("absent campaign_id reported present")
	}
	got := apishape.FormatTime(time.Time(r.ExpiresAt.Value))
	if got != "2026-01-02T02:04:05.123456Z" {
		t.Errorf("time = %s", got)
	}
}

// FuzzDecode feeds arbitrary bodies through a real Echo stack whose handler decodes strictly:
// nothing may panic, every answer is 200 or a 4xx carrying the error envelope, and an accepted
// body's strings (keys included) come out without NUL and without a U+FFFD the client did not
// send (encoding/json substitutes it for invalid UTF-8 and unpaired surrogates).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"name":"x"}`, `{"usage_limit":null}`, `{"usage_limit":1e400}`,
		`{"wallet":[{"currency_id":"p","amount":9223372036854775808}]}`, `{"expires_at":"2026-13-01T00:00:00Z"}`,
		`{"metadata":{"a":[1,{"b":null}]}}`, `{"id":"x"}`, `{"name":"\u0000"}`, `{"a":1,"a":2}`, "\xff\xfe",
		`{"filter":{"amount":{"gte":1}}}`, `{"active":"yes"}`, `{"campaign_id":123}`,
		`{"name":"x\ud800"}`, `{"name":"\ud83d\ude00"}`, `{"name":"\udc00\ud800"}`, "{\"name\":\"\xed\xa0\x80\"}",
		`{"metadata":{"k\udfff":1}}`, `{"metadata":{"a":1e-999999}}`, `{"metadata":{"a":-1e999999}}`,
		`{"wallet":[{"currency_id":"\u0000"}]}`, `{"Name":"x"}`, "{\n\"name\": tru}",
	} {
		f.Add([]byte(s))
	}
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(discard(), true, nil)
	e.POST("/x", func(c echo.Context) error {
		var r sampleRequest
		if err := Bind(c, &r, RejectReadOnly, "id"); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r)
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code != http.StatusOK {
			var eb apishape.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("status %d without envelope: %s", rec.Code, rec.Body)
			}
			return
		}
		sent := bytes.ContainsRune(body, utf8.RuneError) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if s, ok := tok.(string); ok && (strings.ContainsRune(s, 0) || (!sent && strings.ContainsRune(s, utf8.RuneError))) {
				t.Fatalf("accepted %q as %q", body, s)
			}
		}
	})
}

// TestDecodeHostileText covers the values no body may carry (SPEC §3): each is VALIDATION_FAILED
// naming the value's dotted path, wherever it sits, and never reaches the destination.
func TestDecodeHostileText(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"NUL escape", `{"name": "a\u0000b"}`, "name"},
		{"invalid UTF-8", "{\"name\": \"a\xffb\"}", "name"},
		{"truncated UTF-8 sequence", "{\"name\": \"a\xe2\x82\"}", "name"},
		{"UTF-8 encoded surrogate", "{\"name\": \"a\xed\xa0\x80\"}", "name"},
		{"lone high surrogate", `{"name": "x\ud800"}`, "name"},
		{"lone low surrogate", `{"name": "x\udc00"}`, "name"},
		{"high surrogate then high surrogate", `{"name": "\ud800\ud800\udc00"}`, "name"},
		{"high surrogate then other escape", `{"name": "\ud800\n"}`, "name"},
		{"reversed pair", `{"name": "\udc00\ud800"}`, "name"},
		{"huge exponent", `{"usage_limit": 1e999999}`, "usage_limit"},
		{"huge negative", `{"usage_limit": -1e999999}`, "usage_limit"},
		{"tiny exponent", `{"metadata": {"x": 1e-999999}}`, "metadata.x"},
		{"zero with huge exponent", `{"metadata": {"x": 0e-999999}}`, "metadata.x"},
		{"past float64", `{"metadata": {"x": 1.8e308}}`, "metadata.x"},
		{"too many digits", `{"metadata": {"x": 1.` + strings.Repeat("0", 1000) + `}}`, "metadata.x"},
		{"in metadata", `{"metadata": {"source": "\u0000"}}`, "metadata.source"},
		{"metadata key", `{"metadata": {"so\u0000urce": "qr"}}`, "metadata.so\x00urce"},
		{"in filter", `{"filter": {"amount": {"gte": 1e999999}}}`, "filter.amount.gte"},
		{"in array", `{"wallet": [{"currency_id": "p", "amount": 1}, {"currency_id": "\ud83d"}]}`, "wallet[1].currency_id"},
		{"nested arrays", `{"metadata": {"m": [[1, "\u0000"]]}}`, "metadata.m[0][1]"},
		{"unknown field", `{"nmae": "\u0000"}`, "nmae"},
		{"top-level key", `{"na\u0000me": "x"}`, "na\x00me"},
		{"read-only field ignored on PUT", `{"id": "\u0000"}`, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r sampleRequest
			err := Decode([]byte(tt.body), &r, IgnoreReadOnly, "id")
			var de *referral.Error
			if !errors.As(err, &de) || de.Code != referral.EValidation {
				t.Fatalf("Decode(%q) = %v, want VALIDATION_FAILED", tt.body, err)
			}
			if _, ok := de.Fields[tt.field]; !ok {
				t.Fatalf("fields = %q, want %q", de.Fields, tt.field)
			}
			if r.Name != "" || r.Metadata != nil || r.Limit.Set {
				t.Fatalf("a rejected body reached the destination: %+v", r)
			}
		})
	}
}

// TestDecodeKeepsText checks the values that look hostile but are not: they decode unchanged.
func TestDecodeKeepsText(t *testing.T) {
	tests := []struct {
		body string
		name string
	}{
		{`{"name": "\ud83d\ude00"}`, "😀"},
		{`{"name": "😀 é ü"}`, "😀 é ü"},
		{`{"name": "\u00e9\\u0000"}`, `é\u0000`},
		{`{"name": "\ufffd"}`, "\ufffd"},
		{`{"name": "a\"b\\c\/d"}`, `a"b\c/d`},
	}
	for _, tt := range tests {
		var r sampleRequest
		if err := Decode([]byte(tt.body), &r, RejectReadOnly); err != nil {
			t.Fatalf("Decode(%s): %v", tt.body, err)
		}
		if r.Name != tt.name {
			t.Errorf("Decode(%s) name = %q, want %q", tt.body, r.Name, tt.name)
		}
	}
	var r sampleRequest
	ok := `{"metadata": {"a": 1e-300, "b": -1.7e308, "c": 0e1000, "d": 12345678901234567890123, "e": 1e-400}}`
	if err := Decode([]byte(ok), &r, RejectReadOnly); err != nil {
		t.Fatalf("storable numbers rejected: %v", err)
	}
}

// TestDecodeDistinctIDs is the observed merge: two ids that differ only in an unpaired surrogate
// must not both decode to the same U+FFFD string.
func TestDecodeDistinctIDs(t *testing.T) {
	for _, body := range []string{`{"name": "x\ud800"}`, `{"name": "x\ud801"}`} {
		var r sampleRequest
		if err := Decode([]byte(body), &r, RejectReadOnly); codeOrEmpty(err) != referral.EValidation {
			t.Fatalf("Decode(%s) = %v (name %q), want VALIDATION_FAILED", body, err, r.Name)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	if err := CheckJSON([]byte(`{"a": [1, "x", {"b": null}], "c": true}`), "payload"); err != nil {
		t.Fatalf("clean JSON: %v", err)
	}
	err := CheckJSON([]byte(`{"a": [1, "\u0000"], "b": {"c": 1e999999}}`), "payload")
	var de *referral.Error
	if !errors.As(err, &de) || de.Code != referral.EValidation {
		t.Fatalf("CheckJSON = %v, want VALIDATION_FAILED", err)
	}
	for _, f := range []string{"payload.a[1]", "payload.b.c"} {
		if de.Fields[f] == "" {
			t.Errorf("fields = %q, want %q", de.Fields, f)
		}
	}
	if err := CheckJSON([]byte(`"\ud800"`), "event_id"); codeOrEmpty(err) != referral.EValidation {
		t.Errorf("CheckJSON(lone surrogate) = %v", err)
	}
	if err := CheckJSON([]byte(`{"a": `), "payload"); codeOrEmpty(err) != referral.EValidation {
		t.Errorf("CheckJSON(malformed) = %v", err)
	}
}

// TestDecodeSyntaxPosition checks that INVALID_JSON says where the text breaks.
func TestDecodeSyntaxPosition(t *testing.T) {
	tests := []struct {
		body string
		want string
	}{
		{`{"name": x}`, "line 1, column 10"},
		{"{\n  \"name\": \"a\",\n  \"active\": tru\n}", "line 3, column 16"},
		{`{"name": `, "line 1, column 9"},
		{`{} x`, "line 1, column 4"},
		{"{\"name\": \"a\x01\"}", "line 1, column 12"},
	}
	for _, tt := range tests {
		err := Decode([]byte(tt.body), &sampleRequest{}, RejectReadOnly)
		var de *referral.Error
		if !errors.As(err, &de) || de.Code != referral.EInvalidJSON {
			t.Fatalf("Decode(%q) = %v, want INVALID_JSON", tt.body, err)
		}
		if !strings.Contains(de.Message, tt.want) {
			t.Errorf("Decode(%q) message %q does not name %q", tt.body, de.Message, tt.want)
		}
	}
}

// TestDecodeFieldCase checks that a key differing from a field only in case is reported as such
// (encoding/json alone would match it case-insensitively), and a wrong type as a wrong type.
func TestDecodeFieldCase(t *testing.T) {
	var r sampleRequest
	err := Decode([]byte(`{"Name": "x", "usage_limit": 5}`), &r, RejectReadOnly)
	var de *referral.Error
	if !errors.As(err, &de) {
		t.Fatalf("Decode = %v, want VALIDATION_FAILED", err)
	}
	if got := de.Fields["Name"]; !strings.Contains(got, "not a known field") || !strings.Contains(got, `"name"`) {
		t.Errorf(`fields["Name"] = %q, want "not a known field" pointing at "name"`, got)
	}
	if len(de.Fields) != 1 || r.Name != "" {
		t.Errorf("fields = %q, name = %q", de.Fields, r.Name)
	}
	err = Decode([]byte(`{"name": 5}`), &r, RejectReadOnly)
	if !errors.As(err, &de) || de.Fields["name"] != "must be a string" {
		t.Errorf("wrong type: %v", err)
	}
}

type sampleBatch struct {
	Events *Items `json:"events"`
	Note   string `json:"note"`
}

// TestDecodeItems checks that an Items field is left as text for the caller, hostile items
// included, while the rest of the body is checked.
func TestDecodeItems(t *testing.T) {
	var b sampleBatch
	if err := Decode([]byte(`{"events": [{"id": "ok"}, {"id": "x\ud800"}, 1e999999]}`), &b, RejectReadOnly); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if b.Events == nil || len(*b.Events) != 3 || string((*b.Events)[1]) != `{"id": "x\ud800"}` {
		t.Fatalf("events = %s", *b.Events)
	}
	for body, field := range map[string]string{
		`{"events": [], "note": "\u0000"}`: "note",
		`{"events": {}}`:                   "events",
		`{"events": "x"}`:                  "events",
	} {
		b = sampleBatch{}
		err := Decode([]byte(body), &b, RejectReadOnly)
		var de *referral.Error
		if !errors.As(err, &de) || de.Fields[field] == "" {
			t.Errorf("Decode(%s) = %v, want a %q field error", body, err, field)
		}
	}
}
