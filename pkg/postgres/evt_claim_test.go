package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestEvtClaimWaitsForOpenTransaction holds an event id in an open transaction (as a concurrent
// request still processing it would) and checks that ProcessEvent waits for it: it replays the
// stored outcome when that transaction commits, and processes the event itself when it rolls
// back.
func TestEvtClaimWaitsForOpenTransaction(t *testing.T) {
	db := pgtest.DB(t)
	store := postgres.NewStore(db)
	ctx := context.Background()
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "commit", false: "rollback"}[commit]
		t.Run(name, func(t *testing.T) {
			tenant := pgtest.Tenant(t)
			ev := referral.Event{TenantID: tenant, EventID: "held", Type: "deposit.completed", UserID: "u1",
				OccurredAt: time.Now().UTC().Truncate(time.Microsecond), Payload: json.RawMessage(`{}`)}
			holder, err := db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Rollback()
			const hold = `INSERT INTO events (tenant_id, event_id, type, user_id, occurred_at, payload, outcome, created_at)
				VALUES ($1, 'held', 'other.type', 'u0', now(), '{}', '{"rewards": [], "commissions": []}', now())`
			if _, err := holder.Exec(hold, tenant); err != nil {
				t.Fatal(err)
			}
			done := make(chan referral.EventOutcome, 1)
			errs := make(chan error, 1)
			go func() {
				out, err := store.ProcessEvent(ctx, ev)
				if err != nil {
					errs <- err
					return
				}
				done <- out
			}()
			// The claim waits on the held row: only then does the outcome depend on how the
			// holder ends.
			pgtest.WaitForLock(t, db, "INSERT INTO events")
			select {
			case out := <-done:
				t.Fatalf("ProcessEvent returned %+v while the id was held", out)
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if commit {
				if err := holder.Commit(); err != nil {
					t.Fatal(err)
				}
			} else if err := holder.Rollback(); err != nil {
				t.Fatal(err)
			}
			var out referral.EventOutcome
			select {
			case out = <-done:
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(10 * time.Second):
				t.Fatal("ProcessEvent still waiting")
			}
			want := map[bool]string{true: referral.EventDuplicate, false: referral.EventProcessed}[commit]
			if out.Status != want || out.EventID != "held" {
				t.Fatalf("outcome = %+v, want status %s", out, want)
			}
			var typ string
			if err := db.Get(&typ, `SELECT type FROM events WHERE tenant_id = $1 AND event_id = 'held'`, tenant); err != nil {
				t.Fatal(err)
			}
			if wantType := map[bool]string{true: "other.type", false: "deposit.completed"}[commit]; typ != wantType {
				t.Fatalf("stored type = %q, want %q", typ, wantType)
			}
		})
	}
}

// TestEvtBatchDuplicatesInOrder checks the bookkeeping of ids (no referrals involved): an id
// stored earlier and a repeat inside the batch are duplicates, in place; a simulation leaves its
// id unused.
func TestEvtBatchDuplicatesInOrder(t *testing.T) {
	store := postgres.NewStore(pgtest.DB(t))
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := func(id string) referral.Event {
		return referral.Event{TenantID: tenant, EventID: id, Type: "x", UserID: "u", OccurredAt: now, Payload: json.RawMessage(`{}`)}
	}
	if _, err := store.ProcessEvent(ctx, ev("a")); err != nil {
		t.Fatal(err)
	}
	outs, err := store.ProcessBatch(ctx, tenant, []referral.Event{ev("a"), ev("b"), ev("b"), ev("c")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, o.EventID+":"+o.Status)
	}
	want := []string{"a:duplicate", "b:processed", "b:duplicate", "c:processed"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outcomes = %v, want %v", got, want)
		}
	}
	sim, err := store.Simulate(ctx, ev("d"))
	if err != nil || sim.Status != referral.EventSimulated {
		t.Fatalf("Simulate = %+v, %v", sim, err)
	}
	if out, err := store.ProcessEvent(ctx, ev("d")); err != nil || out.Status != referral.EventProcessed {
		t.Fatalf("after simulation ProcessEvent = %+v, %v", out, err)
	}
}

