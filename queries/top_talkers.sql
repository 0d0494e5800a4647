-- name: top_talkers
-- description: Who makes the most calls? The busiest actors in the period, to see whether agents
--   already outnumber people and which agent or person to look at first. The actor is the agent
--   name for agents, the person (human_id) for people, else the IAM identity (role or user ARN,
--   web-identity subject, AWS service). Columns: rank (1 = most calls; ties broken by actor_kind,
--   then actor), actor_kind, actor, calls, share_pct (percent of all calls in scope, two decimals),
--   failed_calls, principals (distinct IAM identities), actions (distinct eventSource/eventName
--   pairs, a missing eventSource or eventName counting as a value of its own), regions, accounts,
--   first_seen and last_seen (UTC). Only the first limit_rows rows are returned.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL; limit_rows INTEGER = 20 (min 1)
-- grain: one row per actor (actor_kind and actor), the limit_rows busiest
-- used_by: analysts; quarterly report (later)
WITH classified AS (
    SELECT
        event_time,
        recipient_account_id,
        aws_region,
        event_source,
        event_name,
        error_code,
        actor_kind,
        agent_name,
        human_id,
        principal
    FROM events_classified
    WHERE ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

per_actor AS (
    SELECT
        actor_kind,
        coalesce(agent_name, human_id, principal) AS actor,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        count(DISTINCT principal) AS principals,
        count(DISTINCT aws_region) AS regions,
        count(DISTINCT recipient_account_id) AS accounts,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM classified
    GROUP BY actor_kind, coalesce(agent_name, human_id, principal)
),

actions AS (
    -- Distinct eventSource/eventName pairs, a missing one (NULL) a value of its own: SELECT
    -- DISTINCT keeps a pair with a NULL in it, which a count(DISTINCT) of the two concatenated
    -- (NULL when either is) would drop.
    SELECT actor_kind, actor, count(*) AS actions
    FROM (
        SELECT DISTINCT
            actor_kind,
            coalesce(agent_name, human_id, principal) AS actor,
            event_source,
            event_name
        FROM classified
    ) AS pairs
    GROUP BY actor_kind, actor
),

ranked AS (
    SELECT
        row_number() OVER (ORDER BY a.calls DESC, a.actor_kind, a.actor) AS rank,
        a.actor_kind,
        a.actor,
        a.calls,
        round(100.0 * a.calls / sum(a.calls) OVER (), 2) AS share_pct,
        a.failed_calls,
        a.principals,
        n.actions,
        a.regions,
        a.accounts,
        a.first_seen,
        a.last_seen
    FROM per_actor AS a
    JOIN actions AS n ON n.actor_kind = a.actor_kind AND n.actor = a.actor
),

final AS (
    SELECT * FROM ranked WHERE rank <= $limit_rows
)

SELECT * FROM final
ORDER BY rank;
