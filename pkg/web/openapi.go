package web

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// loadedDocs keeps parsed documents by content: loading and validating a gateway's document
// takes a tenth of a second, and both its routes and GET /openapi.json need it.
var loadedDocs sync.Map // [sha256.Size]byte → loadedDoc

type loadedDoc struct {
	doc *openapi3.T
	err error
}

// LoadOpenAPI parses an OpenAPI 3 document (YAML or JSON) and validates it: broken references,
// malformed schemas, examples that do not match their schema and unknown keywords are errors.
// The result is shared by every caller passing the same bytes and must not be modified.
func LoadOpenAPI(spec []byte) (*openapi3.T, error) {
	key := sha256.Sum256(spec)
	l, ok := loadedDocs.Load(key)
	if !ok {
		doc, err := loadOpenAPI(spec)
		l, _ = loadedDocs.LoadOrStore(key, loadedDoc{doc: doc, err: err})
	}
	d := l.(loadedDoc)
	return d.doc, d.err
}

func loadOpenAPI(spec []byte) (*openapi3.T, error) {
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
