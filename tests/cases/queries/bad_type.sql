-- name: bad_type
-- description: A parameter of a type the library does not bind.
-- params: limit INT4 = 10
-- grain: one row per event
-- used_by: tests/query/test_catalog.py
SELECT event_id FROM events LIMIT $limit
