package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

type sampleWallet struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

type sampleRequest struct {
	Name       string          `json:"name"`
	Limit      Opt[int]        `json:"usage_limit"`
	Active     *bool           `json:"active"`
	ExpiresAt  Opt[Time]       `json:"expires_at"`
	Wallet     []sampleWallet  `json:"wallet"`
	Filter     json.RawMessage `json:"filter"`
	Metadata   map[string]any  `json:"metadata"`
	CampaignID Opt[string]     `json:"campaign_id"`
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
	got := FormatTime(time.Time(r.ExpiresAt.Value))
	if got != "2026-01-02T02:04:05.123456Z" {
		t.Errorf("time = %s", got)
	}
}

func TestFormatTime(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	if got := FormatTime(ts); got != "2026-03-04T04:06:07Z" {
		t.Errorf("FormatTime = %s", got)
	}
}

// FuzzDecode feeds arbitrary bodies through a real Echo stack whose handler decodes strictly:
// nothing may panic, and every answer is 200 or a 4xx carrying the error envelope.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"name":"x"}`, `{"usage_limit":null}`, `{"usage_limit":1e400}`,
		`{"wallet":[{"currency_id":"p","amount":9223372036854775808}]}`, `{"expires_at":"2026-13-01T00:00:00Z"}`,
		`{"metadata":{"a":[1,{"b":null}]}}`, `{"id":"x"}`, `{"name":"\u0000"}`, `{"a":1,"a":2}`, "\xff\xfe",
		`{"filter":{"amount":{"gte":1}}}`, `{"active":"yes"}`, `{"campaign_id":123}`,
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
		return c.JSON(http.StatusOK, map[string]string{"name": r.Name})
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code != http.StatusOK {
			var eb ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("status %d without envelope: %s", rec.Code, rec.Body)
			}
		}
	})
}
