-- name: 40_user_agents
-- description: The client behind each distinct user agent (console, cli, sdk, iac, mcp, service,
--   unknown) and the awslabs MCP server it names, if any (with the marker as written). Markers come from the table
--   user_agent_markers (pipeline/attribute/markers.py, with their sources); the first marker by
--   priority wins, and MCP markers come before CLI/SDK ones because awslabs servers append
--   theirs to an aws-cli/ or Boto3/ string. S3 brackets the user agents it logs; the markers
--   read inside the brackets. Computed per distinct user agent, not per event.
-- params: none (reads the tables user_agent_markers and attribution_distinct_values)
-- grain: one row per distinct user agent
-- used_by: pipeline/attribute/classify.py (client column; the MCP mark of rules 2 and 3)
CREATE OR REPLACE TABLE user_agent_clients AS
WITH agents AS (
    SELECT DISTINCT user_agent FROM attribution_distinct_values WHERE user_agent IS NOT NULL
),

unbracketed AS (
    -- S3 logs the user agent in square brackets (`[aws-cli/2.18.5]`, `[Boto3/1.9.190 ...]`,
    -- `[S3Console/0.4, aws-internal/3 ...]`): the markers, which anchor at the start or the
    -- end, read inside them. A bracket never closed (a cut string) is read the same way.
    SELECT
        user_agent,
        CASE
            WHEN starts_with(user_agent, '[')
                THEN substr(
                    user_agent, 2,
                    length(user_agent) - 1 - CASE WHEN ends_with(user_agent, ']') THEN 1 ELSE 0 END
                )
            ELSE user_agent
        END AS bare
    FROM agents
),

matched AS (
    SELECT a.user_agent, arg_min(m.client, m.priority) AS client
    FROM unbracketed AS a
    JOIN user_agent_markers AS m ON a.bare LIKE m.pattern
    GROUP BY a.user_agent
),

final AS (
    SELECT
        a.user_agent,
        coalesce(m.client, 'unknown') AS client,
        nullif(regexp_extract(a.user_agent, '(md/)?awslabs[#/]mcp[#/]([\w.-]+)', 2), '')
            AS awslabs_mcp_server,
        -- The marker as written, for the evidence of rules that take it as an MCP mark.
        nullif(regexp_extract(a.user_agent, '(md/)?awslabs[#/]mcp[#/]([\w.-]+)', 0), '')
            AS awslabs_mcp_marker
    FROM agents AS a
    LEFT JOIN matched AS m ON m.user_agent = a.user_agent
)

SELECT * FROM final;
