package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/getkin/kin-openapi/openapi3"
	"sigs.k8s.io/yaml"
)

// ExampleReport is what CheckExamples found in a document.
type ExampleReport struct {
	// Checked is the number of examples validated against their schema.
	Checked int
	// InSource is the number of examples written in the document's source ("example" keys and
	// the entries of "examples" maps), to compare with Checked: an example the walk did not
	// reach would go unchecked.
	InSource int
	// Errors lists the examples that do not match their schema, by location.
	Errors []string
}

// CheckExamples validates every example of an OpenAPI document against its schema: media-type
// examples of request bodies as requests and of responses as responses (so readOnly and
// writeOnly apply), parameter and header examples, and the example of every schema, with the
// formats the contract checks ("uuid" included, which kin-openapi's own example validation
// skips).
func CheckExamples(spec []byte) (ExampleReport, error) {
	// The examples are this function's to check (kin-openapi's own pass would stop at the first
	// bad one): load and validate the rest of the document without them.
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return ExampleReport{}, fmt.Errorf("load openapi: %w", err)
	}
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return ExampleReport{}, fmt.Errorf("validate openapi: %w", err)
	}
	var rep ExampleReport
	if rep.InSource, err = countExamples(spec); err != nil {
		return ExampleReport{}, err
	}
	w := &exampleWalker{rep: &rep, seen: map[any]bool{}}
	// Components first, so that what they define is reported under its own name.
	if c := doc.Components; c != nil {
		for _, name := range sortedKeys(c.Schemas) {
			w.schema("components.schemas."+name, c.Schemas[name])
		}
		for _, name := range sortedKeys(c.Parameters) {
			w.parameter("components.parameters."+name, c.Parameters[name].Value)
		}
		for _, name := range sortedKeys(c.Headers) {
			w.parameter("components.headers."+name, &c.Headers[name].Value.Parameter)
		}
		for _, name := range sortedKeys(c.RequestBodies) {
			w.content("components.requestBodies."+name, c.RequestBodies[name].Value.Content, openapi3.VisitAsRequest())
		}
		for _, name := range sortedKeys(c.Responses) {
			w.response("components.responses."+name, c.Responses[name])
		}
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		w.parameters("paths."+path, item.Parameters)
		for method, op := range item.Operations() {
			at := "paths." + path + "." + method
			w.parameters(at, op.Parameters)
			if op.RequestBody != nil {
				w.content(at+".requestBody", op.RequestBody.Value.Content, openapi3.VisitAsRequest())
			}
			for status, r := range op.Responses.Map() {
				w.response(at+".responses."+status, r)
			}
		}
	}
	sort.Strings(rep.Errors)
	return rep, nil
}

// exampleWalker visits each part of a loaded document once (a referenced component is reached
// from every place that uses it) and validates the examples it holds.
type exampleWalker struct {
	rep  *ExampleReport
	seen map[any]bool
}

func (w *exampleWalker) first(p any) bool {
	if w.seen[p] {
		return false
	}
	w.seen[p] = true
	return true
}

func (w *exampleWalker) check(at string, value any, schema *openapi3.Schema, opts ...openapi3.SchemaValidationOption) {
	w.rep.Checked++
	opts = append(append([]openapi3.SchemaValidationOption{openapi3.MultiErrors()}, formatOptions...), opts...)
	if err := schema.VisitJSON(value, opts...); err != nil {
		w.rep.Errors = append(w.rep.Errors, fmt.Sprintf("%s: %v", at, err))
	}
}

func (w *exampleWalker) examples(at string, example any, examples openapi3.Examples, schema *openapi3.Schema, opts ...openapi3.SchemaValidationOption) {
	if example != nil {
		w.check(at+".example", example, schema, opts...)
	}
	for _, name := range sortedKeys(examples) {
		w.check(at+".examples."+name, examples[name].Value.Value, schema, opts...)
	}
}

func (w *exampleWalker) content(at string, content openapi3.Content, opts ...openapi3.SchemaValidationOption) {
	for _, mt := range sortedKeys(content) {
		m := content[mt]
		if m.Schema == nil || !w.first(m) {
			continue
		}
		w.examples(at+".content."+mt, m.Example, m.Examples, m.Schema.Value, opts...)
		w.schema(at+".content."+mt+".schema", m.Schema)
	}
}

func (w *exampleWalker) response(at string, r *openapi3.ResponseRef) {
	if r.Value == nil || !w.first(r.Value) {
		return
	}
	for _, name := range sortedKeys(r.Value.Headers) {
		w.parameter(at+".headers."+name, &r.Value.Headers[name].Value.Parameter)
	}
	w.content(at, r.Value.Content, openapi3.VisitAsResponse())
}

func (w *exampleWalker) parameters(at string, params openapi3.Parameters) {
	for _, p := range params {
		w.parameter(at+".parameters."+p.Value.Name, p.Value)
	}
}

func (w *exampleWalker) parameter(at string, p *openapi3.Parameter) {
	if p == nil || p.Schema == nil || !w.first(p) {
		return
	}
	w.examples(at, p.Example, p.Examples, p.Schema.Value, openapi3.VisitAsRequest())
	w.schema(at+".schema", p.Schema)
}

// schema validates a schema's own example and walks every schema inside it.
func (w *exampleWalker) schema(at string, ref *openapi3.SchemaRef) {
	if ref == nil || ref.Value == nil || !w.first(ref.Value) {
		return
	}
	s := ref.Value
	if s.Example != nil {
		w.check(at+".example", s.Example, s)
	}
	for _, name := range sortedKeys(s.Properties) {
		w.schema(at+".properties."+name, s.Properties[name])
	}
	for i, sub := range s.AllOf {
		w.schema(fmt.Sprintf("%s.allOf.%d", at, i), sub)
	}
	for i, sub := range s.AnyOf {
		w.schema(fmt.Sprintf("%s.anyOf.%d", at, i), sub)
	}
	for i, sub := range s.OneOf {
		w.schema(fmt.Sprintf("%s.oneOf.%d", at, i), sub)
	}
	w.schema(at+".not", s.Not)
	w.schema(at+".items", s.Items)
	w.schema(at+".additionalProperties", s.AdditionalProperties.Schema)
}

// countExamples counts the "example" keys and "examples" entries of a document's source (with
// YAML anchors and merges expanded, as the loader sees them), skipping property names and the
// inside of example values.
func countExamples(spec []byte) (int, error) {
	js, err := yaml.YAMLToJSON(spec)
	if err != nil {
		return 0, fmt.Errorf("read document: %w", err)
	}
	var root any
	if err := json.Unmarshal(js, &root); err != nil {
		return 0, fmt.Errorf("read document: %w", err)
	}
	var count func(v any, parentKey string) int
	count = func(v any, parentKey string) int {
		n := 0
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				switch {
				case parentKey == "properties":
					n += count(sub, "")
				case k == "example":
					n++
				case k == "examples":
					if m, ok := sub.(map[string]any); ok {
						n += len(m)
					}
				default:
					n += count(sub, k)
				}
			}
		case []any:
			for _, sub := range v {
				n += count(sub, "")
			}
		}
		return n
	}
	return count(root, ""), nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
