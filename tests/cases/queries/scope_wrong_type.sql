-- name: scope_wrong_type
-- description: since is reserved for --since/--quarter and must be TIMESTAMPTZ.
-- params: since DATE = NULL
-- grain: one row
-- used_by: tests/query/test_catalog.py
SELECT $since AS since
