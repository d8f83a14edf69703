package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// storedEndpoint is a webhook_endpoints row without its secrets.
type storedEndpoint struct {
	ID          uuid.UUID      `db:"id"`
	TenantID    string         `db:"tenant_id"`
	URL         string         `db:"url"`
	Description string         `db:"description"`
	EventTypes  pq.StringArray `db:"event_types"`
	Active      bool           `db:"active"`
	CreatedAt   time.Time      `db:"created_at"`
	UpdatedAt   time.Time      `db:"updated_at"`
}

// endpointCols selects an endpoint (never its secrets) aliased e.
const endpointCols = `e.id, e.tenant_id, e.url, e.description, e.event_types, e.active, e.created_at, e.updated_at`

func (r storedEndpoint) domain() outbox.Endpoint {
	return outbox.Endpoint{ID: r.ID, TenantID: r.TenantID, URL: r.URL, Description: r.Description,
		EventTypes: append([]string{}, r.EventTypes...), Active: r.Active,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// endpointByID loads a live endpoint of the tenant, locked FOR NO KEY UPDATE when lock is set.
// Errors: NOT_FOUND.
func endpointByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool) (outbox.Endpoint, error) {
	q := `SELECT ` + endpointCols + ` FROM webhook_endpoints e WHERE e.tenant_id = $1 AND e.id = $2 AND e.deleted_at IS NULL`
	if lock {
		q += ` FOR NO KEY UPDATE`
	}
	var row storedEndpoint
	if err := tx.GetContext(ctx, &row, q, tenant, id); err != nil {
		if isNoRows(err) {
			return outbox.Endpoint{}, referral.NotFound("webhook endpoint")
		}
		return outbox.Endpoint{}, fmt.Errorf("get webhook endpoint: %w", err)
	}
	return row.domain(), nil
}

// CreateEndpoint stores e (id and times assigned) with its sealed secret.
func (s *Store) CreateEndpoint(ctx context.Context, e outbox.Endpoint, sealed []byte) (outbox.Endpoint, error) {
	const q = `
		INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, active, secret, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`
	var out outbox.Endpoint
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		id := uuid.New()
		if _, err := tx.ExecContext(ctx, q, id, e.TenantID, e.URL, e.Description, pq.StringArray(e.EventTypes),
			e.Active, sealed, s.now()); err != nil {
			return fmt.Errorf("create webhook endpoint: %w", err)
		}
		var err error
		out, err = endpointByID(ctx, tx, e.TenantID, id, false)
		return err
	})
	return out, err
}

// GetEndpoint returns a live endpoint of the tenant. Errors: NOT_FOUND.
func (s *Store) GetEndpoint(ctx context.Context, tenant string, id uuid.UUID) (outbox.Endpoint, error) {
	var out outbox.Endpoint
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = endpointByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// ListEndpoints returns a page of the tenant's live endpoints, newest first, and the total.
func (s *Store) ListEndpoints(ctx context.Context, tenant string, limit, offset int) ([]outbox.Endpoint, int, error) {
	const q = `SELECT ` + endpointCols + ` FROM webhook_endpoints e WHERE e.tenant_id = $1 AND e.deleted_at IS NULL
		ORDER BY e.created_at DESC, e.id DESC LIMIT $2 OFFSET $3`
	const count = `SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1 AND deleted_at IS NULL`
	var (
		out   []outbox.Endpoint
		total int
	)
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		var rows []storedEndpoint
		if err := tx.SelectContext(ctx, &rows, q, tenant, limit, offset); err != nil {
			return fmt.Errorf("list webhook endpoints: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, tenant); err != nil {
			return fmt.Errorf("count webhook endpoints: %w", err)
		}
		out = make([]outbox.Endpoint, 0, len(rows))
		for _, r := range rows {
			out = append(out, r.domain())
		}
		return nil
	})
	return out, total, err
}

// ReplaceEndpoint overwrites e.ID's writable fields; reactivating an endpoint clears its run of
// failures. Errors: NOT_FOUND.
func (s *Store) ReplaceEndpoint(ctx context.Context, e outbox.Endpoint) (outbox.Endpoint, error) {
	const q = `
		UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, active = $6, updated_at = $7,
		    failing_since = CASE WHEN $6 AND NOT active THEN NULL ELSE failing_since END
		WHERE tenant_id = $1 AND id = $2`
	var out outbox.Endpoint
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := endpointByID(ctx, tx, e.TenantID, e.ID, true); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, e.TenantID, e.ID, e.URL, e.Description, pq.StringArray(e.EventTypes),
			e.Active, s.now()); err != nil {
			return fmt.Errorf("replace webhook endpoint: %w", err)
		}
		var err error
		out, err = endpointByID(ctx, tx, e.TenantID, e.ID, false)
		return err
	})
	return out, err
}

