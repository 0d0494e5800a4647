-- name: bad_default
-- description: A default that is not a literal of its type.
-- params: min_calls INTEGER = 'many'
-- grain: one row
-- used_by: tests/query/test_catalog.py
SELECT $min_calls AS min_calls
