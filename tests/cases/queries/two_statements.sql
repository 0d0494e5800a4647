-- name: two_statements
-- description: A named query is one statement.
-- params: none
-- grain: one row
-- used_by: tests/query/test_catalog.py
SELECT 1 AS one;
SELECT 2 AS two;
