-- name: 50_classification
-- description: Every event with who acted and through which path. Rules, first match wins
--   (README, "Attribution rules"): 1 managed MCP; 2 agent sessions (session tags, source
--   identity); 3 awslabs MCP user agent; 4 agent roles on the direct path (the MCP bypass);
--   5 AWS services; 6 workloads; 7 people (console, then direct); 8 unknown. Each row says which
--   rule decided (classified_by), the field values that decided (evidence), its confidence and
--   the rules_version in force.
-- params: none (reads the temp tables built by 10_* to 40_* and attribution_settings)
-- grain: one row per event
-- used_by: pipeline/attribute/classify.py, which materialises it as events_classified
CREATE OR REPLACE TEMP VIEW classification AS
WITH settings AS (
    SELECT * FROM attribution_settings
),

session_marks AS (
    SELECT
        s.issued_key,
        bool_or(lower(t.key) = lower(c.agent_tag_key) AND lower(t.value) = lower(c.agent_tag_value))
            AS agent_tag,
        max(CASE WHEN lower(t.key) = lower(c.mcp_server_tag_key) THEN t.value END) AS mcp_server_tag,
        string_agg(t.key || '=' || t.value, ', ' ORDER BY t.key) AS tag_text
    FROM sessions AS s
    CROSS JOIN settings AS c,
        unnest(map_entries(s.effective_tags)) AS u(t)
    GROUP BY s.issued_key
),

downstream_links AS (
    SELECT
        downstream_request_id AS request_id,
        any_value(tool_event_id) AS tool_event_id,
        any_value(tool_name) AS tool_name,
        any_value(mcp_principal) AS mcp_principal
    FROM mcp_tool_calls
    WHERE downstream_request_id IS NOT NULL
    GROUP BY downstream_request_id
),

tool_calls AS (
    SELECT tool_event_id, any_value(tool_name) AS tool_name, any_value(mcp_principal) AS mcp_principal
    FROM mcp_tool_calls
    GROUP BY tool_event_id
),

grants AS (
    SELECT
        sign_in_session_arn,
        arg_min(grant_event_id, granted_at) AS grant_event_id,
        arg_min(resource, granted_at) AS resource,
        arg_min(grant_owner, granted_at) AS grant_owner,
        arg_min(mcp_principal, granted_at) AS mcp_principal
    FROM mcp_grants
    GROUP BY sign_in_session_arn
),

first_role_observation AS (
    SELECT
        account_id,
        role_name,
        arg_min(is_agent, observed_at) AS is_agent,
        arg_min(observed_by, observed_at) AS observed_by
    FROM role_agent_observations
    GROUP BY ALL
),

