-- name: bad_params_entry
-- description: A params entry that is not 'name TYPE = default' or 'name TYPE (required)'.
-- params: limit
-- grain: one row
-- used_by: tests/query/test_catalog.py
SELECT 1 AS one
