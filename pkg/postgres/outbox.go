package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
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

func (r storedEvent) cursor() (outbox.Cursor, error) {
	x, err := strconv.ParseUint(r.Xid, 10, 64)
	if err != nil {
		return outbox.Cursor{}, fmt.Errorf("event %d: xid %q: %w", r.Seq, r.Xid, err)
	}
	return outbox.Cursor{Xid: x, Seq: r.Seq}, nil
}

// Feed returns a page of the tenant's events after f.After in (transaction id, seq) order, only
// of transactions below the snapshot's xmin: every such transaction has ended, so no event can
// appear behind the returned cursor later and none is read twice. A page that is not full moves
// the cursor up to that mark, so a reader filtering by type does not rescan what it skipped.
// f.Head starts at the mark. Errors: VALIDATION_FAILED (after: expired).
func (s *Store) Feed(ctx context.Context, tenant string, f outbox.FeedFilter) (outbox.FeedPage, error) {
	const mark = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`
	const pruned = `SELECT xid::text AS xid, seq FROM outbox_pruned WHERE tenant_id = $1`
	const q = `
		SELECT ` + eventCols + ` FROM outbox_events o
		WHERE o.tenant_id = $1 AND (o.xid, o.seq) > ($2::text::xid8, $3::bigint) AND o.xid < $4::text::xid8
		    AND (cardinality($5::text[]) = 0 OR o.type = ANY ($5::text[]))
		ORDER BY o.xid, o.seq
		LIMIT $6`
	var page outbox.FeedPage
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		var xminText string
		if err := tx.GetContext(ctx, &xminText, mark); err != nil {
			return fmt.Errorf("feed mark: %w", err)
		}
		xmin, err := strconv.ParseUint(xminText, 10, 64)
		if err != nil {
			return fmt.Errorf("feed mark %q: %w", xminText, err)
		}
		// Every transaction below xmin has ended: the mark is the cursor just before xmin.
		head := outbox.Cursor{Xid: xmin - 1, Seq: math.MaxInt64}
		var after outbox.Cursor
		switch {
		case f.Head:
			after = head
		case f.After != nil:
			after = *f.After
			var p struct {
				Xid string `db:"xid"`
				Seq int64  `db:"seq"`
			}
			switch err := tx.GetContext(ctx, &p, pruned, tenant); {
			case isNoRows(err):
			case err != nil:
				return fmt.Errorf("feed pruned mark: %w", err)
			default:
				x, err := strconv.ParseUint(p.Xid, 10, 64)
				if err != nil {
					return fmt.Errorf("feed pruned mark %q: %w", p.Xid, err)
				}
				if after.Before(outbox.Cursor{Xid: x, Seq: p.Seq}) {
					return outbox.ExpiredCursor()
				}
			}
		}
		var rows []storedEvent
		if err := tx.SelectContext(ctx, &rows, q, tenant, strconv.FormatUint(after.Xid, 10), after.Seq,
			xminText, pq.StringArray(append([]string{}, f.Types...)), f.Limit); err != nil {
			return fmt.Errorf("feed: %w", err)
		}
		page = outbox.FeedPage{Events: make([]outbox.Event, 0, len(rows)), Next: after}
		for _, r := range rows {
			page.Events = append(page.Events, r.domain())
		}
		switch {
		case len(rows) == f.Limit:
			page.Next, err = rows[len(rows)-1].cursor()
			return err
		case head.Before(after):
			// A cursor from the future (another database): keep it, it is never passed.
		default:
			page.Next = head
		}
		return nil
	})
	return page, err
}

// pruneBatch bounds the events one pruning statement deletes.
const pruneBatch = 10000

// PruneOutbox deletes events recorded before before whose transactions have ended (their
// deliveries and attempts go with them) and records per tenant how far it deleted, so an older
// cursor is answered as expired. It returns how many events it deleted.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	const q = `
		WITH gone AS (
		    DELETE FROM outbox_events WHERE seq IN (
		        SELECT seq FROM outbox_events
		        WHERE created_at < $1 AND xid < pg_snapshot_xmin(pg_current_snapshot())
		        ORDER BY created_at LIMIT $2)
		    RETURNING tenant_id, xid, seq),
		last AS (
		    SELECT DISTINCT ON (tenant_id) tenant_id, xid, seq FROM gone ORDER BY tenant_id, xid DESC, seq DESC),
		mark AS (
		    INSERT INTO outbox_pruned (tenant_id, xid, seq) SELECT tenant_id, xid, seq FROM last
		    ON CONFLICT (tenant_id) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq
		    WHERE (outbox_pruned.xid, outbox_pruned.seq) < (EXCLUDED.xid, EXCLUDED.seq))
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
