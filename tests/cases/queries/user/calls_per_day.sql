-- name: calls_per_day
-- description: Calls per UTC day in the period. A user query of the tests; it takes the period
--   and account flags, but not --principal.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL;
--   min_calls INTEGER = 1
-- grain: one row per UTC day with at least min_calls events
-- used_by: tests/query/test_run.py, tests/query/test_cli.py
SELECT event_time::DATE AS day, count(*) AS calls
FROM events
WHERE ($since IS NULL OR event_time >= $since)
    AND ($until IS NULL OR event_time < $until)
    AND ($account IS NULL OR recipient_account_id = $account)
GROUP BY ALL
HAVING count(*) >= $min_calls
ORDER BY day