// evtClaimLog creates a fresh database whose events table logs every row inserted and deleted,
// in order, to event_claims.
func evtClaimLog(t *testing.T) *sqlx.DB {
	t.Helper()
	db := pgtest.MustOpenDB(t)
	const logging = `
		CREATE TABLE event_claims (seq bigserial PRIMARY KEY, event_id text NOT NULL, op text NOT NULL,
		    xid xid8 NOT NULL DEFAULT pg_current_xact_id());
		CREATE FUNCTION log_event_claim() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    IF TG_OP = 'DELETE' THEN
		        INSERT INTO event_claims (event_id, op) VALUES (OLD.event_id, 'delete');
		        RETURN OLD;
		    END IF;
		    INSERT INTO event_claims (event_id, op) VALUES (NEW.event_id, 'insert');
		    RETURN NEW;
		END $$;
		CREATE TRIGGER events_claims AFTER INSERT OR DELETE ON events
		    FOR EACH ROW EXECUTE FUNCTION log_event_claim();`
	if _, err := db.Exec(logging); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestEvtBatchPartlyClaimedElsewhere holds one id of a batch in an open transaction that then
// commits. The batch's claim must block on that row (checked in pg_stat_activity, not assumed
// after a sleep); once the holder commits, the batch must give back the rows it claimed for its
// other events, decide them again, and answer the held id as a duplicate — which the database's
// own log of inserted and deleted rows shows.
func TestEvtBatchPartlyClaimedElsewhere(t *testing.T) {
	db := evtClaimLog(t)
	store := postgres.NewStore(db)
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := func(id string) referral.Event {
		return referral.Event{TenantID: tenant, EventID: id, Type: "x", UserID: "u", OccurredAt: now, Payload: json.RawMessage(`{}`)}
	}
	holder, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.Exec(`INSERT INTO events (tenant_id, event_id, type, user_id, occurred_at, payload, outcome, created_at)
		VALUES ($1, 'b', 'held.type', 'u0', now(), '{}', '{"rewards": [], "commissions": []}', now())`, tenant); err != nil {
		t.Fatal(err)
	}
	var holderXID string
	if err := holder.Get(&holderXID, `SELECT pg_current_xact_id()::text`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		outs []referral.EventOutcome
		err  error
	}
	done := make(chan result, 1)
	go func() {
		outs, err := store.ProcessBatch(ctx, tenant, []referral.Event{ev("a"), ev("b"), ev("c")})
		done <- result{outs, err}
	}()
	pgtest.WaitForLock(t, db, "INSERT INTO events")
	select {
	case r := <-done:
		t.Fatalf("ProcessBatch returned %+v, %v while b was held", r.outs, r.err)
	default:
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ProcessBatch still waiting")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var got []string
	for _, o := range r.outs {
		got = append(got, o.EventID+":"+o.Status)
	}
	if want := "a:processed b:duplicate c:processed"; strings.Join(got, " ") != want {
		t.Fatalf("outcomes = %v, want %s", got, want)
	}
	var stored []string
	if err := db.Select(&stored, `SELECT event_id || ':' || type FROM events WHERE tenant_id = $1 ORDER BY event_id`, tenant); err != nil {
		t.Fatal(err)
	}
	if want := "a:x b:held.type c:x"; strings.Join(stored, " ") != want {
		t.Fatalf("stored events %v, want %s", stored, want)
	}

	// The release path: the batch claimed a and c, met the held b, gave a and c back, and
	// claimed them again — all in one transaction, never touching b's row.
	var log []struct {
		EventID string `db:"event_id"`
		Op      string `db:"op"`
		XID     string `db:"xid"`
	}
	if err := db.Select(&log, `SELECT event_id, op, xid::text AS xid FROM event_claims ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	ops := map[string][]string{}
	batchXID := ""
	for _, l := range log {
		ops[l.EventID] = append(ops[l.EventID], l.Op)
		if l.XID == holderXID {
			if l.EventID != "b" {
				t.Errorf("the holder wrote %s %s", l.Op, l.EventID)
			}
			continue
		}
		if batchXID == "" {
			batchXID = l.XID
		} else if l.XID != batchXID {
			t.Errorf("the batch ran in more than one transaction: %+v", log)
		}
	}
	for id, want := range map[string]string{"a": "insert delete insert", "b": "insert", "c": "insert delete insert"} {
		if got := strings.Join(ops[id], " "); got != want {
			t.Errorf("row %s: %s, want %s (log %+v)", id, got, want, log)
		}
	}
}