// DeleteEndpoint hides the endpoint from every read and cancels its pending deliveries.
// Errors: NOT_FOUND.
func (s *Store) DeleteEndpoint(ctx context.Context, tenant string, id uuid.UUID) error {
	const del = `UPDATE webhook_endpoints SET deleted_at = $3, updated_at = $3, active = false WHERE tenant_id = $1 AND id = $2`
	const cancel = `UPDATE webhook_deliveries SET status = 'cancelled', lease_until = NULL, lease_token = NULL, updated_at = $2
		WHERE endpoint_id = $1 AND status = 'pending'`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := endpointByID(ctx, tx, tenant, id, true); err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, del, tenant, id, now); err != nil {
			return fmt.Errorf("delete webhook endpoint: %w", err)
		}
		if _, err := tx.ExecContext(ctx, cancel, id, now); err != nil {
			return fmt.Errorf("cancel webhook deliveries: %w", err)
		}
		return nil
	})
}

// RotateSecret makes sealed the endpoint's secret; the previous one keeps signing for
// outbox.RotationOverlap. Errors: NOT_FOUND.
func (s *Store) RotateSecret(ctx context.Context, tenant string, id uuid.UUID, sealed []byte) (outbox.Endpoint, error) {
	const q = `UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $4, secret = $3, updated_at = $5
		WHERE tenant_id = $1 AND id = $2`
	var out outbox.Endpoint
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := endpointByID(ctx, tx, tenant, id, true); err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, q, tenant, id, sealed, now.Add(outbox.RotationOverlap), now); err != nil {
			return fmt.Errorf("rotate webhook secret: %w", err)
		}
		var err error
		out, err = endpointByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// testData is the data of a webhook.test event.
type testData struct {
	EndpointID uuid.UUID `json:"endpoint_id"`
	Message    string    `json:"message"`
}

// SendTest publishes a webhook.test event and queues its delivery to the endpoint alone.
// Errors: NOT_FOUND.
func (s *Store) SendTest(ctx context.Context, tenant string, id uuid.UUID) (outbox.Delivery, error) {
	const q = `
		WITH ev AS (
		    INSERT INTO outbox_events (id, tenant_id, type, data, created_at)
		    VALUES ($3, $1, 'webhook.test', $4::json, $5) RETURNING seq)
		INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, status, next_at, created_at, updated_at)
		SELECT $6, $1, $2, ev.seq, 'pending', $5, $5, $5 FROM ev`
	var out outbox.Delivery
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := endpointByID(ctx, tx, tenant, id, false); err != nil {
			return err
		}
		data, err := json.Marshal(testData{EndpointID: id, Message: "a test event from Phoenix Referral"})
		if err != nil {
			return err
		}
		now := s.now()
		out = outbox.Delivery{ID: uuid.New(), TenantID: tenant, EndpointID: id, EventID: uuid.New(),
			EventType: outbox.WebhookTest, Status: outbox.DeliveryPending, NextAt: &now,
			Attempts: []outbox.Attempt{}, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.ExecContext(ctx, q, tenant, id, out.EventID, string(data), now, out.ID); err != nil {
			return fmt.Errorf("send webhook test: %w", err)
		}
		return nil
	})
	return out, err
}

// storedDelivery is a webhook_deliveries row with its event's id and type.
type storedDelivery struct {
	ID         uuid.UUID `db:"id"`
	TenantID   string    `db:"tenant_id"`
	EndpointID uuid.UUID `db:"endpoint_id"`
	EventID    uuid.UUID `db:"event_id"`
	EventType  string    `db:"event_type"`
	Status     string    `db:"status"`
	NextAt     time.Time `db:"next_at"`
	CreatedAt  time.Time `db:"created_at"`
	UpdatedAt  time.Time `db:"updated_at"`
}

// deliveryCols selects a delivery aliased d joined to its event o.
const deliveryCols = `d.id, d.tenant_id, d.endpoint_id, o.id AS event_id, o.type AS event_type, d.status,
	d.next_at, d.created_at, d.updated_at`

