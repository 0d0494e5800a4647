-- name: access_denied
-- description: Who is being refused, and is anyone probing? Denied calls (an errorCode matching the
--   denied_codes CTE: AccessDenied*, *UnauthorizedOperation, ...) per actor, with bursts: burst_min
--   or more denials of the same actor within burst_minutes. A burst of denials from an agent often
--   means it is trying its way around its permissions. The actor is the agent name for agents, the
--   person (human_id) for people, else the IAM identity. For each denial, the window is the
--   burst_minutes ending at it, both ends included (with every denial logged at the same time, so
--   denials in the same second share one window); a denial is hot when its window holds burst_min
--   or more denials. A burst is a maximal series of an actor's hot denials, in time order, each at
--   most burst_minutes after the previous hot one (the hot denials' windows overlap or touch):
--   equivalently, a stretch of time covered without a break by the windows of hot denials. A hot
--   denial more than burst_minutes after the actor's previous hot denial (or the actor's first hot
--   denial) starts a burst; denials that are not hot neither start nor split one. Columns:
--   actor_kind, actor, principals (IAM identities, comma-separated), denied_calls, denied_actions
--   (distinct eventSource/eventName pairs, a missing eventSource or eventName counting as a value
--   of its own), error_codes (comma-separated), first_denied and last_denied (UTC), max_in_window
--   (the most denials in any window), bursts, first_burst_at (UTC time of the denial that started
--   the first burst, i.e. of the first hot denial; NULL without a burst).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL; burst_minutes INTEGER = 10 (min 1); burst_min INTEGER = 5 (min 1)
-- grain: one row per actor (actor_kind and actor) with at least one denied call
-- used_by: analysts; quarterly report (later)
WITH denied_codes (pattern) AS (
    VALUES ('%AccessDenied%'), ('%UnauthorizedOperation'), ('%UnauthorizedAccess%'),
        ('AuthorizationError'), ('Forbidden')
),

denials AS (
    SELECT
        e.event_id,
        e.event_time,
        e.actor_kind,
        coalesce(e.agent_name, e.human_id, e.principal) AS actor,
        e.principal,
        e.event_source,
        e.event_name,
        e.error_code
    FROM (
        SELECT *
        FROM events_classified
        WHERE error_code IS NOT NULL
            AND ($since IS NULL OR event_time >= $since)
            AND ($until IS NULL OR event_time < $until)
            AND ($account IS NULL OR recipient_account_id = $account)
            AND (
                $principal IS NULL
                OR $principal IN (principal, principal_arn, agent_name, human_id)
            )
    ) AS e
    WHERE EXISTS (SELECT 1 FROM denied_codes AS c WHERE e.error_code LIKE c.pattern)
),

windows AS (
    -- For each denial, the denials of its actor in the burst_minutes ending at it (ends included).
    SELECT
        event_id,
        event_time,
        actor_kind,
        actor,
        count(*) OVER (
            PARTITION BY actor_kind, actor ORDER BY event_time
            RANGE BETWEEN $burst_minutes * INTERVAL '1 minute' PRECEDING AND CURRENT ROW
        ) AS in_window
    FROM denials
),

previous_hot AS (
    -- For each denial, the time of the last earlier hot denial of the same actor (NULL when none).
    -- Denials of one second are hot or not together: their order (by event_id) changes nothing.
    SELECT
        *,
        max(CASE WHEN in_window >= $burst_min THEN event_time END) OVER (
            PARTITION BY actor_kind, actor ORDER BY event_time, event_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_hot_at
    FROM windows
),

burst_starts AS (
    SELECT
        *,
        CASE
            WHEN in_window >= $burst_min
                AND (
                    previous_hot_at IS NULL
                    OR previous_hot_at < event_time - $burst_minutes * INTERVAL '1 minute'
                )
                THEN 1
            ELSE 0
        END AS starts_burst
    FROM previous_hot
),

bursts AS (
    SELECT
        actor_kind,
        actor,
        max(in_window) AS max_in_window,
        sum(starts_burst) AS bursts,
        min(CASE WHEN starts_burst = 1 THEN event_time END) AS first_burst_at
    FROM burst_starts
    GROUP BY actor_kind, actor
),

per_actor AS (
    SELECT
        actor_kind,
        actor,
        string_agg(DISTINCT principal, ',' ORDER BY principal) AS principals,
        count(*) AS denied_calls,
        string_agg(DISTINCT error_code, ',' ORDER BY error_code) AS error_codes,
        min(event_time) AS first_denied,
        max(event_time) AS last_denied
    FROM denials
    GROUP BY actor_kind, actor
),

denied_actions AS (
    -- Distinct eventSource/eventName pairs, a missing one (NULL) a value of its own: SELECT
    -- DISTINCT keeps a pair with a NULL in it, which a count(DISTINCT) of the two concatenated
    -- (NULL when either is) would drop.
    SELECT actor_kind, actor, count(*) AS denied_actions
    FROM (SELECT DISTINCT actor_kind, actor, event_source, event_name FROM denials) AS pairs
    GROUP BY actor_kind, actor
),

final AS (
    SELECT
        a.actor_kind,
        a.actor,
        a.principals,
        a.denied_calls,
        n.denied_actions,
        a.error_codes,
        a.first_denied,
        a.last_denied,
        b.max_in_window,
        b.bursts,
        b.first_burst_at
    FROM per_actor AS a
    JOIN denied_actions AS n ON n.actor_kind = a.actor_kind AND n.actor = a.actor
    JOIN bursts AS b ON b.actor_kind = a.actor_kind AND b.actor = a.actor
)

SELECT * FROM final
ORDER BY bursts DESC, denied_calls DESC, actor_kind, actor;
