-- name: missing_key
-- description: A header without its grain line.
-- params: none
-- used_by: tests/query/test_catalog.py
SELECT 1 AS one
