-- Referral risk (§12) and milestones (§13).

-- +goose Up

-- Risk signals: one row per user and device id or address hash, holding when it was last seen.
-- Keeping the last sighting only is enough for every check ("seen within a window before the
-- apply") and bounds a user's rows by the devices and addresses they use. The primary key
-- serves the checks: the referee's few rows are a range of it, and each is probed in the
-- referrer's range, so a check costs O(k log n) for a referee with k signals whatever the
-- table holds. kind: 1 device id (its UTF-8 bytes), 2 address (referral.AddressHash).
CREATE TABLE risk_signals (
    tenant_id text        NOT NULL,
    user_id   text        NOT NULL,
    kind      smallint    NOT NULL CHECK (kind IN (1, 2)),
    value     bytea       NOT NULL,
    seen_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, kind, value)
);
-- The retention pruner deletes the oldest rows first, in bounded batches.
CREATE INDEX risk_signals_seen ON risk_signals (seen_at);

-- The tenant's risk policy singleton; no row means the defaults (referral.DefaultRiskPolicy).
CREATE TABLE risk_policies (
    tenant_id            text        PRIMARY KEY,
    active               boolean     NOT NULL,
    same_device          text        NOT NULL CHECK (same_device IN ('allow', 'hold', 'reject')),
    same_address         text        NOT NULL CHECK (same_address IN ('allow', 'hold', 'reject')),
    address_window_hours integer     NOT NULL CHECK (address_window_hours BETWEEN 1 AND 720),
    velocity_max         integer     CHECK (velocity_max >= 1),
    velocity_hours       integer     CHECK (velocity_hours BETWEEN 1 AND 720),
    velocity_action      text        CHECK (velocity_action IN ('allow', 'hold', 'reject')),
    updated_at           timestamptz NOT NULL,
    CHECK ((velocity_max IS NULL) = (velocity_hours IS NULL) AND (velocity_max IS NULL) = (velocity_action IS NULL))
);

-- A held referral's review: NULL state for a referral risk let through.
ALTER TABLE referrals
    ADD COLUMN review_state   text CHECK (review_state IN ('held', 'approved', 'rejected')),
    ADD COLUMN review_reasons text[],
    ADD COLUMN review_note    text,
    ADD COLUMN reviewed_at    timestamptz;
CREATE INDEX referrals_review ON referrals (tenant_id, review_state, created_at DESC, id DESC)
    WHERE review_state IS NOT NULL;
-- The velocity check counts a referrer's referrals created since a moment.
CREATE INDEX referrals_referrer_created ON referrals (tenant_id, referrer_id, created_at);

-- Events of held referrals, recorded (their events row answers duplicates "deferred") and
-- processed when the review approves, in (occurred_at, receipt) order.
CREATE TABLE deferred_events (
    tenant_id   text   NOT NULL,
    event_id    text   NOT NULL,
    referral_id uuid   NOT NULL REFERENCES referrals (id),
    receipt     bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX deferred_events_referral ON deferred_events (referral_id, receipt);

-- Milestones (§13): a campaign's thresholds, and which (campaign, referrer, threshold) was paid.
ALTER TABLE campaigns ADD COLUMN milestones jsonb NOT NULL DEFAULT '[]';
ALTER TABLE rewards DROP CONSTRAINT rewards_role_check;
ALTER TABLE rewards ADD CONSTRAINT rewards_role_check CHECK (role IN ('referrer', 'referee', 'milestone'));
ALTER TABLE rewards ADD COLUMN milestone integer CHECK ((role = 'milestone') = (milestone IS NOT NULL));
CREATE TABLE milestone_payments (
    tenant_id   text        NOT NULL,
    campaign_id uuid        NOT NULL REFERENCES campaigns (id),
    referrer_id text        NOT NULL,
    threshold   integer     NOT NULL CHECK (threshold >= 1),
    referral_id uuid        NOT NULL REFERENCES referrals (id),
    event_id    text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, referrer_id, threshold)
);
-- A referrer's count of successful referrals attributed to a campaign.
CREATE INDEX referrals_campaign_referrer ON referrals (campaign_id, referrer_id, status);

-- +goose Down
DROP INDEX referrals_campaign_referrer;
DROP TABLE milestone_payments;
ALTER TABLE rewards DROP COLUMN milestone;
ALTER TABLE rewards DROP CONSTRAINT rewards_role_check;
ALTER TABLE rewards ADD CONSTRAINT rewards_role_check CHECK (role IN ('referrer', 'referee'));
ALTER TABLE campaigns DROP COLUMN milestones;
DROP TABLE deferred_events;
DROP INDEX referrals_referrer_created;
DROP INDEX referrals_review;
ALTER TABLE referrals DROP COLUMN review_state, DROP COLUMN review_reasons, DROP COLUMN review_note,
    DROP COLUMN reviewed_at;
DROP TABLE risk_policies;
DROP TABLE risk_signals;
