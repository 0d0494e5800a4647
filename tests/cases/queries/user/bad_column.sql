-- name: bad_column
-- description: Valid header, but the SQL names a column that does not exist, on line 11 of
--   this file; the error must say so.
-- params: since TIMESTAMPTZ = NULL
-- grain: one row per event
-- used_by: tests/query/test_run.py

SELECT
    event_id,
    event_name,
    no_such_column
FROM events
WHERE $since IS NULL OR event_time >= $since
