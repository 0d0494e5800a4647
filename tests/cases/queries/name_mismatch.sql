-- name: some_other_name
-- description: The name differs from the file name.
-- params: none
-- grain: one row
-- used_by: tests/query/test_catalog.py
SELECT 1 AS one
