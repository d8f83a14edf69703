package postgres

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// IdempotencyTTL is how long an Idempotency-Key answer is replayed.
const IdempotencyTTL = 24 * time.Hour

// idempotencyAbandonAfter is how long a claim may stay unanswered before another request may
// take it over (its holder crashed).
const idempotencyAbandonAfter = 2 * time.Minute

// Claim registers an Idempotency-Key of a tenant's caller for the request hash (the Admin
// Gateway's idempotency middleware is its client). It returns status 0 when the caller now owns
// the key and must run the request, the stored status and body when a request with the same key
// and hash completed, and IDEMPOTENCY_KEY_REUSED when the key was used with another hash; while
// another request holds the key it waits for that one. A claim older than the TTL, or one left
// unanswered past idempotencyAbandonAfter, is taken over.
func (s *Store) Claim(ctx context.Context, tenant, caller, key string, hash []byte) (status int, body []byte, err error) {
	const insert = `
		INSERT INTO idempotency_keys (tenant_id, caller, key, request_hash)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, caller, key) DO UPDATE
		    SET request_hash = EXCLUDED.request_hash, status = 0, body = NULL, created_at = now()
		    WHERE idempotency_keys.created_at < now() - make_interval(secs => $5)
		       OR (idempotency_keys.status = 0 AND idempotency_keys.created_at < now() - make_interval(secs => $6))
		RETURNING true`
	const get = `SELECT request_hash, status, body FROM idempotency_keys WHERE tenant_id = $1 AND caller = $2 AND key = $3`
	for {
		var claimed bool
		err := s.db.GetContext(ctx, &claimed, insert, tenant, caller, key, hash,
			IdempotencyTTL.Seconds(), idempotencyAbandonAfter.Seconds())
		if err == nil {
			return 0, nil, nil
		}
		if !isNoRows(err) {
			return 0, nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		var row struct {
			Hash   []byte `db:"request_hash"`
			Status int    `db:"status"`
			Body   []byte `db:"body"`
		}
		if err := s.db.GetContext(ctx, &row, get, tenant, caller, key); err != nil {
			if isNoRows(err) {
				continue // released meanwhile: try to claim again
			}
			return 0, nil, fmt.Errorf("read idempotency key: %w", err)
		}
		if !bytes.Equal(row.Hash, hash) {
			return 0, nil, referral.Errorf(referral.EIdempotencyKeyReused, "Idempotency-Key was used with a different request")
		}
		if row.Status != 0 {
			return row.Status, row.Body, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Complete stores the answer (status, body) of a claimed Idempotency-Key.
func (s *Store) Complete(ctx context.Context, tenant, caller, key string, status int, body []byte) error {
	const q = `UPDATE idempotency_keys SET status = $4, body = $5 WHERE tenant_id = $1 AND caller = $2 AND key = $3`
	if _, err := s.db.ExecContext(ctx, q, tenant, caller, key, status, body); err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	return nil
}

// Release gives a claimed Idempotency-Key up without an answer.
func (s *Store) Release(ctx context.Context, tenant, caller, key string) error {
	const q = `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND caller = $2 AND key = $3 AND status = 0`
	if _, err := s.db.ExecContext(ctx, q, tenant, caller, key); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Purge deletes expired idempotency records and code-attempt failures older than window. Each
// deletion runs through transact: replicas purging at once delete overlapping rows and may
// deadlock.
func (s *Store) Purge(ctx context.Context, attemptWindow time.Duration) error {
	purge := func(what, q string, age time.Duration) error {
		err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, q, age.Seconds())
			return err
		})
		if err != nil {
			return fmt.Errorf("purge %s: %w", what, err)
		}
		return nil
	}
	if err := purge("idempotency keys", `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)`, IdempotencyTTL); err != nil {
		return err
	}
	return purge("code attempts", `DELETE FROM code_attempt_failures WHERE failed_at < now() - make_interval(secs => $1)`, attemptWindow)
}
