-- name: undeclared_param
-- description: Uses $limit (in this comment, which does not count) and $since without declaring it.
-- params: limit INTEGER = 10
-- grain: one row per event
-- used_by: tests/query/test_catalog.py
SELECT event_id
FROM events
-- a comment mentioning $since does not count either
WHERE event_time >= $since
LIMIT $limit
