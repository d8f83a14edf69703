package queryapi

import _ "embed"

// OpenAPI is the Query Gateway's OpenAPI 3 document (YAML), served as GET /openapi.json and used
// by the tests to check every answer against the contract.
//
//go:embed openapi.yaml
var OpenAPI []byte
