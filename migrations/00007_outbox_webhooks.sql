-- Outbound events (SPEC §11): the outbox every business fact is published to, in the same
-- transaction as the fact, and the webhook endpoints and deliveries that push it out.
--
-- The feed reads outbox_events as the projector reads changes (SPEC §7): a cursor holds the
-- snapshot whose completed transactions the reader has read, and the next window is the events
-- of the transactions that completed since, bounded by a later snapshot; so a late-committing
-- transaction is never skipped and nothing is read twice, and a long transaction elsewhere in
-- the cluster delays nothing but itself. Deliveries are written by the publishing transaction
-- itself (one per matching live endpoint), so commit is what makes them due; dispatchers lease
-- them with FOR UPDATE SKIP LOCKED.

-- +goose Up
CREATE TABLE outbox_events (
    seq        bigserial   PRIMARY KEY,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    id         uuid        NOT NULL UNIQUE,
    tenant_id  text        NOT NULL,
    type       text        NOT NULL,
    -- json, not jsonb: the data is stored as the API renders it, field order included.
    data       json        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX outbox_events_feed ON outbox_events (tenant_id, xid, seq);
CREATE INDEX outbox_events_created ON outbox_events (created_at);

-- The newest transaction the pruner has deleted events of, per tenant: a cursor whose snapshot
-- does not show it completed has expired.
CREATE TABLE outbox_pruned (
    tenant_id text PRIMARY KEY,
    xid       xid8 NOT NULL
);

CREATE TABLE webhook_endpoints (
    id              uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    url             text        NOT NULL,
    description     text        NOT NULL,
    event_types     text[]      NOT NULL,
    active          boolean     NOT NULL,
    -- Secrets are sealed (AES-GCM under PHOENIX_SECRET_KEY) before they reach the database.
    secret          bytea       NOT NULL,
    previous_secret bytea,
    previous_until  timestamptz,
    -- The start of an unbroken run of failed attempts (NULL after a success).
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id          uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoints (id),
    event_seq   bigint      NOT NULL REFERENCES outbox_events (seq) ON DELETE CASCADE,
    -- pending, delivered, failed; cancelled when the endpoint is deleted.
    status      text        NOT NULL,
    attempts    int         NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL,
    -- A dispatcher holds a pending delivery until lease_until; lease_token names the holder.
    lease_until timestamptz,
    lease_token uuid,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);

CREATE TABLE webhook_attempts (
    delivery_id      uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n                int         NOT NULL,
    at               timestamptz NOT NULL,
    status_code      int,
    duration_ms      int         NOT NULL,
    error            text,
    response_excerpt text,
    PRIMARY KEY (delivery_id, n)
);

-- phoenix_webhook_wants is outbox.Endpoint.Wants (pkg/outbox) for queries: an endpoint receives
-- an event by subscription when it lists the event's type or lists none; webhook.test goes only
-- to the endpoint it is sent to. A test holds the two to the same answer.
-- +goose StatementBegin
CREATE FUNCTION phoenix_webhook_wants(event_types text[], type text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT type <> 'webhook.test' AND (cardinality(event_types) = 0 OR type = ANY (event_types))
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION phoenix_webhook_wants(text[], text);
DROP TABLE webhook_attempts, webhook_deliveries, webhook_endpoints, outbox_pruned, outbox_events;
