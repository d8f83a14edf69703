package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

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
