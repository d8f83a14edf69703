package contract_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/web/contract"
)

// oasTinySpec is a two-route document in the shape of the gateways' documents.
const oasTinySpec = `
openapi: 3.0.3
info: {title: tiny, version: "1"}
servers: [{url: "https://api.example.com"}]
security: [{bearerAuth: []}]
paths:
  /items:
    post:
      operationId: createItem
      parameters:
        - {name: tenant_id, in: query, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/ItemInput"}
      responses:
        "200": {description: created, content: {application/json: {schema: {$ref: "#/components/schemas/Item"}}}}
        "400": {$ref: "#/components/responses/Error"}
        "429":
          description: rate limited
          headers:
            Retry-After: {required: true, schema: {type: integer}}
          content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}
  /items/{item_id}:
    parameters:
      - {name: item_id, in: path, required: true, schema: {type: string, format: uuid}}
    get:
      operationId: getItem
      security: [{}, {bearerAuth: []}]
      responses:
        "200": {description: the item, content: {application/json: {schema: {$ref: "#/components/schemas/Item"}}}}
        "404": {$ref: "#/components/responses/Error"}
    delete:
      operationId: deleteItem
      responses:
        "204": {description: deleted}
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer, bearerFormat: JWT}
  responses:
    Error:
      description: error
      content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}
  schemas:
    ItemInput:
      type: object
      additionalProperties: false
      required: [name]
      properties:
        name: {type: string, minLength: 1}
    Item:
      type: object
      additionalProperties: false
      required: [id, name, created_at]
      properties:
        id: {type: string, format: uuid}
        name: {type: string}
        created_at: {type: string, format: date-time, pattern: '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$'}
    Error:
      type: object
      additionalProperties: false
      required: [error]
      properties:
        error:
          type: object
          additionalProperties: false
          required: [code, message]
          properties:
            code: {type: string}
            message: {type: string}
            fields: {type: object, additionalProperties: {type: string}}
`

const (
	oasItemID   = "0b9f7a52-3d43-4f3e-9a47-1d2c6f4e8a10"
	oasItemJSON = `{"id":"` + oasItemID + `","name":"one","created_at":"2026-01-02T03:04:05.123456Z"}`
	oasNotFound = `{"error":{"code":"NOT_FOUND","message":"not found"}}`
)

// oasRecorder is a testing.TB that records failures instead of failing the test.
type oasRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *oasRecorder) Helper() {}

func (r *oasRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *oasRecorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.FailNow()
}

type oasExchange struct {
	method, target, token, reqBody string
	status                         int
	header                         map[string]string
	respBody                       string
}

func oasJSONHeader(kv ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// oasCheck runs one exchange through v and returns the failures it reported.
func oasCheck(t *testing.T, v *contract.Validator, x oasExchange) []string {
	t.Helper()
	req := httptest.NewRequest(x.method, x.target, strings.NewReader(x.reqBody))
	if x.reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	h := http.Header{}
	for k, val := range x.header {
		h.Set(k, val)
	}
	rec := &oasRecorder{TB: t}
	v.Check(rec, req, []byte(x.reqBody), x.status, h, []byte(x.respBody))
	return rec.errs
}

func TestOASContractChecks(t *testing.T) {
	v := contract.New(t, []byte(oasTinySpec))
	tests := []struct {
		name string
		x    oasExchange
		want string // "" = passes; else a substring of the failure
	}{
		{"valid create", oasExchange{"POST", "/items?tenant_id=t1", "tok", `{"name":"one"}`, 200, oasJSONHeader(), oasItemJSON}, ""},
		{"valid get without token (security optional)", oasExchange{"GET", "/items/" + oasItemID, "", "", 200, oasJSONHeader(), oasItemJSON}, ""},
		{"documented error", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 404, oasJSONHeader(), oasNotFound}, ""},
		{"documented empty 204", oasExchange{"DELETE", "/items/" + oasItemID, "tok", "", 204, nil, ""}, ""},
		{"undocumented field", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(),
			`{"id":"` + oasItemID + `","name":"one","created_at":"2026-01-02T03:04:05Z","extra":1}`}, "extra"},
		{"missing field", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(),
			`{"id":"` + oasItemID + `","created_at":"2026-01-02T03:04:05Z"}`}, "name"},
		{"wrong type", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(),
			`{"id":"` + oasItemID + `","name":7,"created_at":"2026-01-02T03:04:05Z"}`}, "name"},
		{"not a uuid", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(),
			`{"id":"nope","name":"one","created_at":"2026-01-02T03:04:05Z"}`}, "UUID"},
		{"time with offset", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(),
			`{"id":"` + oasItemID + `","name":"one","created_at":"2026-01-02T03:04:05+01:00"}`}, "pattern"},
		{"nanosecond time", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(),
			`{"id":"` + oasItemID + `","name":"one","created_at":"2026-01-02T03:04:05.123456789Z"}`}, "pattern"},
		{"undocumented status", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 409, oasJSONHeader(), oasNotFound}, "status 409 is not documented"},
		{"undocumented route", oasExchange{"GET", "/other", "tok", "", 200, oasJSONHeader(), `{}`}, "undocumented route"},
		{"undocumented method", oasExchange{"PUT", "/items/" + oasItemID, "tok", `{"name":"x"}`, 200, oasJSONHeader(), oasItemJSON}, "undocumented route"},
		{"unknown route answered 404", oasExchange{"GET", "/other", "tok", "", 404, oasJSONHeader(), oasNotFound}, ""},
		{"unknown method answered 405", oasExchange{"PATCH", "/items/" + oasItemID, "tok", "", 405, oasJSONHeader(),
			`{"error":{"code":"METHOD_NOT_ALLOWED","message":"method not allowed"}}`}, ""},
		{"unknown route with a bad body", oasExchange{"GET", "/other", "tok", "", 404, map[string]string{"Content-Type": "text/plain"}, "404 page not found"}, "Content-Type"},
		{"unknown route with a non-envelope", oasExchange{"GET", "/other", "tok", "", 404, oasJSONHeader(), `{"message":"nope"}`}, "Error schema"},
		{"invalid request answered 400", oasExchange{"POST", "/items", "tok", `{"name":""}`, 400, oasJSONHeader(),
			`{"error":{"code":"VALIDATION_FAILED","message":"invalid","fields":{"name":"is required"}}}`}, ""},
		{"invalid request accepted", oasExchange{"POST", "/items", "tok", `{"name":"one","x":1}`, 200, oasJSONHeader(), oasItemJSON}, "forbids"},
		{"missing token accepted", oasExchange{"POST", "/items", "", `{"name":"one"}`, 200, oasJSONHeader(), oasItemJSON}, "forbids"},
		{"unknown query parameter accepted", oasExchange{"POST", "/items?color=red", "tok", `{"name":"one"}`, 200, oasJSONHeader(), oasItemJSON}, "color"},
		{"malformed path id accepted", oasExchange{"GET", "/items/42", "tok", "", 200, oasJSONHeader(), oasItemJSON}, "forbids"},
		{"malformed path id answered 404", oasExchange{"GET", "/items/42", "tok", "", 404, oasJSONHeader(), oasNotFound}, ""},
		{"body on an empty response", oasExchange{"DELETE", "/items/" + oasItemID, "tok", "", 204, oasJSONHeader(), `{}`}, "without a body"},
		{"required header present", oasExchange{"POST", "/items", "tok", `{"name":"one"}`, 429, oasJSONHeader("Retry-After", "30"),
			`{"error":{"code":"RATE_LIMITED","message":"slow down"}}`}, ""},
		{"required header missing", oasExchange{"POST", "/items", "tok", `{"name":"one"}`, 429, oasJSONHeader(),
			`{"error":{"code":"RATE_LIMITED","message":"slow down"}}`}, "Retry-After"},
		{"error envelope with extra field", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 404, oasJSONHeader(),
			`{"error":{"code":"NOT_FOUND","message":"not found","stack":"..."}}`}, "stack"},
		{"wrong content type", oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, map[string]string{"Content-Type": "text/html"}, oasItemJSON}, "text/html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := oasCheck(t, v, tt.x)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("want no failure, got:\n%s", strings.Join(errs, "\n"))
			case tt.want != "" && len(errs) == 0:
				t.Errorf("want a failure mentioning %q, got none", tt.want)
			case tt.want != "" && !strings.Contains(strings.Join(errs, "\n"), tt.want):
				t.Errorf("want a failure mentioning %q, got:\n%s", tt.want, strings.Join(errs, "\n"))
			}
		})
	}
}