features AS (
    SELECT
        e.*,
        regexp_extract(e.principal_arn, ':assumed-role/[^/]+/(.+)$', 1) AS session_name,
        s.issued_key IS NOT NULL AS session_joined,
        s.root_key,
        s.role_name AS session_role_name,
        s.caller_invoked_by,
        s.root_caller_type,
        s.root_caller_invoked_by,
        s.root_web_identity_provider,
        s.issued_by_call,
        coalesce(s.source_identity, e.source_identity) AS chain_source_identity,
        coalesce(m.agent_tag, false) AS agent_tag,
        m.mcp_server_tag,
        m.tag_text,
        dl.tool_event_id AS downstream_of,
        tc.tool_name AS own_tool_name,
        tc.mcp_principal AS own_mcp_principal,
        dl.tool_name AS downstream_tool_name,
        dl.mcp_principal AS downstream_mcp_principal,
        g.grant_event_id,
        g.resource AS grant_resource,
        g.grant_owner,
        g.mcp_principal AS grant_mcp_principal,
        own_grant.grant_event_id IS NOT NULL AS is_mcp_grant,
        own_grant.mcp_principal AS own_grant_mcp_principal,
        own_grant.resource AS own_grant_resource,
        ua.client AS ua_client,
        ua.awslabs_mcp_server,
        coalesce(
            o.is_agent,
            CASE WHEN f.observed_by LIKE 'snapshot %' THEN f.is_agent END,
            false
        ) OR EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE p.kind = 'agent_role' AND e.session_issuer_name LIKE p.pattern
        ) AS agent_role,
        coalesce(o.observed_by, CASE WHEN f.observed_by LIKE 'snapshot %' THEN f.observed_by END)
            AS agent_role_observed_by,
        EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE p.kind IN ('agent_source_identity', 'mcp_source_identity')
                AND coalesce(s.source_identity, e.source_identity) LIKE p.pattern
        ) AS agent_source_identity,
        EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE p.kind = 'mcp_source_identity'
                AND coalesce(s.source_identity, e.source_identity) LIKE p.pattern
        ) AS mcp_source_identity,
        EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE p.kind = 'workload_web_identity_provider'
                AND coalesce(
                    e.web_id_provider,
                    json_extract_string(e.user_identity, '$.identityProvider'),
                    s.root_web_identity_provider
                ) LIKE p.pattern
        ) AS workload_web_identity,
        EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE (p.kind = 'workload_role' AND e.session_issuer_name LIKE p.pattern)
                OR (p.kind = 'workload_user' AND e.principal_type = 'IAMUser' AND e.user_name LIKE p.pattern)
        ) AS workload_pattern,
        EXISTS (
            SELECT 1 FROM attribution_patterns AS p
            WHERE p.kind = 'mcp_principal' AND e.invoked_by LIKE p.pattern
        ) AS invoked_by_mcp
    FROM events AS e
    LEFT JOIN sessions AS s ON s.issued_key = e.access_key_id
    LEFT JOIN session_marks AS m ON m.issued_key = e.access_key_id
    LEFT JOIN downstream_links AS dl ON dl.request_id = e.request_id
    LEFT JOIN tool_calls AS tc ON tc.tool_event_id = e.event_id
    LEFT JOIN grants AS g ON g.sign_in_session_arn = e.sign_in_session_arn
    LEFT JOIN mcp_grants AS own_grant ON own_grant.grant_event_id = e.event_id
    LEFT JOIN user_agent_clients AS ua ON ua.user_agent = e.user_agent
    ASOF LEFT JOIN role_agent_observations AS o
        ON o.account_id = e.session_issuer_account_id
        AND o.role_name = e.session_issuer_name
        AND o.observed_at <= e.event_time
    LEFT JOIN first_role_observation AS f
        ON f.account_id = e.session_issuer_account_id AND f.role_name = e.session_issuer_name
),

ruled AS (
    SELECT
        *,
        CASE
            WHEN invoked_by_mcp THEN 'mcp_managed.invoked_by'
            WHEN event_type = 'AwsMcpEvent' THEN 'mcp_managed.tool_call'
            WHEN downstream_of IS NOT NULL THEN 'mcp_managed.downstream_request'
            WHEN is_mcp_grant THEN 'mcp_managed.oauth_grant'
            WHEN grant_event_id IS NOT NULL THEN 'mcp_managed.oauth_session'
            WHEN (agent_tag OR mcp_server_tag IS NOT NULL OR agent_source_identity)
                AND (mcp_server_tag IS NOT NULL OR mcp_source_identity)
                THEN 'agent_session.mcp'
            WHEN agent_tag OR agent_source_identity THEN 'agent_session.direct'
            WHEN awslabs_mcp_server IS NOT NULL THEN 'awslabs_user_agent'
            WHEN principal_type = 'AssumedRole' AND agent_role THEN 'agent_role.direct'
            WHEN principal_type = 'AWSService' THEN 'service.aws_service'
            WHEN session_issuer_arn LIKE '%:role/aws-service-role/%' THEN 'service.service_linked_role'
            WHEN principal_type IS NULL AND event_type = 'AwsServiceEvent' THEN 'service.service_event'
            WHEN root_caller_type = 'AWSService' THEN 'workload.service_issued'
            WHEN ec2_role_delivery IS NOT NULL THEN 'workload.ec2_role_delivery'
            WHEN regexp_matches(session_name, '^i-[0-9a-f]{8,17}$') THEN 'workload.instance_session'
            WHEN workload_web_identity THEN 'workload.web_identity'
            WHEN workload_pattern THEN 'workload.configured'
            WHEN principal_type IN ('Unknown', 'AWSAccount') OR principal_type IS NULL THEN 'unknown'
            WHEN coalesce(session_credential_from_console, false)
                OR event_type = 'AwsConsoleSignIn'
                OR ua_client = 'console'
                THEN 'human.console'
            WHEN principal_type IN ('IdentityCenterUser')
                OR on_behalf_of_user_id IS NOT NULL
                OR session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                THEN 'human.identity_center'
            WHEN principal_type IN ('IAMUser', 'Root') THEN 'human.iam_user'
            WHEN principal_type IN ('SAMLUser', 'FederatedUser', 'WebIdentityUser', 'Directory')
                OR issued_by_call = 'AssumeRoleWithSAML'
                THEN 'human.federated'
            WHEN principal_type = 'AssumedRole' THEN 'human.other_role'
            ELSE 'unknown'
        END AS classified_by
    FROM features
),

