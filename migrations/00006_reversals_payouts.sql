-- Reversals, commission hold and payouts (SPEC §10). The ledgers stay append-only: a reversal
-- is a new negative row naming the row it reverses, a row's state is derived from its
-- available_at and the payout that holds it, and nothing here updates or deletes a ledger row
-- (except the one-off backfill of available_at below, for rows written before holds existed).

-- +goose Up

-- Negative rows: a reversal row has reverses_id (the positive row it reverses) and a negative
-- amount; every other row stays positive. reason is an admin's note on a per-row reversal.
ALTER TABLE commissions DROP CONSTRAINT commissions_amount_check;
ALTER TABLE commissions
    ADD COLUMN reverses_id  uuid REFERENCES commissions (id),
    ADD COLUMN reason       text,
    ADD COLUMN available_at timestamptz;
ALTER TABLE commissions ADD CONSTRAINT commissions_amount_sign
    CHECK ((reverses_id IS NULL AND amount > 0) OR (reverses_id IS NOT NULL AND amount < 0));
-- Rows written before holds existed were payable at once. The append-only trigger is lifted for
-- this one statement of the migration only.
ALTER TABLE commissions DISABLE TRIGGER commissions_append_only;
UPDATE commissions SET available_at = created_at;
ALTER TABLE commissions ENABLE TRIGGER commissions_append_only;
ALTER TABLE commissions ALTER COLUMN available_at SET NOT NULL;
CREATE INDEX commissions_reverses ON commissions (reverses_id) WHERE reverses_id IS NOT NULL;
-- A payout run reads an affiliate's rows in one currency.
CREATE INDEX commissions_payable ON commissions (tenant_id, currency_id, affiliate_id, available_at);

ALTER TABLE rewards DROP CONSTRAINT rewards_amount_check;
ALTER TABLE rewards ADD COLUMN reverses_id uuid REFERENCES rewards (id);
ALTER TABLE rewards ADD CONSTRAINT rewards_amount_sign
    CHECK ((reverses_id IS NULL AND amount > 0) OR (reverses_id IS NOT NULL AND amount < 0));
CREATE UNIQUE INDEX rewards_reverses ON rewards (reverses_id) WHERE reverses_id IS NOT NULL;

-- Campaigns may claw their rewards back when the event that paid them is reversed in full.
ALTER TABLE campaigns ADD COLUMN clawback boolean NOT NULL DEFAULT false;

-- Event reversals (§10.1): one row per processed reversal event. amount is the part of the
-- original's base B it reversed (0 for the full reversal of an original without commissions).
CREATE TABLE event_reversals (
    tenant_id         text        NOT NULL,
    event_id          text        NOT NULL,
    reverses_event_id text        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount >= 0),
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id),
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, event_id),
    FOREIGN KEY (tenant_id, reverses_event_id) REFERENCES events (tenant_id, event_id)
);
CREATE INDEX event_reversals_original ON event_reversals (tenant_id, reverses_event_id);

-- Reversals of deferred events (§12) wait with them: what each reverses, replayed with it by
-- the review.
CREATE TABLE deferred_reversals (
    tenant_id         text   NOT NULL,
    event_id          text   NOT NULL,
    reverses_event_id text   NOT NULL,
    reverse_amount    bigint CHECK (reverse_amount > 0),
    PRIMARY KEY (tenant_id, event_id)
);

