-- name: unused_param
-- description: Declares account but never uses it: --account would be silently ignored.
-- params: since TIMESTAMPTZ = NULL; account VARCHAR = NULL
-- grain: one row per event
-- used_by: tests/query/test_catalog.py
SELECT event_id
FROM events
WHERE $since IS NULL OR event_time >= $since