final AS (
    SELECT
        r.* EXCLUDE (
            session_name, session_joined, root_key, session_role_name, caller_invoked_by,
            root_caller_type, root_caller_invoked_by, root_web_identity_provider, issued_by_call,
            chain_source_identity, agent_tag, mcp_server_tag, tag_text, downstream_of,
            own_tool_name, own_mcp_principal, downstream_tool_name, downstream_mcp_principal,
            grant_event_id, grant_resource, grant_owner, grant_mcp_principal, is_mcp_grant,
            own_grant_mcp_principal, own_grant_resource, ua_client, awslabs_mcp_server,
            agent_role, agent_role_observed_by, agent_source_identity, mcp_source_identity,
            workload_web_identity, workload_pattern, invoked_by_mcp, classified_by
        ),
        CASE split_part(r.classified_by, '.', 1)
            WHEN 'mcp_managed' THEN 'agent'
            WHEN 'agent_session' THEN 'agent'
            WHEN 'awslabs_user_agent' THEN 'agent'
            WHEN 'agent_role' THEN 'agent'
            WHEN 'service' THEN 'service'
            WHEN 'workload' THEN 'workload'
            WHEN 'human' THEN 'human'
            ELSE 'unknown'
        END AS actor_kind,
        CASE
            WHEN r.classified_by LIKE 'mcp_managed.%' THEN 'mcp_managed'
            WHEN r.classified_by IN ('agent_session.mcp', 'awslabs_user_agent') THEN 'mcp_self_managed'
            WHEN r.classified_by LIKE 'service.%' THEN 'service'
            WHEN r.classified_by = 'human.console' THEN 'console'
            WHEN r.classified_by = 'unknown' THEN 'none'
            ELSE 'direct'
        END AS access_path,
        CASE
            WHEN r.awslabs_mcp_server IS NOT NULL OR r.event_type = 'AwsMcpEvent' OR r.invoked_by_mcp
                THEN 'mcp'
            WHEN coalesce(r.ua_client, 'unknown') <> 'unknown' THEN r.ua_client
            WHEN r.classified_by = 'human.console' THEN 'console'
            WHEN r.classified_by LIKE 'service.%' THEN 'service'
            ELSE 'unknown'
        END AS client,
        CASE
            WHEN r.classified_by = 'mcp_managed.invoked_by' THEN r.invoked_by
            WHEN r.classified_by = 'mcp_managed.tool_call' THEN r.own_mcp_principal
            WHEN r.classified_by = 'mcp_managed.downstream_request' THEN r.downstream_mcp_principal
            WHEN r.classified_by = 'mcp_managed.oauth_grant' THEN r.own_grant_mcp_principal
            WHEN r.classified_by = 'mcp_managed.oauth_session' THEN r.grant_mcp_principal
            WHEN r.classified_by = 'agent_session.mcp'
                THEN coalesce(r.mcp_server_tag, r.session_role_name, r.session_issuer_name)
            WHEN r.classified_by = 'agent_session.direct'
                THEN coalesce(r.session_role_name, r.session_issuer_name)
            WHEN r.classified_by = 'awslabs_user_agent' THEN r.awslabs_mcp_server
            WHEN r.classified_by = 'agent_role.direct' THEN r.session_issuer_name
        END AS agent_name,
        CASE
            WHEN r.classified_by LIKE 'service.%' OR r.classified_by LIKE 'workload.%' THEN NULL
            ELSE coalesce(
                r.on_behalf_of_user_id,
                r.chain_source_identity,
                r.grant_owner,
                CASE WHEN r.session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                    THEN r.session_name END,
                CASE WHEN r.principal_type = 'IAMUser' THEN r.user_name END,
                CASE WHEN r.principal_type = 'Root' THEN 'root' END
            )
        END AS human_id,
        coalesce(r.own_tool_name, r.downstream_tool_name) AS mcp_tool,
        r.session_joined,
        coalesce(r.root_key, r.access_key_id) AS session_root,
        r.classified_by,
        CASE r.classified_by
            WHEN 'mcp_managed.invoked_by' THEN 'userIdentity.invokedBy=' || r.invoked_by
            WHEN 'mcp_managed.tool_call'
                THEN 'eventType=AwsMcpEvent; tool=' || coalesce(r.own_tool_name, '?')
            WHEN 'mcp_managed.downstream_request'
                THEN 'requestID=' || r.request_id || ' is a downstream request of MCP tool call '
                    || r.downstream_of
            WHEN 'mcp_managed.oauth_grant'
                THEN 'CreateOAuth2Token for MCP resource ' || r.own_grant_resource
            WHEN 'mcp_managed.oauth_session'
                THEN 'signInSessionArn=' || r.sign_in_session_arn || ' granted by '
                    || r.grant_event_id || ' for ' || r.grant_resource
            WHEN 'agent_session.mcp'
                THEN 'session ' || r.access_key_id || ' tags {' || coalesce(r.tag_text, '') || '}'
                    || coalesce('; sourceIdentity=' || r.chain_source_identity, '')
                    || CASE WHEN r.root_key <> r.access_key_id
                        THEN '; chain root ' || r.root_key ELSE '' END
            WHEN 'agent_session.direct'
                THEN 'session ' || r.access_key_id || ' tags {' || coalesce(r.tag_text, '') || '}'
                    || coalesce('; sourceIdentity=' || r.chain_source_identity, '')
                    || '; no MCP mark'
            WHEN 'awslabs_user_agent'
                THEN 'userAgent names awslabs MCP server ' || r.awslabs_mcp_server
            WHEN 'agent_role.direct'
                THEN 'role ' || r.session_issuer_name || ' is an agent role ('
                    || coalesce(r.agent_role_observed_by, 'configured pattern')
                    || '); no MCP mark on the call'
            WHEN 'service.aws_service'
                THEN 'userIdentity.type=AWSService' || coalesce('; invokedBy=' || r.invoked_by, '')
            WHEN 'service.service_linked_role' THEN 'service-linked role ' || r.session_issuer_arn
            WHEN 'service.service_event' THEN 'eventType=AwsServiceEvent'
            WHEN 'workload.service_issued'
                THEN 'credentials issued to ' || coalesce(r.session_issuer_name, '?') || ' by '
                    || coalesce(r.root_caller_invoked_by, 'an AWS service')
                    || ' (session ' || r.root_key || ')'
            WHEN 'workload.ec2_role_delivery' THEN 'ec2RoleDelivery=' || r.ec2_role_delivery
            WHEN 'workload.instance_session' THEN 'session name ' || r.session_name || ' is an instance id'
            WHEN 'workload.web_identity'
                THEN 'web identity provider ' || coalesce(
                    r.web_id_provider,
                    json_extract_string(r.user_identity, '$.identityProvider'),
                    r.root_web_identity_provider
                )
            WHEN 'workload.configured' THEN 'matches a configured workload pattern'
            WHEN 'human.console'
                THEN CASE
                    WHEN r.session_credential_from_console THEN 'sessionCredentialFromConsole=true'
                    WHEN r.event_type = 'AwsConsoleSignIn' THEN 'eventType=AwsConsoleSignIn'
                    ELSE 'console userAgent ' || r.user_agent
                END
            WHEN 'human.identity_center'
                THEN 'Identity Center ' || coalesce('user ' || r.on_behalf_of_user_id,
                    'role ' || r.session_issuer_name)
            WHEN 'human.iam_user' THEN 'userIdentity.type=' || r.principal_type
            WHEN 'human.federated' THEN 'userIdentity.type=' || r.principal_type
                || coalesce(' via ' || r.issued_by_call, '')
            WHEN 'human.other_role'
                THEN 'role ' || coalesce(r.session_issuer_name, '?')
                    || ' with no agent, MCP, service or workload mark'
            ELSE 'userIdentity.type=' || coalesce(r.principal_type, 'absent')
        END AS evidence,
        CASE
            WHEN r.classified_by IN ('awslabs_user_agent', 'human.other_role') THEN 'medium'
            WHEN r.classified_by = 'unknown' THEN 'low'
            ELSE 'high'
        END AS confidence,
        (SELECT rules_version FROM settings) AS rules_version
    FROM ruled AS r
)

SELECT * FROM final;
