-- name: empty_grain
-- description: Every key needs a value.
-- params: none
-- grain:
-- used_by: tests/query/test_catalog.py
SELECT 1 AS one
