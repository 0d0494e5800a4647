-- name: agent_bypass
-- description: Which agent identities called AWS directly, without any MCP server: the MCP bypass.
--   An agent role (tagged Usage=Agent) or an agent-tagged session whose calls carry no MCP mark, or
--   a session chained from one (a role hop drops the marks, not the agent), means the agent harness
--   ran the AWS CLI or an SDK itself, outside the controls the MCP server applies. One row per
--   agent identity: agent_name, principal (the role ARN), accounts (recipient accounts,
--   comma-separated), calls, failed_calls (an errorCode), write_calls (readOnly false), sessions
--   (distinct access keys), actions (distinct eventSource/eventName pairs, a missing eventSource or
--   eventName counting as a value of its own), clients (the client column: cli, sdk, ...),
--   classified_by (the attribution rules that decided, comma-separated), first_seen and last_seen
--   (UTC), sample_event_ids (the three earliest events, comma-separated) and evidence (the
--   attribution evidence of the earliest event). principal matches the identity ARNs, the agent
--   name or the person behind.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per agent identity (agent_name and role) on the direct path
-- used_by: analysts; quarterly report (later)
WITH bypass_events AS (
    SELECT
        event_id,
        event_time,
        recipient_account_id,
        agent_name,
        principal,
        access_key_id,
        event_source,
        event_name,
        error_code,
        read_only,
        client,
        classified_by,
        evidence
    FROM events_classified
    WHERE actor_kind = 'agent'
        AND access_path = 'direct'
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

ordered AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY agent_name, principal ORDER BY event_time, event_id
        ) AS event_rank
    FROM bypass_events
),

per_identity AS (
    SELECT
        agent_name,
        principal,
        string_agg(DISTINCT recipient_account_id, ',' ORDER BY recipient_account_id) AS accounts,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        sum(CASE WHEN read_only = false THEN 1 ELSE 0 END) AS write_calls,
        count(DISTINCT access_key_id) AS sessions,
        string_agg(DISTINCT client, ',' ORDER BY client) AS clients,
        string_agg(DISTINCT classified_by, ',' ORDER BY classified_by) AS classified_by,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen,
        string_agg(CASE WHEN event_rank <= 3 THEN event_id END, ',' ORDER BY event_rank)
            AS sample_event_ids,
        max(CASE WHEN event_rank = 1 THEN evidence END) AS evidence
    FROM ordered
    GROUP BY agent_name, principal
),

actions AS (
    -- Distinct eventSource/eventName pairs, a missing one (NULL) a value of its own: SELECT
    -- DISTINCT keeps a pair with a NULL in it, which a count(DISTINCT) of the two concatenated
    -- (NULL when either is) would drop.
    SELECT agent_name, principal, count(*) AS actions
    FROM (
        SELECT DISTINCT agent_name, principal, event_source, event_name FROM bypass_events
    ) AS pairs
    GROUP BY agent_name, principal
),

final AS (
    SELECT
        a.agent_name,
        a.principal,
        a.accounts,
        a.calls,
        a.failed_calls,
        a.write_calls,
        a.sessions,
        n.actions,
        a.clients,
        a.classified_by,
        a.first_seen,
        a.last_seen,
        a.sample_event_ids,
        a.evidence
    FROM per_identity AS a
    -- IS NOT DISTINCT FROM: a row whose agent_name or principal is missing in odd data must
    -- not drop out of the report.
    JOIN actions AS n
        ON n.agent_name IS NOT DISTINCT FROM a.agent_name
        AND n.principal IS NOT DISTINCT FROM a.principal
)

SELECT * FROM final
ORDER BY calls DESC, agent_name, principal;
