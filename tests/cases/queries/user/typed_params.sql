-- name: typed_params
-- description: One parameter of every type, with defaults, returned as they were bound.
-- params: v VARCHAR = 'it''s'; i INTEGER = -3; b BIGINT = 5000000000; d DOUBLE = 2.5;
--   flag BOOLEAN = TRUE; day DATE = '2026-07-01'; moment TIMESTAMPTZ = NULL;
--   names VARCHAR[] = ['a', 'b,c']
-- grain: one row
-- used_by: tests/query/test_run.py
SELECT
    $v AS v, $i AS i, $b AS b, $d AS d, $flag AS flag, $day AS day, $moment AS moment, $names AS names
