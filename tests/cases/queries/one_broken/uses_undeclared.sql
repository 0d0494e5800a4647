-- name: uses_undeclared
-- description: A query whose SQL uses a parameter its header does not declare.
-- params: none
-- grain: one row
-- used_by: tests of `agenttrail query list`
SELECT $m AS m
