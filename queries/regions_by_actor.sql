-- name: regions_by_actor
-- description: Where does each actor work? Calls per actor and AWS region, to spot an agent or a
--   person acting in a region it never uses (a classic sign of stolen credentials or of an agent
--   wandering off its task). Global services are logged in us-east-1. The actor is the agent name
--   for agents, the person (human_id) for people, else the IAM identity (role or user ARN,
--   web-identity subject, AWS service). Columns: actor_kind, actor, aws_region, calls,
--   failed_calls, share_of_actor_pct (percent of the actor's calls in scope made in that region,
--   two decimals), principals (distinct IAM identities), accounts (recipient accounts,
--   comma-separated), first_seen and last_seen (UTC).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per actor (actor_kind and actor) and region
-- used_by: analysts; quarterly report (later)
WITH classified AS (
    SELECT
        event_time,
        recipient_account_id,
        aws_region,
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

per_region AS (
    SELECT
        actor_kind,
        coalesce(agent_name, human_id, principal) AS actor,
        aws_region,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        count(DISTINCT principal) AS principals,
        string_agg(DISTINCT recipient_account_id, ',' ORDER BY recipient_account_id) AS accounts,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM classified
    GROUP BY actor_kind, coalesce(agent_name, human_id, principal), aws_region
),

final AS (
    SELECT
        actor_kind,
        actor,
        aws_region,
        calls,
        failed_calls,
        round(100.0 * calls / sum(calls) OVER (PARTITION BY actor_kind, actor), 2)
            AS share_of_actor_pct,
        principals,
        accounts,
        first_seen,
        last_seen
    FROM per_region
)

SELECT * FROM final
ORDER BY actor_kind, actor, aws_region;