func (r storedDelivery) domain() outbox.Delivery {
	d := outbox.Delivery{ID: r.ID, TenantID: r.TenantID, EndpointID: r.EndpointID, EventID: r.EventID,
		EventType: r.EventType, Status: r.Status, Attempts: []outbox.Attempt{},
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.Status == outbox.DeliveryPending {
		t := r.NextAt.UTC()
		d.NextAt = &t
	}
	return d
}

// storedAttempt is a webhook_attempts row.
type storedAttempt struct {
	DeliveryID uuid.UUID `db:"delivery_id"`
	At         time.Time `db:"at"`
	StatusCode *int      `db:"status_code"`
	DurationMS int64     `db:"duration_ms"`
	Error      *string   `db:"error"`
	Excerpt    *string   `db:"response_excerpt"`
}

// withAttempts loads the attempts of ds, oldest first.
func withAttempts(ctx context.Context, q sqlx.QueryerContext, ds []outbox.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]string, len(ds))
	at := make(map[uuid.UUID]int, len(ds))
	for i, d := range ds {
		ids[i], at[d.ID] = d.ID.String(), i
	}
	const sel = `SELECT delivery_id, at, status_code, duration_ms, error, response_excerpt FROM webhook_attempts
		WHERE delivery_id = ANY ($1::uuid[]) ORDER BY delivery_id, n`
	var rows []storedAttempt
	if err := sqlx.SelectContext(ctx, q, &rows, sel, pq.StringArray(ids)); err != nil {
		return fmt.Errorf("load webhook attempts: %w", err)
	}
	for _, r := range rows {
		d := &ds[at[r.DeliveryID]]
		d.Attempts = append(d.Attempts, outbox.Attempt{At: r.At.UTC(), StatusCode: r.StatusCode,
			Duration: time.Duration(r.DurationMS) * time.Millisecond, Error: r.Error, ResponseExcerpt: r.Excerpt})
	}
	return nil
}

