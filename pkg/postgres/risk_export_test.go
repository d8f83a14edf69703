package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// AssessRiskQuery is the apply-code risk statement, exposed to this package's external tests
// (its plan is checked).
const AssessRiskQuery = assessRiskQuery

// DeferredOriginals runs deferredOriginals in a read transaction, for this package's external
// tests.
func (s *Store) DeferredOriginals(ctx context.Context, tenant string, ids []string) (map[string]uuid.UUID, error) {
	var out map[string]uuid.UUID
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = deferredOriginals(ctx, tx, tenant, ids)
		return err
	})
	return out, err
}
