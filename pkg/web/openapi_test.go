package web_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

const oasSmallSpec = `
openapi: 3.0.3
info: {title: small, version: "1"}
paths:
  /ping:
    get:
      responses:
        "200":
          description: pong
          content:
            application/json:
              schema: {type: object, additionalProperties: false, properties: {ok: {type: boolean}}}
`

func TestOASServeOpenAPI(t *testing.T) {
	e := echo.New()
	if err := web.ServeOpenAPI(e, []byte(oasSmallSpec)); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q", ct)
	}
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.0.3" || doc.Paths["/ping"] == nil {
		t.Fatalf("served document = %s", rec.Body.Bytes())
	}
}

func TestOASServeOpenAPIRejectsInvalidDocuments(t *testing.T) {
	for name, spec := range map[string]string{
		"not yaml":      "openapi: [",
		"dangling ref":  strings.Replace(oasSmallSpec, "{type: object, additionalProperties: false, properties: {ok: {type: boolean}}}", `{$ref: "#/components/schemas/Nope"}`, 1),
		"bad schema":    strings.Replace(oasSmallSpec, "type: boolean", "type: bool", 1),
		"no info":       strings.Replace(oasSmallSpec, `info: {title: small, version: "1"}`, "", 1),
		"bad path item": strings.Replace(oasSmallSpec, "      responses:", "      responses: 7\n      x:", 1),
	} {
		t.Run(name, func(t *testing.T) {
			e := echo.New()
			if err := web.ServeOpenAPI(e, []byte(spec)); err == nil {
				t.Fatal("ServeOpenAPI accepted an invalid document")
			}
			if len(e.Routes()) != 0 {
				t.Fatal("a route was registered for an invalid document")
			}
		})
	}
}

// TestOASGatewayDocumentsAreValid loads both gateways' documents and checks the rules the
// contract checker relies on: every object schema closes its properties, every /v1 operation
// documents its auth and error statuses, and no operation has a "default" response.
func TestOASGatewayDocumentsAreValid(t *testing.T) {
	for name, spec := range map[string][]byte{"admin": adminapi.OpenAPI, "query": queryapi.OpenAPI} {
		t.Run(name, func(t *testing.T) {
			doc, err := web.LoadOpenAPI(spec)
			if err != nil {
				t.Fatal(err)
			}
			for sname, s := range doc.Components.Schemas {
				v := s.Value
				if v.Type.Is("object") && len(v.Properties) > 0 {
					if v.AdditionalProperties.Has == nil || *v.AdditionalProperties.Has {
						t.Errorf("schema %s: object without additionalProperties: false", sname)
					}
				}
			}
			for path, item := range doc.Paths.Map() {
				for method, op := range item.Operations() {
					if op.Responses.Default() != nil {
						t.Errorf("%s %s: has a default response", method, path)
					}
					if !strings.HasPrefix(path, "/v1/") {
						continue
					}
					for _, status := range []string{"400", "401", "403", "500", "503"} {
						if op.Responses.Value(status) == nil {
							t.Errorf("%s %s: status %s not documented", method, path, status)
						}
					}
					if (method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch) &&
						op.Responses.Value("413") == nil {
						t.Errorf("%s %s: a body route without 413", method, path)
					}
				}
			}
		})
	}
}

// TestOASDocumentsListEveryRoute compares each document's operations with the routes its
// gateway registers, both ways.
func TestOASDocumentsListEveryRoute(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, g := range []struct {
		name     string
		spec     []byte
		register func(e *echo.Echo)
	}{
		{"admin-gateway", adminapi.OpenAPI, adminapi.New(nil, nil, adminapi.Config{}, log).Register},
		{"query-gateway", queryapi.OpenAPI, queryapi.New(nil, nil, nil, queryapi.Config{}, log, nil).Register},
	} {
		t.Run(g.name, func(t *testing.T) {
			s := web.NewServer(log, web.Options{Name: g.name})
			g.register(s.Echo)
			if err := web.ServeOpenAPI(s.Echo, g.spec); err != nil {
				t.Fatal(err)
			}
			doc, err := web.LoadOpenAPI(g.spec)
			if err != nil {
				t.Fatal(err)
			}
			documented := map[string]bool{}
			for path, item := range doc.Paths.Map() {
				for method := range item.Operations() {
					documented[method+" "+path] = true
				}
			}
			served := map[string]bool{}
			for _, r := range s.Echo.Routes() {
				if r.Method == echo.RouteNotFound {
					continue
				}
				served[r.Method+" "+echoToOpenAPI(r.Path)] = true
			}
			if len(served) < 10 {
				t.Fatalf("only %d routes registered: %v", len(served), served)
			}
			var missing, extra []string
			for op := range served {
				if !documented[op] {
					missing = append(missing, op)
				}
			}
			for op := range documented {
				if !served[op] {
					extra = append(extra, op)
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			if len(missing) > 0 {
				t.Errorf("served but not documented:\n  %s", strings.Join(missing, "\n  "))
			}
			if len(extra) > 0 {
				t.Errorf("documented but not served:\n  %s", strings.Join(extra, "\n  "))
			}
		})
	}
}

// echoToOpenAPI turns /a/:id into /a/{id}.
func echoToOpenAPI(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}
