package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// LoadOpenAPI parses an OpenAPI 3 document (YAML or JSON) and validates it: broken references,
// malformed schemas, examples that do not match their schema and unknown keywords are errors.
func LoadOpenAPI(spec []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi: %w", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("validate openapi: %w", err)
	}
	return doc, nil
}

// ServeOpenAPI validates spec and registers GET /openapi.json serving it as JSON. The JSON is
// rendered once here, so a broken document stops the gateway at start instead of at the first
// request.
func ServeOpenAPI(e *echo.Echo, spec []byte) error {
	doc, err := LoadOpenAPI(spec)
	if err != nil {
		return err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode openapi: %w", err)
	}
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, body)
	})
	return nil
}
