-- name: writes
-- description: A named query never writes.
-- params: none
-- grain: none
-- used_by: tests/query/test_catalog.py

DROP VIEW events
