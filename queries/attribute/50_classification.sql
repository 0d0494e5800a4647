-- name: 50_classification
-- description: Every event with who acted and through which path. Rules, first match wins
--   (README, "Attribution rules"): 1 managed MCP; 2 agent sessions (session tags, source
--   identity); 3 awslabs MCP user agent; 4 agent roles on the direct path (the MCP bypass);
--   5 AWS services; 6 workloads (last: a key that joins no issuing event, whose role and session
--   name the logs show only in sessions an AWS service obtained); 7 people (console, then
--   direct); 8 unknown. Each row says which rule decided (classified_by), the field values that
--   decided (evidence), its confidence and the rules_version in force. Everything that is not per event is computed first, per
--   distinct key, into small tables (session marks, configured-pattern matches per distinct
--   value, role agent intervals, MCP links), so the pass over the events is one streaming scan
--   with equality hash joins against small tables: no correlated subquery, no as-of join.
-- params: none (reads the temp tables built by 10_* to 40_*, attribution_settings,
--   attribution_patterns, and attribution_events: the events with each row's filename and
--   file_row_number, which classify.py uses to write the verdicts next to the event columns)
-- grain: one row per event
-- used_by: pipeline/attribute/classify.py, which materialises it as events_classified
CREATE OR REPLACE TEMP TABLE classification_sessions AS
-- One row per issued key: what the rules need from the session and its chain.
WITH marks AS (
    SELECT
        s.issued_key,
        bool_or(lower(t.key) = lower(c.agent_tag_key) AND lower(t.value) = lower(c.agent_tag_value))
            AS agent_tag,
        max(CASE WHEN lower(t.key) = lower(c.mcp_server_tag_key) THEN t.value END) AS mcp_server_tag,
        string_agg(t.key || '=' || t.value, ', ' ORDER BY t.key) AS tag_text
    FROM sessions AS s
    CROSS JOIN attribution_settings AS c,
        unnest(map_entries(s.effective_tags)) AS u(t)
    GROUP BY s.issued_key
)

SELECT
    s.issued_key,
    s.root_key,
    s.role_name AS session_role_name,
    s.caller_invoked_by,
    s.root_caller_type,
    s.root_caller_invoked_by,
    s.root_web_identity_provider,
    s.issued_by_call,
    s.source_identity AS session_source_identity,
    coalesce(m.agent_tag, false) AS agent_tag,
    m.mcp_server_tag,
    m.tag_text
FROM sessions AS s
LEFT JOIN marks AS m ON m.issued_key = s.issued_key;

