-- name: agent_actions
-- description: What did each AI agent do? For every agent (agent_name: the MCP server, the
--   MCPServer session tag value, or the agent role) and every API action it called: service (the
--   first label of eventSource, e.g. ec2), event_source, event_name, calls, failed_calls (an
--   errorCode), write_calls (readOnly false), access_paths (comma-separated), principals (distinct
--   IAM identities that carried the calls), first_seen and last_seen (UTC), and agent_calls (all
--   calls of the agent in scope, to weigh each action). Actions called fewer than min_calls times
--   are left out; agent_calls still counts them. principal matches the identity (principal), the
--   session ARN, the agent name or the person behind (human_id).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL; min_calls INTEGER = 1 (min 1)
-- grain: one row per agent and action
-- used_by: analysts; quarterly report (later)
WITH agent_events AS (
    SELECT
        agent_name,
        access_path,
        event_source,
        event_name,
        event_time,
        error_code,
        read_only,
        principal
    FROM events_classified
    WHERE actor_kind = 'agent'
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

per_action AS (
    SELECT
        agent_name,
        split_part(event_source, '.', 1) AS service,
        event_source,
        event_name,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        sum(CASE WHEN read_only = false THEN 1 ELSE 0 END) AS write_calls,
        string_agg(DISTINCT access_path, ',' ORDER BY access_path) AS access_paths,
        count(DISTINCT principal) AS principals,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM agent_events
    GROUP BY agent_name, event_source, event_name
),

weighted AS (
    SELECT
        *,
        sum(calls) OVER (PARTITION BY agent_name) AS agent_calls
    FROM per_action
),

final AS (
    SELECT * FROM weighted WHERE calls >= $min_calls
)

SELECT * FROM final
ORDER BY agent_name, calls DESC, event_source, event_name;
