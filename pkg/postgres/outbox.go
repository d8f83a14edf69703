package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Store implements the outbox's services.
var (
	_ outbox.FeedService     = (*Store)(nil)
	_ outbox.EndpointService = (*Store)(nil)
)

// publish writes msgs as outbound events of the tenant inside tx, the transaction of the fact
// they describe (SPEC §11: rolled back together), stamped now, and in the same statement a
// pending delivery of each to every live, active endpoint of the tenant that wants its type.
// Every write that publishes calls it once with all its messages; a write that changed nothing
// calls it with none, which costs nothing.
func publish(ctx context.Context, tx *sqlx.Tx, tenant string, now time.Time, msgs ...outbox.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids, types, data := make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m.Data)
		if err != nil {
			return fmt.Errorf("publish %s: %w", m.Type, err)
		}
		ids[i], types[i], data[i] = uuid.NewString(), m.Type, string(b)
	}
	const q = `
		WITH ev AS (
		    INSERT INTO outbox_events (id, tenant_id, type, data, created_at)
		    SELECT t.id, $1, t.type, t.data::json, $2
		    FROM unnest($3::uuid[], $4::text[], $5::text[]) WITH ORDINALITY AS t(id, type, data, n)
		    ORDER BY t.n
		    RETURNING seq, type)
		INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, status, next_at, created_at, updated_at)
		SELECT gen_random_uuid(), $1, e.id, ev.seq, 'pending', now(), $2, $2
		FROM ev JOIN webhook_endpoints e
		    ON e.tenant_id = $1 AND e.active AND e.deleted_at IS NULL AND phoenix_webhook_wants(e.event_types, ev.type)`
	if _, err := tx.ExecContext(ctx, q, tenant, now, pq.StringArray(ids), pq.StringArray(types), pq.StringArray(data)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// storedEvent is an outbox_events row.
type storedEvent struct {
	Seq       int64           `db:"seq"`
	Xid       string          `db:"xid"`
	ID        uuid.UUID       `db:"id"`
	TenantID  string          `db:"tenant_id"`
	Type      string          `db:"type"`
	Data      json.RawMessage `db:"data"`
	CreatedAt time.Time       `db:"created_at"`
}

// eventCols selects an outbox event aliased o.
const eventCols = `o.seq, o.xid::text AS xid, o.id, o.tenant_id, o.type, o.data, o.created_at`

func (r storedEvent) domain() outbox.Event {
	return outbox.Event{ID: r.ID, TenantID: r.TenantID, Type: r.Type, Data: r.Data, CreatedAt: r.CreatedAt.UTC()}
}

// Feed returns a page of the tenant's events after f.After. The page is read in one REPEATABLE
// READ snapshot: a cursor without a window opens one bounded by that snapshot; the events read
// are those of transactions completed in the window's snapshot but not in the cursor's Seen one,
// in (transaction id, seq) order. A page that is not full closes the window (its snapshot
// becomes Seen), so a reader filtering by type does not rescan what it skipped. f.Head starts
// at the current snapshot. Errors: VALIDATION_FAILED (after: expired).
func (s *Store) Feed(ctx context.Context, tenant string, f outbox.FeedFilter) (outbox.FeedPage, error) {
	const snap = `SELECT pg_current_snapshot()::text`
	const expired = `SELECT EXISTS (SELECT 1 FROM outbox_pruned
		WHERE tenant_id = $1 AND NOT pg_visible_in_snapshot(xid, $2::pg_snapshot))`
	const q = `
		SELECT ` + eventCols + ` FROM outbox_events o
		WHERE o.tenant_id = $1
		    AND ($2::pg_snapshot IS NULL
		         OR (o.xid >= pg_snapshot_xmin($2::pg_snapshot) AND NOT pg_visible_in_snapshot(o.xid, $2::pg_snapshot)))
		    AND pg_visible_in_snapshot(o.xid, $3::pg_snapshot)
		    AND (o.xid, o.seq) > ($4::text::xid8, $5::bigint)
		    AND (cardinality($6::text[]) = 0 OR o.type = ANY ($6::text[]))
		ORDER BY o.xid, o.seq
		LIMIT $7`
	var page outbox.FeedPage
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		// The transaction's snapshot: what this page can see.
		var now string
		if err := tx.GetContext(ctx, &now, snap); err != nil {
			return fmt.Errorf("feed snapshot: %w", err)
		}
		if f.Head {
			page = outbox.FeedPage{Events: []outbox.Event{}, Next: outbox.Cursor{Seen: now}}
			return nil
		}
		var after outbox.Cursor
		if f.After != nil {
			after = *f.After
		}
		if after.Seen != "" {
			var gone bool
			if err := tx.GetContext(ctx, &gone, expired, tenant, after.Seen); err != nil {
				return fmt.Errorf("feed pruned mark: %w", err)
			}
			if gone {
				return outbox.ExpiredCursor()
			}
		}
		if after.Window == "" {
			after.Window, after.Xid, after.Seq = now, 0, 0
		}
		seen := sql.NullString{String: after.Seen, Valid: after.Seen != ""}
		var rows []storedEvent
		if err := tx.SelectContext(ctx, &rows, q, tenant, seen, after.Window, strconv.FormatUint(after.Xid, 10), after.Seq,
			pq.StringArray(append([]string{}, f.Types...)), f.Limit); err != nil {
			return fmt.Errorf("feed: %w", err)
		}
		page = outbox.FeedPage{Events: make([]outbox.Event, 0, len(rows))}
		for _, r := range rows {
			page.Events = append(page.Events, r.domain())
		}
		if len(rows) < f.Limit {
			page.Next = outbox.Cursor{Seen: after.Window}
			return nil
		}
		last := rows[len(rows)-1]
		x, err := strconv.ParseUint(last.Xid, 10, 64)
		if err != nil {
			return fmt.Errorf("event %d: xid %q: %w", last.Seq, last.Xid, err)
		}
		page.Next = outbox.Cursor{Seen: after.Seen, Window: after.Window, Xid: x, Seq: last.Seq}
		return nil
	})
	return page, err
}

// PruneOutbox deletes events recorded before before (their deliveries and attempts go with
// them; a statement sees only committed rows) and records per tenant the newest transaction it
// deleted events of, so a cursor that has not read that transaction is answered as expired. It returns how many events it deleted.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	const q = `
		WITH gone AS (
		    DELETE FROM outbox_events WHERE seq IN (
		        SELECT seq FROM outbox_events
		        WHERE created_at < $1
		        ORDER BY created_at LIMIT $2)
		    RETURNING tenant_id, xid, seq),
		mark AS (
		    INSERT INTO outbox_pruned (tenant_id, xid) SELECT tenant_id, max(xid) FROM gone GROUP BY tenant_id
		    ON CONFLICT (tenant_id) DO UPDATE SET xid = EXCLUDED.xid WHERE outbox_pruned.xid < EXCLUDED.xid)
		SELECT count(*) FROM gone`
	var total int64
	for {
		var n int64
		err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &n, q, before, pruneBatch)
		})
		if err != nil {
			return total, fmt.Errorf("prune outbox: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// retentionStart is the oldest time the outbox still holds events of.
func (s *Store) retentionStart() time.Time { return s.now().Add(-s.OutboxRetention) }

// checkReplaySince refuses a replay from before the retention. Errors: VALIDATION_FAILED.
func (s *Store) checkReplaySince(since time.Time) error {
	if since.Before(s.retentionStart()) {
		return referral.Invalid("since", "is older than the outbox retention")
	}
	return nil
}
