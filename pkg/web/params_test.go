package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

const paramsSpec = `
openapi: 3.0.3
info: {title: params, version: "1"}
paths:
  /v1/items:
    parameters:
      - {name: tenant_id, in: query, schema: {type: string}}
    get:
      parameters:
        - {name: status, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer}}
        - {name: If-None-Match, in: header, schema: {type: string}}
      responses:
        "200": {description: ok}
    post:
      responses:
        "200": {description: ok}
  /v1/items/{item_id}:
    get:
      parameters:
        - {name: item_id, in: path, required: true, schema: {type: string, format: uuid}}
      responses:
        "200": {description: ok}
  /v1/names/{name}:
    get:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
      responses:
        "200": {description: ok}
`

// paramsEcho serves the document's routes behind StrictParams; each handler answers the query
// parameters it was given.
func paramsEcho(t testing.TB) *echo.Echo {
	t.Helper()
	doc, err := LoadOpenAPI([]byte(paramsSpec))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(discard(), true, nil)
	strict := StrictParams(doc)
	h := func(c echo.Context) error { return c.JSON(http.StatusOK, c.QueryParams()) }
	e.GET("/v1/items", h, strict)
	e.POST("/v1/items", h, strict)
	e.GET("/v1/items/:item_id", h, strict)
	e.GET("/v1/names/:name", h, strict)
	e.GET("/v1/undocumented", h, strict)
	return e
}

func TestStrictParams(t *testing.T) {
	e := paramsEcho(t)
	for _, tt := range []struct {
		name   string
		method string
		target string
		status int
		code   string
		field  string
	}{
		{"no query", "GET", "/v1/items", 200, "", ""},
		{"documented parameters", "GET", "/v1/items?status=active&limit=5&tenant_id=t1", 200, "", ""},
		{"path-level parameter on another method", "POST", "/v1/items?tenant_id=t1", 200, "", ""},
		{"empty value", "GET", "/v1/items?status=", 200, "", ""},
		{"percent-encoded UTF-8", "GET", "/v1/items?status=%C3%A9t%C3%A9", 200, "", ""},
		{"typo", "GET", "/v1/items?stauts=active", 400, referral.EValidation, "stauts"},
		{"junk parameter", "GET", "/v1/items?j=" + strings.Repeat("x", 60<<10), 400, referral.EValidation, "j"},
		{"operation parameter on another method", "POST", "/v1/items?status=active", 400, referral.EValidation, "status"},
		{"header parameter is not a query parameter", "GET", "/v1/items?If-None-Match=x", 400, referral.EValidation, "If-None-Match"},
		{"repeated", "GET", "/v1/items?limit=1&limit=2", 400, referral.EValidation, "limit"},
		{"repeated, same value", "GET", "/v1/items?limit=1&limit=1", 400, referral.EValidation, "limit"},
		{"NUL", "GET", "/v1/items?status=a%00b", 400, referral.EValidation, "status"},
		{"invalid UTF-8", "GET", "/v1/items?status=%ff", 400, referral.EValidation, "status"},
		{"lone surrogate (CESU-8)", "GET", "/v1/items?status=%ED%A0%80", 400, referral.EValidation, "status"},
		{"bad escape", "GET", "/v1/items?status=%zz", 400, referral.EValidation, "query"},
		{"semicolon separator", "GET", "/v1/items?status=a;limit=1", 400, referral.EValidation, "query"},
		{"NUL in an unknown name", "GET", "/v1/items?a%00=1", 400, referral.EValidation, "query"},
		{"long unknown name", "GET", "/v1/items?" + strings.Repeat("n", 100) + "=1", 400, referral.EValidation, "query"},
		{"empty name", "GET", "/v1/items?=1", 400, referral.EValidation, "query"},
		{"route without query parameters", "GET", "/v1/items/abc?status=x", 400, referral.EValidation, "status"},
		{"undocumented route accepts none", "GET", "/v1/undocumented?x=1", 400, referral.EValidation, "x"},
		{"id path parameter", "GET", "/v1/items/abc", 200, "", ""},
		{"NUL in an id", "GET", "/v1/items/a%00b", 404, referral.ENotFound, ""},
		{"invalid UTF-8 in an id", "GET", "/v1/items/a%FFb", 404, referral.ENotFound, ""},
		{"path parameter", "GET", "/v1/names/%C3%A9", 200, "", ""},
		{"NUL in a path parameter", "GET", "/v1/names/a%00b", 400, referral.EValidation, "name"},
		{"invalid UTF-8 in a path parameter", "GET", "/v1/names/a%FFb", 400, referral.EValidation, "name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %.300s", rec.Code, tt.status, rec.Body)
			}
			if tt.code == "" {
				return
			}
			var eb apishape.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code != tt.code {
				t.Fatalf("body %.300s, want %s", rec.Body, tt.code)
			}
			if _, ok := eb.Error.Fields[tt.field]; tt.field != "" && !ok {
				t.Fatalf("fields %v lack %q", eb.Error.Fields, tt.field)
			}
			if rec.Body.Len() > 4<<10 {
				t.Fatalf("a %d-byte answer echoes the input", rec.Body.Len())
			}
		})
	}
	t.Run("thousands of junk parameters get a short answer", func(t *testing.T) {
		var q []string
		for i := 0; i < 5000; i++ {
			q = append(q, "p"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+"=1")
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/items?"+strings.Join(q, "&"), nil))
		var eb apishape.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || rec.Code != 400 || len(eb.Error.Fields) > maxParamFields {
			t.Fatalf("status %d, %d fields", rec.Code, len(eb.Error.Fields))
		}
	})
}

// FuzzQuery sends arbitrary raw query strings through StrictParams: nothing panics, every answer
// is 200 or 400 with the envelope, and a request that reaches its handler carries only
// documented parameters, each once, as valid UTF-8 without NUL.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "status=active", "limit=1&limit=2", "stauts=x", "status=%00", "status=%ff", "status=%ED%A0%80",
		"tenant_id=t1&status=a&limit=5", "=", "&&&", "a;b", "%", "status=%zz", "status=a+b%20c", "status",
	} {
		f.Add(s)
	}
	e := paramsEcho(f)
	allowed := map[string]bool{"tenant_id": true, "status": true, "limit": true}
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/items", nil)
		req.URL.RawQuery = raw
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var got map[string][]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("handler answer %s: %v", rec.Body, err)
			}
			for name, vals := range got {
				if !allowed[name] || len(vals) != 1 {
					t.Fatalf("%q reached the handler as %q = %q", raw, name, vals)
				}
			}
			// The answer's JSON would have replaced invalid UTF-8: check what the handler saw.
			for name, vals := range req.URL.Query() {
				if !utf8.ValidString(vals[0]) || strings.ContainsRune(vals[0], 0) {
					t.Fatalf("%q reached the handler with %q = %q", raw, name, vals[0])
				}
			}
		case http.StatusBadRequest:
			var eb apishape.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code != referral.EValidation || len(eb.Error.Fields) == 0 {
				t.Fatalf("400 without a field: %s", rec.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, raw, rec.Body)
		}
	})
}
