-- name: activity_by_actor
-- description: A user's own version of the built-in query of the same name: it replaces it, with
--   a notice.
-- params: none
-- grain: one row
-- used_by: tests/query/test_catalog.py
SELECT 'user version' AS source
