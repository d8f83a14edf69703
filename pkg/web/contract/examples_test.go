package contract_test

import (
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/web/contract"
)

// TestExamplesOfTheGatewayDocuments validates every example of both gateways' documents against
// its schema, and checks that the walk reached every example written in them.
func TestExamplesOfTheGatewayDocuments(t *testing.T) {
	for name, spec := range map[string][]byte{"admin": adminapi.OpenAPI, "query": queryapi.OpenAPI} {
		t.Run(name, func(t *testing.T) {
			rep, err := contract.CheckExamples(spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rep.Errors {
				t.Error(e)
			}
			if rep.Checked != rep.InSource {
				t.Errorf("checked %d examples of the %d in the document", rep.Checked, rep.InSource)
			}
			if rep.Checked < 5 {
				t.Errorf("only %d examples checked", rep.Checked)
			}
			t.Logf("%d examples checked", rep.Checked)
		})
	}
}

// oasExamplesSpec has one example of each kind; the tests below break them one at a time.
const oasExamplesSpec = `
openapi: 3.0.3
info: {title: examples, version: "1"}
paths:
  /items/{item_id}:
    parameters:
      - {name: item_id, in: path, required: true, schema: {type: string, format: uuid}, example: 6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c}
    put:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Item"}
            examples:
              one: {value: {name: a}}
      responses:
        "200":
          description: the item
          headers:
            ETag: {schema: {type: string}, example: abc}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Item"}
              example: {id: 6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c, name: a}
components:
  schemas:
    Item:
      type: object
      additionalProperties: false
      required: [name]
      properties:
        id: {type: string, format: uuid, readOnly: true}
        name: {type: string, example: a}
`

func TestCheckExamplesReportsEachBrokenExample(t *testing.T) {
	rep, err := contract.CheckExamples([]byte(oasExamplesSpec))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 0 || rep.Checked != 5 || rep.InSource != 5 {
		t.Fatalf("valid document: %+v", rep)
	}
	for name, c := range map[string]struct{ from, to, where string }{
		// kin-openapi's own example validation does not check formats it does not know.
		"path parameter uuid": {"example: 6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c}", "example: not-a-uuid}", "parameters.item_id.example"},
		"response example":    {"example: {id: 6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c, name: a}", "example: {id: 6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c}", "responses.200.content.application/json.example"},
		// A readOnly property is not for requests.
		"request example": {"one: {value: {name: a}}", "one: {value: {name: a, id: 6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c}}", "requestBody.content.application/json.examples.one"},
		"schema example":  {"name: {type: string, example: a}", "name: {type: string, example: 7}", "components.schemas.Item.properties.name.example"},
	} {
		t.Run(name, func(t *testing.T) {
			spec := strings.Replace(oasExamplesSpec, c.from, c.to, 1)
			if spec == oasExamplesSpec {
				t.Fatal("the replacement did not apply")
			}
			rep, err := contract.CheckExamples([]byte(spec))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], c.where) {
				t.Fatalf("errors = %q, want one at %s", rep.Errors, c.where)
			}
		})
	}
}
