-- name: syntax_error
-- description: A parse error is reported at its file line.
-- params: none
-- grain: one row
-- used_by: tests/query/test_catalog.py

SELECT event_id
FROM events
WHERE WHERE event_name = 'x'