// deliveryByID loads a delivery of the tenant (not cancelled) with its attempts, locked FOR
// UPDATE when lock is set. Errors: NOT_FOUND.
func deliveryByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool) (outbox.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM webhook_deliveries d JOIN outbox_events o ON o.seq = d.event_seq
		WHERE d.tenant_id = $1 AND d.id = $2 AND d.status <> 'cancelled'`
	if lock {
		q += ` FOR UPDATE OF d`
	}
	var row storedDelivery
	if err := tx.GetContext(ctx, &row, q, tenant, id); err != nil {
		if isNoRows(err) {
			return outbox.Delivery{}, referral.NotFound("webhook delivery")
		}
		return outbox.Delivery{}, fmt.Errorf("get webhook delivery: %w", err)
	}
	ds := []outbox.Delivery{row.domain()}
	if err := withAttempts(ctx, tx, ds); err != nil {
		return outbox.Delivery{}, err
	}
	return ds[0], nil
}

// ListDeliveries returns a page of the endpoint's deliveries, newest first, with their attempts,
// and the total. Errors: NOT_FOUND.
func (s *Store) ListDeliveries(ctx context.Context, tenant string, endpoint uuid.UUID, status *string, limit, offset int) ([]outbox.Delivery, int, error) {
	const q = `SELECT ` + deliveryCols + `
		FROM webhook_deliveries d JOIN outbox_events o ON o.seq = d.event_seq
		WHERE d.tenant_id = $1 AND d.endpoint_id = $2 AND d.status <> 'cancelled' AND ($3::text IS NULL OR d.status = $3)
		ORDER BY d.created_at DESC, d.id DESC LIMIT $4 OFFSET $5`
	const count = `SELECT count(*) FROM webhook_deliveries d
		WHERE d.tenant_id = $1 AND d.endpoint_id = $2 AND d.status <> 'cancelled' AND ($3::text IS NULL OR d.status = $3)`
	var (
		out   []outbox.Delivery
		total int
	)
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		if _, err := endpointByID(ctx, tx, tenant, endpoint, false); err != nil {
			return err
		}
		var rows []storedDelivery
		if err := tx.SelectContext(ctx, &rows, q, tenant, endpoint, status, limit, offset); err != nil {
			return fmt.Errorf("list webhook deliveries: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, tenant, endpoint, status); err != nil {
			return fmt.Errorf("count webhook deliveries: %w", err)
		}
		out = make([]outbox.Delivery, 0, len(rows))
		for _, r := range rows {
			out = append(out, r.domain())
		}
		return withAttempts(ctx, tx, out)
	})
	return out, total, err
}

// RetryDelivery makes a failed or pending delivery due now; a failed one gets one more attempt.
// Errors: NOT_FOUND, INVALID_TRANSITION (delivered).
func (s *Store) RetryDelivery(ctx context.Context, tenant string, id uuid.UUID) (outbox.Delivery, error) {
	const q = `UPDATE webhook_deliveries SET status = 'pending', next_at = now(), updated_at = $2 WHERE id = $1`
	var out outbox.Delivery
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		d, err := deliveryByID(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if d.Status == outbox.DeliveryDelivered {
			return referral.Errorf(referral.EInvalidTransition, "the delivery was delivered")
		}
		if _, err := tx.ExecContext(ctx, q, id, s.now()); err != nil {
			return fmt.Errorf("retry webhook delivery: %w", err)
		}
		out, err = deliveryByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// Replay queues a new delivery to the endpoint of each of the tenant's events since since that
// the endpoint wants. Errors: NOT_FOUND, VALIDATION_FAILED (since).
func (s *Store) Replay(ctx context.Context, tenant string, endpoint uuid.UUID, since time.Time) (outbox.ReplayResult, error) {
	const q = `
		INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, status, next_at, created_at, updated_at)
		SELECT gen_random_uuid(), $1, e.id, o.seq, 'pending', now(), $4, $4
		FROM webhook_endpoints e JOIN outbox_events o ON o.tenant_id = e.tenant_id
		WHERE e.id = $2 AND o.created_at >= $3 AND phoenix_webhook_wants(e.event_types, o.type)
		ORDER BY o.xid, o.seq`
	out := outbox.ReplayResult{EndpointID: endpoint, Since: since.UTC()}
	if err := s.checkReplaySince(since); err != nil {
		return out, err
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := endpointByID(ctx, tx, tenant, endpoint, false); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, q, tenant, endpoint, since, s.now())
		if err != nil {
			return fmt.Errorf("replay webhook events: %w", err)
		}
		n, err := res.RowsAffected()
		out.Queued = int(n)
		return err
	})
	return out, err
}

// ClaimDeliveries leases up to limit due pending deliveries of live, active endpoints to the
// caller for lease, at most perEndpoint of one endpoint and none of the endpoints in busy (the
// caller's saturated ones). Rows other dispatchers are locking are skipped (FOR UPDATE SKIP
// LOCKED) and a leased delivery is invisible to them until its lease ends, so no delivery is
// held by two dispatchers; a crashed holder's deliveries come back when their leases end.
func (s *Store) ClaimDeliveries(ctx context.Context, limit, perEndpoint int, busy []uuid.UUID, lease time.Duration) ([]outbox.Lease, error) {
	// One statement leases and returns what the attempts need.
	const q = `
		WITH due AS (
		    SELECT d.id FROM webhook_endpoints e
		    CROSS JOIN LATERAL (
		        SELECT d.id FROM webhook_deliveries d
		        WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_at <= now()
		            AND (d.lease_until IS NULL OR d.lease_until < now())
		        ORDER BY d.next_at LIMIT $2
		        FOR UPDATE SKIP LOCKED) d
		    WHERE e.active AND e.deleted_at IS NULL AND NOT (e.id = ANY ($3::uuid[]))
		    LIMIT $1)
		UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => $4), lease_token = $5
		FROM due, webhook_endpoints e, outbox_events o
		WHERE d.id = due.id AND e.id = d.endpoint_id AND o.seq = d.event_seq
		RETURNING d.id AS delivery_id, d.endpoint_id, d.attempts, d.lease_until, e.url, e.secret,
		    CASE WHEN e.previous_until > now() THEN e.previous_secret END AS previous_secret, ` + eventCols
	var out []outbox.Lease
	err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
		out = nil
		token := uuid.New()
		var rows []struct {
			DeliveryID     uuid.UUID `db:"delivery_id"`
			EndpointID     uuid.UUID `db:"endpoint_id"`
			Attempts       int       `db:"attempts"`
			LeaseUntil     time.Time `db:"lease_until"`
			URL            string    `db:"url"`
			Secret         []byte    `db:"secret"`
			PreviousSecret []byte    `db:"previous_secret"`
			storedEvent
		}
		if err := tx.SelectContext(ctx, &rows, q, limit, perEndpoint, uuidArray(busy), lease.Seconds(), token); err != nil {
			return fmt.Errorf("claim webhook deliveries: %w", err)
		}
		for _, r := range rows {
			secrets := [][]byte{r.Secret}
			if r.PreviousSecret != nil {
				secrets = append(secrets, r.PreviousSecret)
			}
			out = append(out, outbox.Lease{DeliveryID: r.DeliveryID, Token: token, EndpointID: r.EndpointID, URL: r.URL,
				Secrets: secrets, Event: r.storedEvent.domain(), Attempts: r.Attempts, Until: r.LeaseUntil})
		}
		return nil
	})
	return out, err
}

// RecordAttempts stores the outcomes of attempts on leased deliveries and releases their
// leases, all in one transaction of a fixed number of statements: a delivered delivery is done;
// a failed attempt is retried after the schedule's pause (outbox.Retry, jittered) or, past the
// schedule, fails the delivery. An endpoint's run of failures starts at its first failed
// attempt and ends at a success; an endpoint failing for outbox.DeactivateAfter is
// deactivated. kept[i] reports whether the lease of outcomes[i] was still held: a lost lease
// (the delivery was cancelled, or the lease ended and another dispatcher took it) writes
// nothing.
func (s *Store) RecordAttempts(ctx context.Context, outcomes []outbox.Recorded, schedule []time.Duration) ([]bool, error) {
	const upd = `
		UPDATE webhook_deliveries d SET status = t.status, attempts = d.attempts + 1, next_at = t.next_at,
		    updated_at = $6, lease_until = NULL, lease_token = NULL
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::int[]) AS t(id, token, status, next_at, n)
		WHERE d.id = t.id AND d.lease_token = t.token AND d.status = 'pending' AND d.attempts + 1 = t.n
		RETURNING d.id`
	const attempts = `
		INSERT INTO webhook_attempts (delivery_id, n, at, status_code, duration_ms, error, response_excerpt)
		SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::int[], $5::int[], $6::text[], $7::text[])`
	// Failures first, then successes: an endpoint that answered in this batch is healthy.
	const failing = `
		UPDATE webhook_endpoints e SET failing_since = coalesce(e.failing_since, t.at)
		FROM (SELECT id, min(at) AS at FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) GROUP BY id ORDER BY id) t
		WHERE e.id = t.id AND NOT (e.id = ANY ($3::uuid[]))
		RETURNING e.id, e.failing_since`
	const healthy = `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ANY ($1::uuid[]) AND failing_since IS NOT NULL`
	const deactivate = `UPDATE webhook_endpoints SET active = false, updated_at = $2 WHERE id = ANY ($1::uuid[]) AND active`
	kept := make([]bool, len(outcomes))
	if len(outcomes) == 0 {
		return kept, nil
	}
	err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
		now := s.now()
		n := len(outcomes)
		ids, tokens, statuses, nexts, ns := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for i, r := range outcomes {
			status, next := outbox.DeliveryDelivered, now
			if !r.Outcome.Delivered {
				status = outbox.DeliveryFailed
				if pause, ok := outbox.Retry(schedule, r.Lease.Attempts+1, rand.Float64()); ok {
					status, next = outbox.DeliveryPending, now.Add(pause)
				}
			}
			ids[i], tokens[i], statuses[i] = r.Lease.DeliveryID.String(), r.Lease.Token.String(), status
			nexts[i], ns[i] = next.Format(time.RFC3339Nano), int64(r.Lease.Attempts+1)
		}
		var done []uuid.UUID
		if err := tx.SelectContext(ctx, &done, upd, pq.StringArray(ids), pq.StringArray(tokens), pq.StringArray(statuses),
			pq.StringArray(nexts), pq.Int64Array(ns), now); err != nil {
			return fmt.Errorf("record webhook attempts: %w", err)
		}
		held := make(map[uuid.UUID]bool, len(done))
		for _, id := range done {
			held[id] = true
		}
		var (
			aIDs, aAts, aErrs, aExcerpts pq.StringArray
			aNs, aCodes, aDurs           pq.Int64Array
			codeValid, errValid, exValid []bool
			okEndpoints, badEndpoints    []uuid.UUID
			badAts                       pq.StringArray
		)
		for i, r := range outcomes {
			kept[i] = held[r.Lease.DeliveryID]
			if !kept[i] {
				continue
			}
			a := r.Outcome.Attempt
			aIDs, aNs, aAts = append(aIDs, ids[i]), append(aNs, ns[i]), append(aAts, a.At.Format(time.RFC3339Nano))
			aDurs = append(aDurs, a.Duration.Milliseconds())
			code, msg, ex := 0, "", ""
			if a.StatusCode != nil {
				code = *a.StatusCode
			}
			if a.Error != nil {
				msg = *a.Error
			}
			if a.ResponseExcerpt != nil {
				ex = *a.ResponseExcerpt
			}
			aCodes, aErrs, aExcerpts = append(aCodes, int64(code)), append(aErrs, msg), append(aExcerpts, ex)
			codeValid, errValid, exValid = append(codeValid, a.StatusCode != nil), append(errValid, a.Error != nil), append(exValid, a.ResponseExcerpt != nil)
			if r.Outcome.Delivered {
				okEndpoints = append(okEndpoints, r.Lease.EndpointID)
			} else {
				badEndpoints, badAts = append(badEndpoints, r.Lease.EndpointID), append(badAts, a.At.Format(time.RFC3339Nano))
			}
		}
		if len(aIDs) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, attempts, aIDs, aNs, aAts, nullInts(aCodes, codeValid), aDurs,
			nullTexts(aErrs, errValid), nullTexts(aExcerpts, exValid)); err != nil {
			return fmt.Errorf("record webhook attempts: %w", err)
		}
		if len(badEndpoints) > 0 {
			var rows []struct {
				ID    uuid.UUID `db:"id"`
				Since time.Time `db:"failing_since"`
			}
			if err := tx.SelectContext(ctx, &rows, failing, uuidArray(badEndpoints), badAts, uuidArray(okEndpoints)); err != nil {
				return fmt.Errorf("record endpoint failures: %w", err)
			}
			var off []uuid.UUID
			for _, r := range rows {
				if outbox.Deactivate(&r.Since, now) {
					off = append(off, r.ID)
				}
			}
			if len(off) > 0 {
				if _, err := tx.ExecContext(ctx, deactivate, uuidArray(off), now); err != nil {
					return fmt.Errorf("deactivate webhook endpoints: %w", err)
				}
			}
		}
		if len(okEndpoints) > 0 {
			if _, err := tx.ExecContext(ctx, healthy, uuidArray(okEndpoints)); err != nil {
				return fmt.Errorf("record endpoint health: %w", err)
			}
		}
		return nil
	})
	return kept, err
}

// nullInts renders vs as an int[] parameter with NULL where valid is false.
func nullInts(vs pq.Int64Array, valid []bool) pq.GenericArray {
	out := make([]*int64, len(vs))
	for i := range vs {
		if valid[i] {
			out[i] = &vs[i]
		}
	}
	return pq.GenericArray{A: out}
}

// nullTexts renders vs as a text[] parameter with NULL where valid is false.
func nullTexts(vs pq.StringArray, valid []bool) pq.GenericArray {
	out := make([]*string, len(vs))
	for i := range vs {
		if valid[i] {
			out[i] = &vs[i]
		}
	}
	return pq.GenericArray{A: out}
}

// Backlog returns how many deliveries of live, active endpoints are pending and the age of the
// oldest of them (the delivery metrics).
func (s *Store) Backlog(ctx context.Context) (int64, time.Duration, error) {
	const q = `
		SELECT count(*) AS pending,
		    coalesce(extract(epoch FROM now() - min(d.created_at)), 0)::float8 AS oldest
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND e.active AND e.deleted_at IS NULL`
	var row struct {
		Pending int64   `db:"pending"`
		Oldest  float64 `db:"oldest"`
	}
	err := s.readTx(ctx, func(tx *sqlx.Tx) error { return tx.GetContext(ctx, &row, q) })
	if err != nil {
		return 0, 0, fmt.Errorf("webhook backlog: %w", err)
	}
	return row.Pending, time.Duration(row.Oldest * float64(time.Second)), nil
}

// CountEndpoints returns how many live endpoints exist in all tenants (the Admin Gateway refuses
// to start without a secret key while there are any).
func (s *Store) CountEndpoints(ctx context.Context) (int, error) {
	var n int
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &n, `SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL`)
	})
	if err != nil {
		return 0, fmt.Errorf("count webhook endpoints: %w", err)
	}
	return n, nil
}
