-- name: coverage
-- description: Is the data complete enough to trust the other answers? Accounts and regions with
--   data, the days they have events on, and the gaps: days inside the span with no event at all for
--   that account and region (logging off, a trail misconfigured, files not delivered or not
--   ingested). The span, the same for every account and region so that a stream that starts late or
--   stops early shows its missing days, runs from the UTC day of since (without since: the first
--   day with events in the warehouse) to the UTC day before until, but never past today (UTC) or
--   the last day with events in the warehouse, whichever is later: days that have not come yet are
--   not gaps. An open end (no until: --since alone, no period at all, or --until 9999-12-31) ends
--   on that day, so the days from the last event to today count as missing (logging or ingest
--   stopped); a since before CloudTrail began (2013-11-13) starts the span then, unless the
--   warehouse has events before that day. Those first and last days are the whole warehouse's, not those of the events in
--   scope: with --account the span is the one without it, never cut to the account's own first or
--   last event, so an account that started late or stopped logging shows it. A span that would end
--   before it starts (a period still to come, or --until alone before the first day with events) is
--   empty: span_end is the day before span_start, span_days and gap_days are 0. Days are UTC dates
--   of the events (event_date), whatever folder their file was delivered in. Columns:
--   recipient_account_id, aws_region, span_start and span_end, span_days, days_with_events,
--   gap_days (span_days - days_with_events), gap_runs (runs of consecutive missing days),
--   longest_gap_days, missing_days (sorted list of DATE), first_day and last_day (with events),
--   events, source_objects (distinct source files the events came from). Every account and region
--   with data anywhere in the warehouse has a row, so one silent in the whole period shows with 0
--   events. An event without awsRegion counts in a stream of its own with aws_region NULL (NULL
--   matches NULL when streams, days and counts are joined), listed after the account's regions; it
--   is neither dropped nor counted for another region. An event without recipientAccountId is never
--   NULL there: ingest gives it the account its file's key names (AWSLogs/ACCOUNT/...), else the
--   text 'unknown', so it counts in that account's streams, or in those of an account 'unknown'.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL
-- grain: one row per account and region with events anywhere in the warehouse
-- used_by: analysts; quarterly report (later)
WITH scoped AS (
    SELECT recipient_account_id, aws_region, event_date, source_uri
    FROM events
    WHERE ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
),

warehouse_days AS (
    -- The first and last days with events in the whole warehouse, whatever the scope: an end
    -- not given is taken from them, never from the events in scope, which would hide an account
    -- (or a whole warehouse) that started late or stopped logging.
    SELECT min(event_date) AS first_day, max(event_date) AS last_day FROM events
),

