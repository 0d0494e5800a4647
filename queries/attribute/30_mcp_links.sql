-- name: 30_mcp_links
-- description: Links of the AWS-managed MCP servers. mcp_tool_calls: each AwsMcpEvent
--   tool-call record (matched on eventType only: its eventSource and eventName differ between
--   AWS's documentation and real records) with its tool name, MCP session and client, and one
--   row per downstream request it caused (downstreamRequests[].requestId = the downstream
--   call's requestID). mcp_grants: OAuth grants for an MCP endpoint (signin CreateOAuth2Token
--   whose resource matches a configured MCP endpoint pattern); every later event of the grant's
--   signInSessionArn belongs to it (a grant without one, or with an empty one, links none).
--   A signInSessionArn without such a grant means nothing: AWS puts it on ordinary console
--   and CLI sessions too.
-- params: none (reads the tables attribution_settings, attribution_patterns and
--   attribution_source_events)
-- grain: mcp_tool_calls: one row per tool call and downstream request; mcp_grants: one row per grant
-- used_by: pipeline/attribute/classify.py (rule 1); query mcp_tool_calls
CREATE OR REPLACE TABLE mcp_tool_calls AS
WITH calls AS (
    SELECT
        event_id AS tool_event_id,
        event_time AS tool_event_time,
        recipient_account_id,
        event_source,
        user_agent AS mcp_client,
        principal_arn,
        -- An empty value names nothing, and hides not the one after it. The method names the
        -- tool only where it is no JSON-RPC method of the protocol itself (tools/call,
        -- tools/list, session/destroy, initialize, ping): the managed server logs those calls
        -- of an MCP session as AwsMcpEvent records too, and MCP tool names hold no slash.
        coalesce(
            nullif(request_tool_name, ''),
            CASE
                WHEN NOT contains(request_method, '/')
                    AND request_method NOT IN ('initialize', 'ping')
                    THEN nullif(request_method, '')
            END
        ) AS tool_name,
        coalesce(nullif(extra_mcp_session_id, ''), nullif(additional_mcp_session_id, ''))
            AS mcp_session_id,
        coalesce(nullif(extra_mcp_server_name, ''), nullif(additional_mcp_server_name, ''))
            AS mcp_server_name,
        -- The managed server as a service principal: aws-mcp.amazonaws.com, whether the record
        -- names its source aws-mcp.amazonaws.com (seen) or aws-mcp.us-east-1.api.aws (documented).
        CASE
            WHEN event_source LIKE '%.amazonaws.com' THEN event_source
            ELSE split_part(event_source, '.', 1) || '.amazonaws.com'
        END AS mcp_principal,
        downstream_requests AS downstream
    FROM attribution_source_events
    WHERE event_type = 'AwsMcpEvent'
),

final AS (
    SELECT
        c.* EXCLUDE (downstream),
        d.apiName AS downstream_api,
        -- An empty id names no request: joined, it would link every event whose requestID
        -- is empty too.
        nullif(d.requestId, '') AS downstream_request_id,
        d.awsRegion AS downstream_region
    FROM calls AS c
    LEFT JOIN LATERAL (
        SELECT unnest(coalesce(
            json_transform(c.downstream, '[{"apiName":"VARCHAR","requestId":"VARCHAR","awsRegion":"VARCHAR"}]'),
            [NULL]
        ), recursive := true)
    ) AS d ON true
)

SELECT * FROM final;

CREATE OR REPLACE TABLE mcp_grants AS
WITH grants AS (
    SELECT
        -- An empty ARN names no sign-in session (every event showing an empty one would be
        -- the grant's, and its owner their person).
        nullif(additional_sign_in_session_arn, '') AS sign_in_session_arn,
        request_resource AS resource,
        event_id AS grant_event_id,
        event_time AS granted_at,
        recipient_account_id,
        principal_arn AS granted_to,
        CASE
            -- A grant an agent obtained (its source identity matches a configured agent or MCP
            -- pattern) has no person behind it that the record names, but an Identity Center
            -- user: neither the agent's name nor its session's name is a person's.
            WHEN EXISTS (
                SELECT 1 FROM attribution_patterns AS p
                WHERE p.kind IN ('agent_source_identity', 'mcp_source_identity')
                    AND source_identity LIKE p.pattern
            ) THEN on_behalf_of_user_id
            ELSE coalesce(
                on_behalf_of_user_id,
                source_identity,
                -- The root user's ARN (arn:aws:iam::ACCOUNT:root) has no name part; its own
                -- calls name it "root" (human_id), and so do those of its grant.
                CASE WHEN principal_type = 'Root' THEN 'root' END,
                regexp_extract(principal_arn, '[^/]+$')
            )
        END AS grant_owner
    FROM attribution_source_events
    WHERE event_source = 'signin.amazonaws.com'
        AND event_name = 'CreateOAuth2Token'
        AND error_code IS NULL
),

final AS (
    SELECT
        g.*,
        split_part(regexp_extract(g.resource, '^[a-z]+://([^/:]+)', 1), '.', 1) || '.amazonaws.com'
            AS mcp_principal
    FROM grants AS g
    -- A grant whose record shows no signInSessionArn is kept: its own event is still the MCP
    -- client's, though it links no later event.
    WHERE EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE p.kind = 'mcp_oauth_resource' AND g.resource LIKE p.pattern
        )
)

SELECT * FROM final;
