-- name: echo_value
-- description: Returns the bound value and how many events have it as their principal ARN. The
--   injection test passes SQL text as the value: it must come back as data.
-- params: value VARCHAR (required)
-- grain: one row
-- used_by: tests/query/test_run.py
SELECT
    $value AS value,
    (SELECT count(*) FROM events WHERE principal_arn = $value) AS matching_events
