package adminapi_test

import (
	"net/http"
	"testing"
)

func TestAffRejectsNUL(t *testing.T) {
	e := newEnv(t)
	cases := map[string]struct{ path, body string }{
		"affiliate user":  {"/v1/affiliates", `{"user_id": "a\u0000b"}`},
		"tier name":       {"/v1/affiliate/tiers", `{"name": "a\u0000", "commission_rate": 0.1}`},
		"rule name":       {"/v1/affiliate/commission-rules", `{"name": "a\u0000", "event_type": "x", "currency_id": "EUR"}`},
		"rule currency":   {"/v1/affiliate/commission-rules", `{"name": "a", "event_type": "x", "currency_id": "E\u0000"}`},
		"rule field":      {"/v1/affiliate/commission-rules", `{"name": "a", "event_type": "x", "currency_id": "EUR", "commission_field": "a\u0000"}`},
		"rule filter":     {"/v1/affiliate/commission-rules", `{"name": "a", "event_type": "x", "currency_id": "EUR", "event_filter": {"k": "v\u0000"}}`},
		"rule filter key": {"/v1/affiliate/commission-rules", `{"name": "a", "event_type": "x", "currency_id": "EUR", "event_filter": {"k\u0000": 1}}`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e.do(http.MethodPost, c.path, e.admin(), c.body).fail(t, 400, "VALIDATION_FAILED")
		})
	}
	e.do(http.MethodGet, "/v1/affiliate/commission-rules?event_type=a%00b", e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
	e.do(http.MethodGet, "/v1/affiliates?user_id=a%00b", e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
}
