-- +goose Up

-- Identity of this database: a read model built from another database is discarded.
CREATE TABLE phoenix_meta (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    database_id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO phoenix_meta DEFAULT VALUES;

-- Change log: every write to a projected table records one row per changed row in the same
-- transaction (by trigger). Readers catch up with the transaction-id high-water mark
-- (xid < pg_snapshot_xmin), so a change whose transaction commits after a later-numbered one is
-- never skipped. Listeners are woken by a NOTIFY phoenix_changes the writer sends right after
-- its commit, not from inside the transaction: a NOTIFY inside a writing transaction holds a
-- database-wide lock through the commit's WAL flush and so serialises every writer.
CREATE TABLE changes (
    seq        bigserial   PRIMARY KEY,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id  text        NOT NULL,
    entity     text        NOT NULL,
    entity_id  text        NOT NULL,
    op         text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX changes_xid ON changes (xid);

-- +goose StatementBegin
CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    INSERT INTO changes (tenant_id, entity, entity_id, op)
    VALUES (r.tenant_id, TG_ARGV[0], to_jsonb(r) ->> TG_ARGV[1], lower(TG_OP));
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- record_changes is record_change for statement-level triggers whose transition table is named
-- changed_rows and whose rows have tenant_id and id.
-- +goose StatementBegin
CREATE FUNCTION record_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (tenant_id, entity, entity_id, op)
    SELECT tenant_id, TG_ARGV[0], id::text, lower(TG_OP) FROM changed_rows;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION forbid_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only (%)', TG_TABLE_NAME;
END $$;
-- +goose StatementEnd

-- Campaigns (§4.1).
CREATE TABLE campaigns (
    id                uuid        PRIMARY KEY,
    tenant_id         text        NOT NULL,
    name              text        NOT NULL,
    qualifying_event  text        NOT NULL,
    qualifying_filter jsonb,
    referrer_rewards  jsonb       NOT NULL,
    referee_rewards   jsonb       NOT NULL,
    active            boolean     NOT NULL,
    starts_at         timestamptz,
    ends_at           timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    deleted_at        timestamptz
);
CREATE INDEX campaigns_tenant ON campaigns (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Referral and promo codes (§4.2). source: player | admin | affiliate.
CREATE TABLE referral_codes (
    id            uuid        PRIMARY KEY,
    tenant_id     text        NOT NULL,
    code          text        NOT NULL,
    owner_user_id text,
    campaign_id   uuid REFERENCES campaigns (id),
    usage_limit   integer,
    uses          integer     NOT NULL DEFAULT 0 CHECK (uses >= 0),
    active        boolean     NOT NULL,
    expires_at    timestamptz,
    source        text        NOT NULL CHECK (source IN ('player', 'admin', 'affiliate')),
    generated     boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    CHECK (usage_limit IS NULL OR uses <= usage_limit)
);
CREATE UNIQUE INDEX referral_codes_code ON referral_codes (tenant_id, code) WHERE deleted_at IS NULL;
CREATE INDEX referral_codes_owner ON referral_codes (tenant_id, owner_user_id) WHERE deleted_at IS NULL;
CREATE INDEX referral_codes_list ON referral_codes (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Referrals (§4.3, §4.4): one per referee and tenant.
CREATE TABLE referrals (
    id           uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    code_id      uuid        NOT NULL REFERENCES referral_codes (id),
    code         text        NOT NULL,
    campaign_id  uuid REFERENCES campaigns (id),
    referrer_id  text,
    referee_id   text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('pending', 'converted', 'verified', 'rejected')),
    reason       text,
    metadata     jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    converted_at timestamptz,
    verified_at  timestamptz,
    rejected_at  timestamptz
);
CREATE UNIQUE INDEX referrals_referee ON referrals (tenant_id, referee_id);
CREATE INDEX referrals_referrer ON referrals (tenant_id, referrer_id, status);
CREATE INDEX referrals_code ON referrals (code_id, created_at DESC, id DESC);
CREATE INDEX referrals_list ON referrals (tenant_id, created_at DESC, id DESC);

-- Affiliate tiers (§4.6). Rates are exact: numeric(7,6).
CREATE TABLE affiliate_tiers (
    id                  uuid         PRIMARY KEY,
    tenant_id           text         NOT NULL,
    name                text         NOT NULL,
    commission_rate     numeric(7,6) NOT NULL CHECK (commission_rate BETWEEN 0 AND 1),
    min_referrals       bigint       NOT NULL CHECK (min_referrals >= 0),
    min_referee_revenue bigint       NOT NULL CHECK (min_referee_revenue >= 0),
    priority            integer      NOT NULL,
    created_at          timestamptz  NOT NULL,
    updated_at          timestamptz  NOT NULL,
    deleted_at          timestamptz
);
CREATE INDEX affiliate_tiers_tenant ON affiliate_tiers (tenant_id) WHERE deleted_at IS NULL;

-- Affiliates (§4.5, §4.8). The hierarchy is a materialised path: ancestors lists the node's
-- ancestors root first, so ancestor walks and cycle checks cost O(depth) and a downline is one
-- GIN lookup (ancestors @> ARRAY[node]).
CREATE TABLE affiliates (
    id                  uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    user_id             text        NOT NULL,
    affiliate_code      text        NOT NULL,
    code_id             uuid        NOT NULL REFERENCES referral_codes (id),
    status              text        NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    parent_affiliate_id uuid REFERENCES affiliates (id),
    ancestors           uuid[]      NOT NULL DEFAULT '{}',
    tier_override_id    uuid REFERENCES affiliate_tiers (id),
    referee_revenue     bigint      NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX affiliates_user ON affiliates (tenant_id, user_id) WHERE deleted_at IS NULL;
CREATE INDEX affiliates_parent ON affiliates (parent_affiliate_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX affiliates_ancestors ON affiliates USING gin (ancestors) WHERE deleted_at IS NULL;
CREATE INDEX affiliates_list ON affiliates (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Commission rules (§4.7).
CREATE TABLE commission_rules (
    id               uuid         PRIMARY KEY,
    tenant_id        text         NOT NULL,
    name             text         NOT NULL,
    event_type       text         NOT NULL,
    event_filter     jsonb,
    commission_field text         NOT NULL,
    use_tier_rate    boolean      NOT NULL,
    custom_rate      numeric(7,6) CHECK (custom_rate BETWEEN 0 AND 1),
    currency_id      text         NOT NULL,
    active           boolean      NOT NULL,
    created_at       timestamptz  NOT NULL,
    updated_at       timestamptz  NOT NULL,
    deleted_at       timestamptz
);
CREATE INDEX commission_rules_tenant ON commission_rules (tenant_id, event_type) WHERE deleted_at IS NULL;

-- The tenant's multi-level hierarchy policy (§4.8): one row per tenant.
CREATE TABLE hierarchy_policies (
    tenant_id   text           PRIMARY KEY,
    max_depth   integer        NOT NULL CHECK (max_depth BETWEEN 0 AND 10),
    level_rates numeric(7,6)[] NOT NULL,
    active      boolean        NOT NULL,
    updated_at  timestamptz    NOT NULL
);

-- Ingested events (§5): one per event_id and tenant; outcome is the answer replayed to duplicates.
CREATE TABLE events (
    tenant_id   text        NOT NULL,
    event_id    text        NOT NULL,
    type        text        NOT NULL,
    user_id     text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    outcome     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Which campaign qualified which referral: each campaign pays each referral at most once.
CREATE TABLE campaign_qualifications (
    tenant_id   text        NOT NULL,
    campaign_id uuid        NOT NULL REFERENCES campaigns (id),
    referral_id uuid        NOT NULL REFERENCES referrals (id),
    event_id    text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, referral_id)
);

-- Reward ledger (§5.2): append-only.
CREATE TABLE rewards (
    id          uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    user_id     text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('referrer', 'referee')),
    campaign_id uuid        NOT NULL REFERENCES campaigns (id),
    referral_id uuid        NOT NULL REFERENCES referrals (id),
    event_id    text        NOT NULL,
    currency_id text        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount > 0),
    created_at  timestamptz NOT NULL
);
CREATE INDEX rewards_tenant ON rewards (tenant_id, created_at, id);
CREATE INDEX rewards_user ON rewards (tenant_id, user_id, created_at, id);
CREATE INDEX rewards_event ON rewards (tenant_id, event_id);
CREATE INDEX rewards_referral ON rewards (referral_id);

-- Commission ledger (§5.3): append-only.
CREATE TABLE commissions (
    id             uuid         PRIMARY KEY,
    tenant_id      text         NOT NULL,
    affiliate_id   uuid         NOT NULL REFERENCES affiliates (id),
    user_id        text         NOT NULL,
    level          integer      NOT NULL CHECK (level >= 0),
    source_user_id text         NOT NULL,
    event_id       text         NOT NULL,
    rule_id        uuid         NOT NULL REFERENCES commission_rules (id),
    tier_id        uuid REFERENCES affiliate_tiers (id),
    rate           numeric(7,6) NOT NULL,
    base_amount    bigint       NOT NULL CHECK (base_amount >= 0),
    amount         bigint       NOT NULL CHECK (amount > 0),
    currency_id    text         NOT NULL,
    created_at     timestamptz  NOT NULL
);
CREATE INDEX commissions_tenant ON commissions (tenant_id, created_at, id);
CREATE INDEX commissions_affiliate ON commissions (affiliate_id, created_at, id);
CREATE INDEX commissions_user ON commissions (tenant_id, user_id, created_at, id);
CREATE INDEX commissions_event ON commissions (tenant_id, event_id);

-- Idempotency-Key records (§3). status 0 marks a request still running.
CREATE TABLE idempotency_keys (
    tenant_id    text        NOT NULL,
    caller       text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       integer     NOT NULL DEFAULT 0,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, caller, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Failed code attempts (§4.3), counted in a sliding window per tenant and subject.
CREATE TABLE code_attempt_failures (
    tenant_id text        NOT NULL,
    subject   text        NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX code_attempt_failures_subject ON code_attempt_failures (tenant_id, subject, failed_at);

-- Change triggers for every projected table.
CREATE TRIGGER campaigns_changes AFTER INSERT OR UPDATE OR DELETE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION record_change('campaign', 'id');
CREATE TRIGGER referral_codes_changes AFTER INSERT OR UPDATE OR DELETE ON referral_codes
    FOR EACH ROW EXECUTE FUNCTION record_change('code', 'id');
CREATE TRIGGER referrals_changes AFTER INSERT OR UPDATE OR DELETE ON referrals
    FOR EACH ROW EXECUTE FUNCTION record_change('referral', 'id');
CREATE TRIGGER affiliate_tiers_changes AFTER INSERT OR UPDATE OR DELETE ON affiliate_tiers
    FOR EACH ROW EXECUTE FUNCTION record_change('tier', 'id');
-- Affiliates change in bulk (a subtree move rewrites every descendant's path), so their changes
-- are recorded once per statement from its transition table instead of once per row (the
-- trigger function is called once; it still writes one change row per changed row).
CREATE TRIGGER affiliates_changes_insert AFTER INSERT ON affiliates
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION record_changes('affiliate');
CREATE TRIGGER affiliates_changes_update AFTER UPDATE ON affiliates
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION record_changes('affiliate');
CREATE TRIGGER affiliates_changes_delete AFTER DELETE ON affiliates
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION record_changes('affiliate');
CREATE TRIGGER commission_rules_changes AFTER INSERT OR UPDATE OR DELETE ON commission_rules
    FOR EACH ROW EXECUTE FUNCTION record_change('commission_rule', 'id');
CREATE TRIGGER hierarchy_policies_changes AFTER INSERT OR UPDATE OR DELETE ON hierarchy_policies
    FOR EACH ROW EXECUTE FUNCTION record_change('hierarchy_policy', 'tenant_id');
-- Ledger rows are written in bulk by event batches: one trigger call per statement.
CREATE TRIGGER rewards_changes AFTER INSERT ON rewards
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION record_changes('reward');
CREATE TRIGGER commissions_changes AFTER INSERT ON commissions
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION record_changes('commission');

CREATE TRIGGER rewards_append_only BEFORE UPDATE OR DELETE ON rewards
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_ledger_change();
CREATE TRIGGER commissions_append_only BEFORE UPDATE OR DELETE ON commissions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_ledger_change();

-- +goose Down
DROP TABLE IF EXISTS code_attempt_failures, idempotency_keys, commissions, rewards,
    campaign_qualifications, events, hierarchy_policies, commission_rules, affiliates,
    affiliate_tiers, referrals, referral_codes, campaigns, changes, phoenix_meta CASCADE;
DROP FUNCTION IF EXISTS record_change(), record_changes(), forbid_ledger_change();
