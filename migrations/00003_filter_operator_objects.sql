-- Filters: a condition that is a JSON object is always an operator object (SPEC §5.1). Before
-- this rule an object with a key outside eq, ne, gt, gte, lt, lte, in (or an empty object) was
-- read as a literal compared by JSON equality; such stored conditions are rewritten as
-- {"eq": <object>}, which means exactly what they meant before, so every stored filter parses
-- under the new rule.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION phoenix_filter_literals_as_eq(f jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN f IS NULL OR jsonb_typeof(f) <> 'object' OR f = '{}'::jsonb THEN f
        ELSE (SELECT jsonb_object_agg(k, CASE
                  WHEN jsonb_typeof(v) = 'object' AND (v = '{}'::jsonb OR EXISTS (
                      SELECT 1 FROM jsonb_object_keys(v) AS op
                      WHERE op NOT IN ('eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in')))
                  THEN jsonb_build_object('eq', v)
                  ELSE v END)
              FROM jsonb_each(f) AS e(k, v))
    END
$$;
-- +goose StatementEnd

UPDATE campaigns SET qualifying_filter = phoenix_filter_literals_as_eq(qualifying_filter)
WHERE qualifying_filter IS DISTINCT FROM phoenix_filter_literals_as_eq(qualifying_filter);

UPDATE commission_rules SET event_filter = phoenix_filter_literals_as_eq(event_filter)
WHERE event_filter IS DISTINCT FROM phoenix_filter_literals_as_eq(event_filter);

DROP FUNCTION phoenix_filter_literals_as_eq(jsonb);

-- +goose Down
SELECT 1;
