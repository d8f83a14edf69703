package postgres

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
)

// Publish exposes publish to this package's external tests.
func Publish(ctx context.Context, tx *sqlx.Tx, tenant string, now time.Time, msgs ...outbox.Message) error {
	return publish(ctx, tx, tenant, now, msgs...)
}
