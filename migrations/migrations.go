// Package migrations holds the numbered SQL migrations of the Phoenix schema, embedded in the
// admin-gateway binary.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
