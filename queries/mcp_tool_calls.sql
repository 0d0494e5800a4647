-- name: mcp_tool_calls
-- description: What did agents do through the AWS-managed MCP servers, tool by tool? For each tool,
--   and each MCP session, the AWS API calls the tool calls caused. Reads the AwsMcpEvent tool-call
--   records (matched on eventType only: their eventSource and eventName differ between AWS's
--   documentation and real records) and follows additionalEventData.downstreamRequests[].requestId
--   to the downstream calls' requestID. Self-managed MCP servers leave no tool-call record, so they
--   do not appear here (see agent_actions). Two levels of rows: level 'tool' sums each tool over
--   all sessions, level 'session' splits it per MCP session (mcpEventDetails.sessionId; NULL on
--   tool rows). Columns: level, mcp_session_id, tool_name (params.name, else the JSON-RPC method),
--   downstream_api (apiName as the record gives it, e.g. ec2:StopInstances; NULL for tool calls
--   that made no AWS call, such as documentation tools), tool_calls (tool-call records),
--   downstream_requests (listed by those records), downstream_found (requests whose downstream
--   event is in the warehouse; fewer than requested means missing data or data events not logged),
--   downstream_failed (found downstream events with an errorCode), people (human_id values,
--   comma-separated), principals (identity ARNs, comma-separated), mcp_clients (the client user
--   agents of the tool-call records), first_call and last_call (UTC times of the tool calls). The
--   period and scope apply to the tool-call records.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per tool and downstream API (level tool), and one row per MCP session, tool and downstream API (level session)
-- used_by: analysts; quarterly report (later)
WITH tool_events AS (
    SELECT
        event_id AS tool_event_id,
        event_time,
        principal,
        human_id,
        user_agent AS mcp_client,
        coalesce(
            json_extract_string(request_parameters, '$.params.name'),
            json_extract_string(request_parameters, '$.method')
        ) AS tool_name,
        coalesce(
            json_extract_string(extra, '$.mcpEventDetails.sessionId'),
            json_extract_string(additional_event_data, '$.mcpEventDetails.sessionId')
        ) AS mcp_session_id,
        json_extract(additional_event_data, '$.downstreamRequests') AS downstream_json
    FROM events_classified
    WHERE event_type = 'AwsMcpEvent'
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

requests AS (
    SELECT
        t.tool_event_id,
        r.request.apiName AS downstream_api,
        r.request.requestId AS request_id
    FROM tool_events AS t
    CROSS JOIN unnest(json_transform(
        t.downstream_json, '[{"apiName":"VARCHAR","requestId":"VARCHAR","awsRegion":"VARCHAR"}]'
    )) AS r (request)
),

downstream_events AS (
    SELECT
        request_id,
        count(*) AS found,
        sum(CASE WHEN error_code IS NOT NULL THEN 1 ELSE 0 END) AS failed
    FROM events_classified
    WHERE (event_type IS NULL OR event_type <> 'AwsMcpEvent')
        AND request_id IN (SELECT request_id FROM requests)
    GROUP BY request_id
),

calls AS (
    -- One row per tool call and downstream request; tool calls without any keep one row.
    SELECT
        t.tool_event_id,
        t.event_time,
        t.principal,
        t.human_id,
        t.mcp_client,
        t.tool_name,
        t.mcp_session_id,
        q.downstream_api,
        q.request_id,
        CASE WHEN d.found > 0 THEN 1 ELSE 0 END AS found,
        CASE WHEN d.failed > 0 THEN 1 ELSE 0 END AS failed
    FROM tool_events AS t
    LEFT JOIN requests AS q ON q.tool_event_id = t.tool_event_id
    LEFT JOIN downstream_events AS d ON d.request_id = q.request_id
),

per_tool AS (
    SELECT
        'tool' AS level,
        CAST(NULL AS VARCHAR) AS mcp_session_id,
        tool_name,
        downstream_api,
        count(DISTINCT tool_event_id) AS tool_calls,
        count(request_id) AS downstream_requests,
        sum(found) AS downstream_found,
        sum(failed) AS downstream_failed,
        string_agg(DISTINCT human_id, ',' ORDER BY human_id) AS people,
        string_agg(DISTINCT principal, ',' ORDER BY principal) AS principals,
        string_agg(DISTINCT mcp_client, ',' ORDER BY mcp_client) AS mcp_clients,
        min(event_time) AS first_call,
        max(event_time) AS last_call
    FROM calls
    GROUP BY tool_name, downstream_api
),

per_session AS (
    SELECT
        'session' AS level,
        mcp_session_id,
        tool_name,
        downstream_api,
        count(DISTINCT tool_event_id) AS tool_calls,
        count(request_id) AS downstream_requests,
        sum(found) AS downstream_found,
        sum(failed) AS downstream_failed,
        string_agg(DISTINCT human_id, ',' ORDER BY human_id) AS people,
        string_agg(DISTINCT principal, ',' ORDER BY principal) AS principals,
        string_agg(DISTINCT mcp_client, ',' ORDER BY mcp_client) AS mcp_clients,
        min(event_time) AS first_call,
        max(event_time) AS last_call
    FROM calls
    GROUP BY mcp_session_id, tool_name, downstream_api
),

final AS (
    SELECT * FROM per_tool
    UNION ALL
    SELECT * FROM per_session
)

SELECT * FROM final
ORDER BY
    CASE level WHEN 'tool' THEN 0 ELSE 1 END,
    mcp_session_id NULLS FIRST,
    tool_name NULLS FIRST,
    downstream_api NULLS FIRST;
