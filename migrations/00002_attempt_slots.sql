-- +goose Up

-- A code attempt reserves its slot of the failed-attempt limit (§4.3) before it runs, so attempts
-- running at once cannot pass the limit together, and frees the slot when it did not fail: each
-- row needs an id of its own to be freed by.
ALTER TABLE code_attempt_failures ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;

-- reserve_code_attempt reserves a slot of the subject's limit of max_failures per window and
-- returns its id, or a NULL slot and the oldest counted failure's time when the limit is full.
-- It is one statement, so a reservation costs one round trip. The advisory lock (key: the
-- subject's hash) makes count-then-insert exact: a VOLATILE function takes a fresh snapshot for
-- each statement, so the count, run once the lock is granted, sees the slot the previous holder
-- committed.
-- +goose StatementBegin
CREATE FUNCTION reserve_code_attempt(p_tenant text, p_subject text, p_key bigint, p_window float8,
    p_max integer, OUT slot bigint, OUT oldest timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(p_key);
    SELECT count(*), min(r.failed_at) INTO n, oldest FROM (
        SELECT f.failed_at FROM code_attempt_failures f
        WHERE f.tenant_id = p_tenant AND f.subject = p_subject
          AND f.failed_at > clock_timestamp() - make_interval(secs => p_window)
        ORDER BY f.failed_at DESC LIMIT p_max) r;
    IF n >= p_max THEN
        RETURN;
    END IF;
    INSERT INTO code_attempt_failures (tenant_id, subject) VALUES (p_tenant, p_subject)
    RETURNING code_attempt_failures.id INTO slot;
    oldest := NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS reserve_code_attempt(text, text, bigint, float8, integer);
ALTER TABLE code_attempt_failures DROP COLUMN id;