-- The tenant's hold and payout policy (§10.2): one row per tenant, defaults until one is put.
CREATE TABLE payout_policies (
    tenant_id      text        PRIMARY KEY,
    hold_days      integer     NOT NULL CHECK (hold_days BETWEEN 0 AND 365),
    minimum_payout jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- Payouts (§10.3).
CREATE TABLE payouts (
    id           uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    affiliate_id uuid        NOT NULL REFERENCES affiliates (id),
    user_id      text        NOT NULL,
    currency_id  text        NOT NULL,
    amount       bigint      NOT NULL CHECK (amount > 0),
    rows         integer     NOT NULL CHECK (rows > 0),
    status       text        NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    reference    text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    paid_at      timestamptz
);
CREATE INDEX payouts_tenant ON payouts (tenant_id, created_at DESC, id DESC);
CREATE INDEX payouts_affiliate ON payouts (affiliate_id, created_at DESC, id DESC);

-- Which commission rows a payout covers. live is true while the payout is pending or paid and
-- NULL once it failed (its rows are released). The unique index over (commission_id, live) is
-- what keeps a row in at most one live payout, whatever runs commit at once: two live
-- memberships of a row collide, released ones (NULL, distinct in a unique index) never do, and
-- the same index finds every membership of a row. A run inserts up to millions of rows in one
-- statement, so the table is kept lean: this is its only index (a payout's rows are found
-- through its affiliate's commissions), and it has no foreign keys (the rows come from the
-- commissions and payouts the same transaction has just read and written; nothing deletes
-- either).
CREATE TABLE payout_rows (
    payout_id     uuid    NOT NULL,
    commission_id uuid    NOT NULL,
    live          boolean DEFAULT true CHECK (live)
);
CREATE UNIQUE INDEX payout_rows_live ON payout_rows (commission_id, live);

-- +goose StatementBegin
-- phoenix_commission_state is referral.CommissionState (pkg/referral/payout.go) for queries: a
-- row in a pending payout is in_payout, in a paid one paid; otherwise pending until available_at,
-- then available (§10.2). A test holds it to the Go rule on every combination.
CREATE FUNCTION phoenix_commission_state(available_at timestamptz, payout_status text, now timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN payout_status = 'paid' THEN 'paid'
        WHEN payout_status = 'pending' THEN 'in_payout'
        WHEN available_at <= now THEN 'available'
        ELSE 'pending'
    END
$$;
-- +goose StatementEnd

-- A run inserts thousands of payouts: one trigger call per statement, as for the ledgers.
CREATE TRIGGER payouts_inserted AFTER INSERT ON payouts
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION record_changes('payout');
CREATE TRIGGER payouts_changes AFTER UPDATE OR DELETE ON payouts
    FOR EACH ROW EXECUTE FUNCTION record_change('payout', 'id');
CREATE TRIGGER payout_policies_changes AFTER INSERT OR UPDATE OR DELETE ON payout_policies
    FOR EACH ROW EXECUTE FUNCTION record_change('payout_policy', 'tenant_id');

-- +goose Down
DROP TRIGGER IF EXISTS payout_policies_changes ON payout_policies;
DROP TRIGGER IF EXISTS payouts_changes ON payouts;
DROP TRIGGER IF EXISTS payouts_inserted ON payouts;
DROP FUNCTION IF EXISTS phoenix_commission_state(timestamptz, text, timestamptz);
DROP TABLE IF EXISTS payout_rows, payouts, payout_policies, deferred_reversals, event_reversals;
ALTER TABLE campaigns DROP COLUMN IF EXISTS clawback;
DROP INDEX IF EXISTS rewards_reverses;
ALTER TABLE rewards DROP CONSTRAINT IF EXISTS rewards_amount_sign;
ALTER TABLE rewards DROP COLUMN IF EXISTS reverses_id;
ALTER TABLE rewards ADD CONSTRAINT rewards_amount_check CHECK (amount > 0) NOT VALID;
DROP INDEX IF EXISTS commissions_payable, commissions_reverses;
ALTER TABLE commissions DROP CONSTRAINT IF EXISTS commissions_amount_sign;
ALTER TABLE commissions DROP COLUMN IF EXISTS available_at, DROP COLUMN IF EXISTS reason,
    DROP COLUMN IF EXISTS reverses_id;
ALTER TABLE commissions ADD CONSTRAINT commissions_amount_check CHECK (amount > 0) NOT VALID;
