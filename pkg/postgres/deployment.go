package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// DefaultDeployment names a deployment after the database it runs on when none is configured:
// 16 hex digits of a hash of the PostgreSQL cluster's system identifier and the database's name.
// Two deployments get the same name only when their databases have the same name in one cluster
// or in physical copies of it (a base backup or a streaming replica keeps the identifier): those
// must be told apart by configuration. It needs no schema, so it works before migrations ran.
func DefaultDeployment(ctx context.Context, db sqlx.QueryerContext) (string, error) {
	var row struct {
		System   string `db:"system_identifier"`
		Database string `db:"database"`
	}
	const q = `SELECT system_identifier::text AS system_identifier, current_database() AS database FROM pg_control_system()`
	if err := sqlx.GetContext(ctx, db, &row, q); err != nil {
		return "", fmt.Errorf("database identity: %w", err)
	}
	sum := sha256.Sum256([]byte(row.System + "/" + row.Database))
	return hex.EncodeToString(sum[:8]), nil
}
