// Package contract checks recorded HTTP exchanges against a gateway's OpenAPI document. It is
// meant for tests: a harness passes every request it sends and every answer it gets to
// (*Validator).Check, which fails the test when the exchange is not what the document promises.
//
// The rules, in order:
//
//  1. The route (method and path) must be documented. The one exception is the gateway's own
//     answer to an unknown route — 404 NOT_FOUND, or 405 METHOD_NOT_ALLOWED for a documented
//     path under another method — whose body must still be the document's Error schema.
//  2. A request the document forbids (bad body, bad parameter, unknown query parameter, missing
//     bearer token) must be answered 4xx: a 2xx means the gateway accepted undocumented input.
//  3. The status must be listed for the operation (no "default" catch-all is honoured).
//  4. Required response headers must be present and the body must match the response schema;
//     with additionalProperties: false on every object, an undocumented field fails. A response
//     documented without content must have an empty body.
package contract

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/web"
)

// Validator checks exchanges against one OpenAPI document and records which operations were
// exercised. It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	errRef *openapi3.SchemaRef // components.schemas.Error, for unknown-route answers

	mu      sync.Mutex
	covered map[string]bool // "METHOD /path/{template}" → exercised
}

// parsed caches loaded documents by content: loading and validating a large document costs
// milliseconds, and a harness builds a Validator per test. A loaded document is read-only.
var parsed sync.Map // [32]byte → *loaded

type loaded struct {
	doc    *openapi3.T
	router routers.Router
	err    error
}

// New loads spec and returns a Validator, failing tb when the document is invalid.
func New(tb testing.TB, spec []byte) *Validator {
	tb.Helper()
	v, err := Load(spec)
	if err != nil {
		tb.Fatalf("contract: %v", err)
	}
	return v
}

// Load is New without a test: it returns the document's error instead of failing.
func Load(spec []byte) (*Validator, error) {
	key := sha256.Sum256(spec)
	l, ok := parsed.Load(key)
	if !ok {
		l, _ = parsed.LoadOrStore(key, load(spec))
	}
	ld := l.(*loaded)
	if ld.err != nil {
		return nil, ld.err
	}
	v := &Validator{doc: ld.doc, router: ld.router, covered: map[string]bool{}}
	if ld.doc.Components != nil {
		v.errRef = ld.doc.Components.Schemas["Error"]
	}
	for _, path := range ld.doc.Paths.InMatchingOrder() {
		for method := range ld.doc.Paths.Value(path).Operations() {
			v.covered[method+" "+path] = false
		}
	}
	return v, nil
}

func load(spec []byte) *loaded {
	doc, err := web.LoadOpenAPI(spec)
	if err != nil {
		return &loaded{err: err}
	}
	// Tests talk to httptest servers on random ports: match paths only, whatever the servers.
	doc.Servers = nil
	for _, p := range doc.Paths.Map() {
		p.Servers = nil
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return &loaded{err: fmt.Errorf("router: %w", err)}
	}
	return &loaded{doc: doc, router: r}
}

// Check validates one exchange: req as sent (its body is reqBody; req.Body is not read), and
// the answer's status, header and body. Every violation is reported with tb.Errorf, so Check may
// be called from goroutines other than the test's.
func (v *Validator) Check(tb testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) {
	tb.Helper()
	for _, err := range v.check(req, reqBody, status, header, respBody) {
		tb.Errorf("contract: %s %s → %d: %v\nresponse body: %s", req.Method, req.URL.RequestURI(), status, err, clip(respBody))
	}
}