func TestOASContractUncovered(t *testing.T) {
	v := contract.New(t, []byte(oasTinySpec))
	want := "DELETE /items/{item_id}, GET /items/{item_id}, POST /items"
	if got := strings.Join(v.Uncovered(), ", "); got != want {
		t.Fatalf("fresh Uncovered = %s, want %s", got, want)
	}
	oasCheck(t, v, oasExchange{"GET", "/items/" + oasItemID, "tok", "", 404, oasJSONHeader(), oasNotFound})
	// An unknown route covers nothing.
	oasCheck(t, v, oasExchange{"GET", "/other", "tok", "", 404, oasJSONHeader(), oasNotFound})
	want = "DELETE /items/{item_id}, POST /items"
	if got := strings.Join(v.Uncovered(), ", "); got != want {
		t.Fatalf("Uncovered = %s, want %s", got, want)
	}
	// Coverage is per Validator, even over the same (cached) document.
	if got := len(contract.New(t, []byte(oasTinySpec)).Uncovered()); got != 3 {
		t.Fatalf("new Validator Uncovered has %d operations, want 3", got)
	}
}

func TestOASContractConcurrentChecks(t *testing.T) {
	v := contract.New(t, []byte(oasTinySpec))
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := oasItemJSON
			if i%2 == 1 {
				body = `{"id":"` + oasItemID + `","name":"one","created_at":"2026-01-02T03:04:05Z","extra":1}`
			}
			errs := oasCheck(t, v, oasExchange{"GET", "/items/" + oasItemID, "tok", "", 200, oasJSONHeader(), body})
			mu.Lock()
			failures += len(errs)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if failures != 8 {
		t.Fatalf("failures = %d, want 8 (one per bad body)", failures)
	}
	if got := strings.Join(v.Uncovered(), ", "); got != "DELETE /items/{item_id}, POST /items" {
		t.Fatalf("Uncovered = %s", got)
	}
}

func TestOASContractRejectsBrokenDocument(t *testing.T) {
	broken := strings.Replace(oasTinySpec, "#/components/schemas/Item\"", "#/components/schemas/Missing\"", 1)
	if _, err := contract.Load([]byte(broken)); err == nil {
		t.Fatal("Load accepted a document with a dangling $ref")
	}
	if _, err := contract.Load([]byte("openapi: [")); err == nil {
		t.Fatal("Load accepted malformed YAML")
	}
}

// BenchmarkOASCheck measures one Check of a GET answered with a small object, the common case
// of a harness exchange.
func BenchmarkOASCheck(b *testing.B) {
	v, err := contract.Load([]byte(oasTinySpec))
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/items/"+oasItemID, nil)
	req.Header.Set("Authorization", "Bearer tok")
	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(oasItemJSON)
	b.ReportAllocs()
	for b.Loop() {
		v.Check(b, req, nil, 200, h, body)
	}
}
