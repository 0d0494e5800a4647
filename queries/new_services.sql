-- name: new_services
-- description: Which principals started using an AWS service they had never used before? For each
--   principal and service (eventSource; events without one are a service of their own, event_source
--   NULL) whose first call in the warehouse falls in the period, compared with all data before
--   since (nothing is new before the first data; without since every first use is listed). An agent
--   role reaching a new service, or a person's role suddenly used for IAM or KMS, is worth a look.
--   The principal is the IAM identity (the role ARN for sessions, the user ARN, the web-identity
--   subject, or the AWS service); the account and principal parameters narrow the events both in
--   the period and before it, so "new" is relative to what they select. Columns: principal,
--   event_source, first_used_at (UTC), first_event_id, first_event_name, first_actor_kind and
--   first_agent_name (of that first event), calls and actions (distinct eventNames, a missing one
--   counting as one) in the period, actor_kinds (in the period, comma-separated), new_principal
--   (true when the principal itself has no event before since).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per principal and service first used in the period
-- used_by: analysts; quarterly report (later)
WITH history AS (
    -- Everything up to the end of the period: the period itself and all data before it.
    SELECT
        event_id,
        event_time,
        event_source,
        event_name,
        actor_kind,
        agent_name,
        principal
    FROM events_classified
    WHERE ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

first_times AS (
    SELECT principal, event_source, min(event_time) AS first_used_at
    FROM history
    GROUP BY principal, event_source
),

principal_first_seen AS (
    SELECT principal, min(first_used_at) AS first_seen
    FROM first_times
    GROUP BY principal
),

first_uses AS (
    -- The first event of each pair first used in the period (ties: the smallest event id).
    SELECT
        principal,
        event_source,
        event_time AS first_used_at,
        event_id AS first_event_id,
        event_name AS first_event_name,
        actor_kind AS first_actor_kind,
        agent_name AS first_agent_name
    FROM (
        SELECT
            h.*,
            row_number() OVER (
                PARTITION BY h.principal, h.event_source ORDER BY h.event_id
            ) AS tie_rank
        FROM history AS h
        JOIN first_times AS f
            ON f.principal = h.principal
            AND f.event_source IS NOT DISTINCT FROM h.event_source
            AND f.first_used_at = h.event_time
        WHERE $since IS NULL OR f.first_used_at >= $since
    ) AS firsts
    WHERE tie_rank = 1
),

in_period AS (
    SELECT
        principal,
        event_source,
        count(*) AS calls,
        -- a missing eventName (NULL) is an action of its own
        count(DISTINCT event_name) + max(CASE WHEN event_name IS NULL THEN 1 ELSE 0 END)
            AS actions,
        string_agg(DISTINCT actor_kind, ',' ORDER BY actor_kind) AS actor_kinds
    FROM history
    WHERE ($since IS NULL OR event_time >= $since)
    GROUP BY principal, event_source
),

final AS (
    SELECT
        f.principal,
        f.event_source,
        f.first_used_at,
        f.first_event_id,
        f.first_event_name,
        f.first_actor_kind,
        f.first_agent_name,
        p.calls,
        p.actions,
        p.actor_kinds,
        ($since IS NULL OR s.first_seen >= $since) AS new_principal
    FROM first_uses AS f
    JOIN in_period AS p
        ON p.principal = f.principal
        AND p.event_source IS NOT DISTINCT FROM f.event_source
    JOIN principal_first_seen AS s ON s.principal = f.principal
)

SELECT * FROM final
ORDER BY first_used_at, principal, event_source;
