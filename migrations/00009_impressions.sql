-- Impressions and attribution (SPEC §15).
--
-- impressions holds one row per recorded click or scan of a valid code. It is written in
-- batches (pkg/postgres/impressions.go), is not followed by the change log (no trigger) and is
-- pruned after PHOENIX_IMPRESSION_RETENTION. The client address is kept only as
-- referral.AddressHash (NULL for impressions the platform reports with its service token: the
-- peer is then the platform, not the visitor). created_at only grows, so a BRIN index serves the
-- pruner at a fraction of a B-tree's insert cost. code_id has no foreign key: codes are never
-- deleted (only hidden), and the check would cost every insert a lookup.
--
-- impression_counts is what the funnel, the code stats and the Query Gateway read instead of
-- counting impressions: one row per (tenant, code, source, UTC day), upserted by the statement
-- that inserts the batch, so a read costs the number of buckets in the period, not the number of
-- impressions. source '' is an impression without a source. Counters outlive the pruned
-- impressions (they hold no address). Each of a gateway's concurrent batch writers adds to its
-- own shard of a counter, so writers never wait for each other's commit on a popular code's row;
-- a read sums the shards.
--
-- phoenix_code_valid is referral.ImpressionValid (pkg/referral/impression.go) for the batch
-- statement: the visitor's check of a code (active, not expired, not exhausted; existence is the
-- join). A test holds the two to the same answer.
--
-- A referral linked to an impression carries its id and, copied at link time, its source, so
-- the funnel's breakdown by source holds after the impression is pruned.

-- +goose Up
CREATE TABLE impressions (
    id           uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    code_id      uuid        NOT NULL,
    source       text,
    address_hash bytea,
    metadata     jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    referral_id  uuid
);
CREATE INDEX impressions_created ON impressions USING brin (created_at);

CREATE TABLE impression_counts (
    tenant_id   text        NOT NULL,
    code_id     uuid        NOT NULL,
    source      text        NOT NULL,
    day         timestamptz NOT NULL,
    shard       smallint    NOT NULL,
    impressions bigint      NOT NULL CHECK (impressions > 0),
    PRIMARY KEY (tenant_id, code_id, source, day, shard)
);
CREATE INDEX impression_counts_day ON impression_counts (tenant_id, day);

-- +goose StatementBegin
CREATE FUNCTION phoenix_code_valid(active boolean, expires_at timestamptz, usage_limit integer, uses integer, at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT active AND (expires_at IS NULL OR at < expires_at) AND (usage_limit IS NULL OR uses < usage_limit)
$$;
-- +goose StatementEnd

ALTER TABLE referrals ADD COLUMN impression_id uuid, ADD COLUMN impression_source text;
CREATE UNIQUE INDEX referrals_impression ON referrals (impression_id) WHERE impression_id IS NOT NULL;

-- +goose Down
DROP INDEX referrals_impression;
ALTER TABLE referrals DROP COLUMN impression_source, DROP COLUMN impression_id;
DROP FUNCTION phoenix_code_valid(boolean, timestamptz, integer, integer, timestamptz);
DROP TABLE impression_counts;
DROP TABLE impressions;
