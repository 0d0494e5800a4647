-- name: activity_by_actor
-- description: How much did agents, people, workloads and AWS services do each day, and by which
--   path? The daily trend behind every review: a sudden rise of agent calls on the direct path (the
--   MCP bypass) or through MCP shows here first. Columns: day (UTC date of the events), actor_kind
--   (agent, human, workload, service, unknown), access_path (mcp_managed, mcp_self_managed,
--   console, direct, service, none), calls (events), failed_calls (events with an errorCode),
--   principals (distinct IAM identities: the role ARN for sessions, the user ARN, the web-identity
--   subject, or the AWS service). Days and groups without events have no row.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per day, actor_kind and access_path
-- used_by: analysts; quarterly report (later)
WITH classified AS (
    SELECT
        event_date,
        actor_kind,
        access_path,
        error_code,
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

final AS (
    SELECT
        event_date AS day,
        actor_kind,
        access_path,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        count(DISTINCT principal) AS principals
    FROM classified
    GROUP BY event_date, actor_kind, access_path
)

SELECT * FROM final
ORDER BY day, actor_kind, access_path;