// Uncovered lists the documented operations ("METHOD /path") that no Check has exercised, sorted.
func (v *Validator) Uncovered() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for op, done := range v.covered {
		if !done {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// check returns every violation of the exchange, nil when it is what the document promises.
func (v *Validator) check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) []error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.ContentLength = int64(len(reqBody))

	route, pathParams, err := v.router.FindRoute(r)
	if err != nil {
		return v.checkUnrouted(err, status, header, respBody)
	}
	v.mu.Lock()
	v.covered[route.Method+" "+route.Path] = true
	v.mu.Unlock()

	var errs []error
	reqIn := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                bearerPresent,
			RejectWhenRequestBodyNotSpecified: true,
			SkipSettingDefaults:               true,
			MultiError:                        true,
			SchemaValidationOptions:           formatOptions,
		},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, reqIn)
	if reqErr == nil {
		reqErr = unknownQueryParams(route, r.URL.Query())
	}
	if reqErr != nil && status >= 200 && status < 300 {
		errs = append(errs, fmt.Errorf("answered %d to a request the contract forbids: %w", status, reqErr))
	}

	// The request is validated against the contract above; the response check needs the route
	// only, so it runs on a fresh input whatever the request's fate.
	respIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route},
		Status:                 status,
		Header:                 header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus:   true,
			MultiError:              true,
			SchemaValidationOptions: formatOptions,
		},
	}
	respIn.SetBodyBytes(respBody)
	if resp := route.Operation.Responses.Status(status); resp == nil {
		errs = append(errs, fmt.Errorf("status %d is not documented for %s %s (documented: %s)",
			status, route.Method, route.Path, strings.Join(documented(route.Operation), ", ")))
		return errs
	} else if resp.Value != nil && len(resp.Value.Content) == 0 && len(bytes.TrimSpace(respBody)) > 0 {
		errs = append(errs, fmt.Errorf("status %d is documented without a body, got %d bytes", status, len(respBody)))
	}
	if err := openapi3filter.ValidateResponse(ctx, respIn); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkUnrouted accepts only the gateway's generic answer to a route the document lacks.
func (v *Validator) checkUnrouted(routeErr error, status int, header http.Header, respBody []byte) []error {
	want := http.StatusNotFound
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) && status == http.StatusMethodNotAllowed {
		want = http.StatusMethodNotAllowed
	}
	if status != want {
		return []error{fmt.Errorf("undocumented route (%v) answered %d", routeErr, status)}
	}
	if v.errRef == nil {
		return nil
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return []error{fmt.Errorf("undocumented route answered %d with Content-Type %q, want the JSON error envelope", status, ct)}
	}
	var body any
	if err := json.Unmarshal(respBody, &body); err != nil {
		return []error{fmt.Errorf("undocumented route answered %d with a body that is not JSON: %w", status, err)}
	}
	opts := append([]openapi3.SchemaValidationOption{openapi3.VisitAsResponse(), openapi3.MultiErrors()}, formatOptions...)
	if err := v.errRef.Value.VisitJSON(body, opts...); err != nil {
		return []error{fmt.Errorf("undocumented route answered %d with a body that is not the Error schema: %w", status, err)}
	}
	return nil
}

// formatOptions make "uuid" a checked format; date-time and the integer formats are built in.
var formatOptions = []openapi3.SchemaValidationOption{
	openapi3.WithStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
		if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
			return fmt.Errorf("%q is not a UUID", s)
		}
		return nil
	})),
}

// bearerPresent accepts an HTTP bearer scheme when the request carries a bearer token; whether
// the token is valid is the gateway's business, not the contract's.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s == nil || s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return fmt.Errorf("security scheme %q is not supported by the contract checker", in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// unknownQueryParams reports query parameters the operation does not document.
func unknownQueryParams(route *routers.Route, q url.Values) error {
	known := map[string]bool{}
	for _, params := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range params {
			if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				known[p.Value.Name] = true
			}
		}
	}
	var unknown []string
	for name := range q {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("undocumented query parameters: %s", strings.Join(unknown, ", "))
}

// documented lists an operation's documented statuses.
func documented(op *openapi3.Operation) []string {
	var out []string
	for code := range op.Responses.Map() {
		out = append(out, code)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i])
		b, _ := strconv.Atoi(out[j])
		return a < b
	})
	return out
}

// clip keeps failure messages readable.
func clip(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