span_bounds AS (
    SELECT
        -- Never before CloudTrail began (2013-11-13, CLOUDTRAIL_LAUNCH in
        -- pipeline/source/s3.py), unless the warehouse has events before it: --since
        -- 0001-01-01 as "from the start" listed ~740,000 missing days per stream.
        greatest(
            coalesce(CAST(CAST($since AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE), w.first_day),
            least(w.first_day, DATE '2013-11-13')
        ) AS span_start,
        CASE
            -- open: no day after today or the last day with events in the warehouse, whichever
            -- is later
            WHEN $until IS NULL
                THEN greatest(CAST(now() AT TIME ZONE 'UTC' AS DATE), w.last_day)
            -- the day of the last instant before until (until itself is excluded), but no later
            ELSE least(
                CAST(
                    (CAST($until AS TIMESTAMPTZ) AT TIME ZONE 'UTC') - INTERVAL '1 microsecond'
                    AS DATE
                ),
                greatest(CAST(now() AT TIME ZONE 'UTC' AS DATE), w.last_day)
            )
        END AS period_end
    FROM warehouse_days AS w
),

span AS (
    -- A span that would end before it starts (a period still to come, or one ending before the
    -- first day with events) is empty: it ends the day before it starts.
    SELECT
        span_start,
        greatest(period_end, CAST(span_start - INTERVAL '1' DAY AS DATE)) AS span_end
    FROM span_bounds
),

span_days AS (
    SELECT CAST(d.day AS DATE) AS day
    FROM span AS s
    CROSS JOIN generate_series(
        CAST(s.span_start AS TIMESTAMP), CAST(s.span_end AS TIMESTAMP), INTERVAL '1 day'
    ) AS d (day)
),

known_streams AS (
    -- Every account and region with data anywhere in the warehouse: one silent in the period
    -- is the gap that matters most.
    SELECT DISTINCT recipient_account_id, aws_region
    FROM events
    WHERE ($account IS NULL OR recipient_account_id = $account)
),

present AS (
    SELECT DISTINCT recipient_account_id, aws_region, event_date AS day FROM scoped
),

stream_stats AS (
    SELECT
        recipient_account_id,
        aws_region,
        count(*) AS events,
        count(DISTINCT event_date) AS days_with_events,
        count(DISTINCT source_uri) AS source_objects,
        min(event_date) AS first_day,
        max(event_date) AS last_day
    FROM scoped
    GROUP BY recipient_account_id, aws_region
),

streams AS (
    SELECT
        k.recipient_account_id,
        k.aws_region,
        coalesce(s.events, 0) AS events,
        coalesce(s.days_with_events, 0) AS days_with_events,
        coalesce(s.source_objects, 0) AS source_objects,
        s.first_day,
        s.last_day
    FROM known_streams AS k
    LEFT JOIN stream_stats AS s
        ON s.recipient_account_id IS NOT DISTINCT FROM k.recipient_account_id
        AND s.aws_region IS NOT DISTINCT FROM k.aws_region
),

missing AS (
    SELECT st.recipient_account_id, st.aws_region, sd.day
    FROM streams AS st
    CROSS JOIN span_days AS sd
    LEFT JOIN present AS p
        ON p.recipient_account_id IS NOT DISTINCT FROM st.recipient_account_id
        AND p.aws_region IS NOT DISTINCT FROM st.aws_region
        AND p.day = sd.day
    WHERE p.day IS NULL
),

gap_runs AS (
    -- Consecutive missing days share day - row_number (the gaps-and-islands trick).
    SELECT recipient_account_id, aws_region, count(*) AS run_days
    FROM (
        SELECT
            recipient_account_id,
            aws_region,
            day,
            day - CAST(row_number() OVER (
                PARTITION BY recipient_account_id, aws_region ORDER BY day
            ) AS INTEGER) AS run_id
        FROM missing
    ) AS numbered
    GROUP BY recipient_account_id, aws_region, run_id
),

gaps AS (
    SELECT
        m.recipient_account_id,
        m.aws_region,
        array_agg(m.day ORDER BY m.day) AS missing_days
    FROM missing AS m
    GROUP BY m.recipient_account_id, m.aws_region
),

run_stats AS (
    SELECT recipient_account_id, aws_region, count(*) AS gap_runs, max(run_days) AS longest_gap_days
    FROM gap_runs
    GROUP BY recipient_account_id, aws_region
),

final AS (
    SELECT
        st.recipient_account_id,
        st.aws_region,
        s.span_start,
        s.span_end,
        (SELECT count(*) FROM span_days) AS span_days,
        st.days_with_events,
        (SELECT count(*) FROM span_days) - st.days_with_events AS gap_days,
        coalesce(r.gap_runs, 0) AS gap_runs,
        coalesce(r.longest_gap_days, 0) AS longest_gap_days,
        coalesce(g.missing_days, ARRAY[]) AS missing_days,
        st.first_day,
        st.last_day,
        st.events,
        st.source_objects
    FROM streams AS st
    CROSS JOIN span AS s
    LEFT JOIN gaps AS g
        ON g.recipient_account_id IS NOT DISTINCT FROM st.recipient_account_id
        AND g.aws_region IS NOT DISTINCT FROM st.aws_region
    LEFT JOIN run_stats AS r
        ON r.recipient_account_id IS NOT DISTINCT FROM st.recipient_account_id
        AND r.aws_region IS NOT DISTINCT FROM st.aws_region
)

SELECT * FROM final
ORDER BY recipient_account_id NULLS LAST, aws_region NULLS LAST;