CREATE OR REPLACE TEMP TABLE classification_session_names AS
-- The fallback for keys that join no issuing event (issued before the logs begin): the role
-- and session name (facts doc s.3). Only one answer is taken from it: every session of that
-- role and name that the logs do show was obtained by an AWS service (a Lambda function's
-- name, an ECS task's id), so the unjoined one is taken to be a workload's too, with medium
-- confidence.
SELECT
    role_account_id,
    role_name,
    session_name,
    count(*) AS sessions,
    arg_max(root_caller_invoked_by, (issued_at, issued_key)) AS root_caller_invoked_by,
    arg_max(issued_key, (issued_at, issued_key)) AS example_key
FROM sessions
WHERE role_account_id IS NOT NULL AND role_name IS NOT NULL AND session_name IS NOT NULL
GROUP BY role_account_id, role_name, session_name
HAVING bool_and(coalesce(root_caller_type = 'AWSService', false));

CREATE OR REPLACE TEMP TABLE classification_identity_providers AS
-- userIdentity.identityProvider of the calls of web-identity and SAML principals (all of them
-- are source events), so the rules never read the wide user_identity column of every event.
SELECT event_id, json_extract_string(user_identity, '$.identityProvider') AS identity_provider
FROM attribution_source_events
WHERE principal_type IN ('WebIdentityUser', 'SAMLUser')
    AND json_extract_string(user_identity, '$.identityProvider') IS NOT NULL;

CREATE OR REPLACE TEMP TABLE classification_pattern_matches AS
-- (kind, value) for every distinct value of the events that matches a configured pattern of
-- that kind: the rules join on equality instead of testing LIKE patterns row by row.
WITH distinct_values AS (
    SELECT invoked_by, session_issuer_name, iam_user_name, source_identity, web_id_provider
    FROM attribution_distinct_values
),

candidates AS (
    SELECT 'mcp_principal' AS kind, invoked_by AS value FROM distinct_values
    UNION
    SELECT unnest(['agent_role', 'workload_role']), session_issuer_name FROM distinct_values
    UNION
    SELECT 'workload_user', iam_user_name FROM distinct_values
    UNION
    SELECT unnest(['agent_source_identity', 'mcp_source_identity']), source_identity
    FROM distinct_values
    UNION
    SELECT unnest(['agent_source_identity', 'mcp_source_identity']), session_source_identity
    FROM classification_sessions
    UNION
    SELECT 'workload_web_identity_provider', web_id_provider FROM distinct_values
    UNION
    SELECT 'workload_web_identity_provider', identity_provider FROM classification_identity_providers
    UNION
    SELECT 'workload_web_identity_provider', root_web_identity_provider FROM classification_sessions
),

matched AS (
    SELECT DISTINCT c.kind, c.value
    FROM candidates AS c
    JOIN attribution_patterns AS p ON p.kind = c.kind AND c.value LIKE p.pattern
    WHERE c.value IS NOT NULL
)

-- Rule 2: a source identity matching an MCP pattern is also an agent source identity.
SELECT kind, value FROM matched
UNION
SELECT 'agent_source_identity', value FROM matched WHERE kind = 'mcp_source_identity';

CREATE OR REPLACE TEMP TABLE classification_role_intervals AS
-- When each role was an agent role, as non-overlapping intervals [valid_from, valid_to) per
-- (account, role name): from each observation (snapshot, CreateRole, TagRole, UntagRole) to
-- the next. Before the first observation, a snapshot still applies (the oldest one after the
-- period, issue 3), an event does not. Ties at one instant: the last by observed_by wins.
WITH ordered AS (
    SELECT
        account_id,
        role_name,
        observed_at,
        observed_by,
        is_agent,
        lead(observed_at) OVER w AS next_observed_at,
        row_number() OVER w AS n
    FROM role_agent_observations
    WINDOW w AS (PARTITION BY account_id, role_name ORDER BY observed_at, observed_by)
)

SELECT
    account_id,
    role_name,
    observed_at AS valid_from,
    coalesce(next_observed_at, 'infinity'::TIMESTAMPTZ) AS valid_to,
    is_agent,
    observed_by
FROM ordered
WHERE next_observed_at IS NULL OR next_observed_at > observed_at
UNION ALL
SELECT
    account_id,
    role_name,
    '-infinity'::TIMESTAMPTZ AS valid_from,
    observed_at AS valid_to,
    is_agent,
    observed_by
FROM ordered
WHERE n = 1 AND observed_by LIKE 'snapshot %';

CREATE OR REPLACE TEMP TABLE classification_links AS
-- Managed-MCP links per key: downstream request ids, tool-call events, MCP grants (own event),
-- and sign-in sessions with their first MCP grant.
WITH downstream AS (
    SELECT
        'request' AS link,
        downstream_request_id AS link_key,
        any_value(tool_event_id) AS tool_event_id,
        any_value(tool_name) AS tool_name,
        any_value(mcp_principal) AS mcp_principal,
        NULL::VARCHAR AS resource,
        NULL::VARCHAR AS grant_owner,
        NULL::TIMESTAMPTZ AS granted_at
    FROM mcp_tool_calls
    WHERE downstream_request_id IS NOT NULL
    GROUP BY downstream_request_id
),

tool_calls AS (
    SELECT
        'tool_call' AS link,
        tool_event_id AS link_key,
        tool_event_id,
        any_value(tool_name) AS tool_name,
        any_value(mcp_principal) AS mcp_principal,
        NULL::VARCHAR AS resource,
        NULL::VARCHAR AS grant_owner,
        NULL::TIMESTAMPTZ AS granted_at
    FROM mcp_tool_calls
    GROUP BY tool_event_id
),

own_grants AS (
    SELECT
        'grant' AS link,
        grant_event_id AS link_key,
        grant_event_id AS tool_event_id,
        NULL::VARCHAR AS tool_name,
        any_value(mcp_principal) AS mcp_principal,
        any_value(resource) AS resource,
        any_value(grant_owner) AS grant_owner,
        min(granted_at) AS granted_at
    FROM mcp_grants
    GROUP BY grant_event_id
),

sign_in_sessions AS (
    SELECT
        'sign_in_session' AS link,
        sign_in_session_arn AS link_key,
        arg_min(grant_event_id, (granted_at, grant_event_id)) AS tool_event_id,
        NULL::VARCHAR AS tool_name,
        arg_min(mcp_principal, (granted_at, grant_event_id)) AS mcp_principal,
        arg_min(resource, (granted_at, grant_event_id)) AS resource,
        arg_min(grant_owner, (granted_at, grant_event_id)) AS grant_owner,
        min(granted_at) AS granted_at
    FROM mcp_grants
    GROUP BY sign_in_session_arn
)

SELECT * FROM downstream
UNION ALL
SELECT * FROM tool_calls
UNION ALL
SELECT * FROM own_grants
UNION ALL
SELECT * FROM sign_in_sessions;

CREATE OR REPLACE TEMP VIEW classification AS
WITH features AS (
    SELECT
        e.*,
        -- arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION; neither name may hold a '/'.
        CASE WHEN contains(e.principal_arn, ':assumed-role/')
            THEN split_part(e.principal_arn, '/', 3) ELSE '' END AS session_name,
        s.issued_key IS NOT NULL AS session_joined,
        s.root_key,
        s.session_role_name,
        s.caller_invoked_by,
        s.root_caller_type,
        s.root_caller_invoked_by,
        s.root_web_identity_provider,
        s.issued_by_call,
        coalesce(s.session_source_identity, e.source_identity) AS chain_source_identity,
        coalesce(s.agent_tag, false) AS agent_tag,
        s.mcp_server_tag,
        s.tag_text,
        dl.tool_event_id AS downstream_of,
        tc.tool_name AS own_tool_name,
        tc.mcp_principal AS own_mcp_principal,
        dl.tool_name AS downstream_tool_name,
        dl.mcp_principal AS downstream_mcp_principal,
        g.tool_event_id AS grant_event_id,
        g.resource AS grant_resource,
        g.grant_owner,
        g.mcp_principal AS grant_mcp_principal,
        own_grant.link_key IS NOT NULL AS is_mcp_grant,
        own_grant.mcp_principal AS own_grant_mcp_principal,
        own_grant.resource AS own_grant_resource,
        ua.client AS ua_client,
        ua.awslabs_mcp_server,
        coalesce(o.is_agent, false) OR p_agent_role.kind IS NOT NULL AS agent_role,
        o.observed_by AS agent_role_observed_by,
        p_agent_si.kind IS NOT NULL AS agent_source_identity,
        p_mcp_si.kind IS NOT NULL AS mcp_source_identity,
        coalesce(e.web_id_provider, ip.identity_provider, s.root_web_identity_provider)
            AS web_identity_provider,
        p_web.kind IS NOT NULL AS workload_web_identity,
        p_workload_role.kind IS NOT NULL OR p_workload_user.kind IS NOT NULL AS workload_pattern,
        p_mcp.kind IS NOT NULL AS invoked_by_mcp,
        sn.sessions AS named_sessions,
        sn.root_caller_invoked_by AS named_root_caller_invoked_by,
        sn.example_key AS named_example_key
    FROM attribution_events AS e
    LEFT JOIN classification_sessions AS s ON s.issued_key = e.access_key_id
    LEFT JOIN classification_links AS dl ON dl.link = 'request' AND dl.link_key = e.request_id
    LEFT JOIN classification_links AS tc ON tc.link = 'tool_call' AND tc.link_key = e.event_id
    LEFT JOIN classification_links AS own_grant
        ON own_grant.link = 'grant' AND own_grant.link_key = e.event_id
    -- A grant links the events of its sign-in session from the grant on, not before.
    LEFT JOIN classification_links AS g
        ON g.link = 'sign_in_session' AND g.link_key = e.sign_in_session_arn
        AND g.granted_at <= e.event_time
    LEFT JOIN classification_identity_providers AS ip
        ON e.principal_type IN ('WebIdentityUser', 'SAMLUser') AND ip.event_id = e.event_id
    LEFT JOIN user_agent_clients AS ua ON ua.user_agent = e.user_agent
    LEFT JOIN classification_role_intervals AS o
        ON o.account_id = e.session_issuer_account_id
        AND o.role_name = e.session_issuer_name
        AND e.event_time >= o.valid_from
        AND e.event_time < o.valid_to
    LEFT JOIN classification_session_names AS sn
        ON s.issued_key IS NULL
        AND e.principal_type = 'AssumedRole'
        AND sn.role_account_id = e.session_issuer_account_id
        AND sn.role_name = e.session_issuer_name
        AND sn.session_name = split_part(e.principal_arn, '/', 3)
    LEFT JOIN classification_pattern_matches AS p_mcp
        ON p_mcp.kind = 'mcp_principal' AND p_mcp.value = e.invoked_by
    LEFT JOIN classification_pattern_matches AS p_agent_role
        ON p_agent_role.kind = 'agent_role' AND p_agent_role.value = e.session_issuer_name
    LEFT JOIN classification_pattern_matches AS p_workload_role
        ON p_workload_role.kind = 'workload_role' AND p_workload_role.value = e.session_issuer_name
    LEFT JOIN classification_pattern_matches AS p_workload_user
        ON p_workload_user.kind = 'workload_user' AND e.principal_type = 'IAMUser'
        AND p_workload_user.value = e.user_name
    LEFT JOIN classification_pattern_matches AS p_agent_si
        ON p_agent_si.kind = 'agent_source_identity'
        AND p_agent_si.value = coalesce(s.session_source_identity, e.source_identity)
    LEFT JOIN classification_pattern_matches AS p_mcp_si
        ON p_mcp_si.kind = 'mcp_source_identity'
        AND p_mcp_si.value = coalesce(s.session_source_identity, e.source_identity)
    LEFT JOIN classification_pattern_matches AS p_web
        ON p_web.kind = 'workload_web_identity_provider'
        AND p_web.value = coalesce(e.web_id_provider, ip.identity_provider, s.root_web_identity_provider)
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
            WHEN named_sessions IS NOT NULL THEN 'workload.service_issued_by_name'
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
            web_identity_provider, workload_web_identity, workload_pattern, invoked_by_mcp,
            named_sessions, named_root_caller_invoked_by, named_example_key, classified_by
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
            -- Tags only where the key joined a session that has some: a source identity
            -- alone can decide, also on a key whose issuing event is not in the logs.
            WHEN 'agent_session.mcp'
                THEN concat_ws('; ',
                    'session ' || r.access_key_id || ' tags {' || r.tag_text || '}',
                    'sourceIdentity=' || r.chain_source_identity,
                    CASE WHEN r.root_key <> r.access_key_id THEN 'chain root ' || r.root_key END
                )
            WHEN 'agent_session.direct'
                THEN concat_ws('; ',
                    'session ' || r.access_key_id || ' tags {' || r.tag_text || '}',
                    'sourceIdentity=' || r.chain_source_identity,
                    'no MCP mark'
                )
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
            WHEN 'workload.web_identity' THEN 'web identity provider ' || r.web_identity_provider
            WHEN 'workload.configured' THEN 'matches a configured workload pattern'
            WHEN 'workload.service_issued_by_name'
                THEN 'key ' || r.access_key_id || ' joins no issuing event; the '
                    || r.named_sessions || ' session(s) of ' || r.session_issuer_name || ' named '
                    || r.session_name || ' in the logs were issued by '
                    || coalesce(r.named_root_caller_invoked_by, 'an AWS service')
                    || ' (e.g. session ' || r.named_example_key || ')'
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
            WHEN r.classified_by IN (
                'awslabs_user_agent', 'human.other_role', 'workload.service_issued_by_name'
            ) THEN 'medium'
            WHEN r.classified_by = 'unknown' THEN 'low'
            ELSE 'high'
        END AS confidence,
        c.rules_version
    FROM ruled AS r
    CROSS JOIN attribution_settings AS c
)

SELECT * FROM final;
