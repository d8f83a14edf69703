-- phoenix_successful is referral.Successful (pkg/referral/status.go) for queries: a referral
-- counts as successful — in stats, on the leaderboard and towards an affiliate's
-- converted_referrals — when it is converted or verified (SPEC §4.4, §5.4). Every query asks it
-- instead of spelling the statuses out, and a test checks it agrees with the Go rule on every
-- status. A SQL function of one expression declared IMMUTABLE is inlined by the planner, so a
-- predicate over it plans exactly like the expression written out (the index on
-- (tenant_id, referrer_id, status) still serves it).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION phoenix_successful(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status IN ('converted', 'verified')
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION phoenix_successful(text);
