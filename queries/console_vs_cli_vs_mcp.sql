-- name: console_vs_cli_vs_mcp
-- description: Through which kind of client does the work happen? Calls per client, as the client
--   column of events_classified gives it from the user agent and the classification: console
--   (browser and console back ends), cli (AWS CLI), sdk (AWS SDKs), iac (Terraform, CDK,
--   CloudFormation, ...), mcp (MCP servers and clients: AWS-managed MCP records and downstream
--   calls, awslabs MCP user agents, MCP client user agents), service (AWS services), unknown. Shows
--   how much of the activity already goes through MCP and how much agents still do from a shell.
--   Columns: client, calls, share_pct (percent of all calls in scope, two decimals), agent_calls,
--   human_calls, workload_calls, service_calls, unknown_calls (calls by actor_kind), principals
--   (distinct IAM identities), first_seen and last_seen (UTC).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per client
-- used_by: analysts; quarterly report (later)
WITH classified AS (
    SELECT
        event_time,
        client,
        actor_kind,
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

per_client AS (
    SELECT
        coalesce(client, 'unknown') AS client,
        count(*) AS calls,
        sum(CASE WHEN actor_kind = 'agent' THEN 1 ELSE 0 END) AS agent_calls,
        sum(CASE WHEN actor_kind = 'human' THEN 1 ELSE 0 END) AS human_calls,
        sum(CASE WHEN actor_kind = 'workload' THEN 1 ELSE 0 END) AS workload_calls,
        sum(CASE WHEN actor_kind = 'service' THEN 1 ELSE 0 END) AS service_calls,
        sum(CASE WHEN actor_kind = 'unknown' THEN 1 ELSE 0 END) AS unknown_calls,
        count(DISTINCT principal) AS principals,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM classified
    GROUP BY coalesce(client, 'unknown')
),

final AS (
    SELECT
        client,
        calls,
        round(100.0 * calls / sum(calls) OVER (), 2) AS share_pct,
        agent_calls,
        human_calls,
        workload_calls,
        service_calls,
        unknown_calls,
        principals,
        first_seen,
        last_seen
    FROM per_client
)

SELECT * FROM final
ORDER BY calls DESC, client;
