-- name: 50_events_classified
-- description: Every event with who acted, through which path, by which rule and on what
--   evidence: the columns of events, then actor_kind, access_path, client, agent_name, human_id,
--   mcp_tool, session_joined, session_root, classified_by, evidence, confidence, rules_version,
--   principal, role_account_id, role_name. principal is the IAM identity that made the call,
--   one value for every kind of identity, which the named queries count, group and filter
--   (--principal) by: the role ARN of an assumed-role session (iam_principal_arn), else the
--   ARN of the user or root, else the web-identity subject (principalId of a
--   WebIdentityUser), else the AWS service that called on its own (invokedBy of an
--   AWSService identity or of a record without userIdentity.type), else the
--   identity type and account (`AWSService:123456789012`, `Unknown:...` where userIdentity
--   names nothing). role_account_id and role_name are a role session's role as the rules read
--   it (NULL for other identities): the sessionIssuer, else the role_*_fallback columns the
--   rebuild wrote for records without one (the role of the session the key joins, else the
--   one userIdentity.arn names), which the named queries on roles read instead of parsing ARNs.
--   Reads events_verdicts (warehouse/connect.py: per partition, the events files an
--   attribution rebuild classified with the verdict columns appended, no join needed). The evidence sentence is composed here, per
--   row read, from the event's own fields and evidence_detail, the values the deciding rule
--   found outside the event (queries/attribute/50_classification.sql): a rebuild writes short
--   values instead of a sentence per event, and a query that does not read evidence does not
--   compose it.
-- params: none
-- grain: one row per event
-- used_by: every named query; analysts
CREATE OR REPLACE VIEW events_classified AS
SELECT
    * EXCLUDE (
        role_account_id_fallback, role_name_fallback, evidence_detail, confidence, rules_version
    ),
    CASE classified_by
        WHEN 'mcp_managed.invoked_by' THEN 'userIdentity.invokedBy=' || invoked_by
        WHEN 'mcp_managed.tool_call' THEN 'eventType=AwsMcpEvent; ' || evidence_detail
        WHEN 'mcp_managed.downstream_request'
            THEN 'requestID=' || request_id || ' is a downstream request of MCP tool call '
                || evidence_detail
        WHEN 'mcp_managed.oauth_grant' THEN 'CreateOAuth2Token for MCP resource ' || evidence_detail
        WHEN 'mcp_managed.oauth_session'
            THEN 'signInSessionArn=' || sign_in_session_arn || ' granted by ' || evidence_detail
        WHEN 'agent_session.mcp' THEN evidence_detail
        WHEN 'agent_session.direct' THEN evidence_detail
        WHEN 'agent_chain.mcp' THEN evidence_detail
        WHEN 'agent_chain.direct' THEN evidence_detail
        WHEN 'agent_session.mcp_by_name' THEN evidence_detail
        WHEN 'agent_session.direct_by_name' THEN evidence_detail
        WHEN 'agent.service_invoked' THEN evidence_detail
        WHEN 'workload.service_invoked' THEN evidence_detail
        WHEN 'human.service_invoked' THEN evidence_detail
        WHEN 'awslabs_user_agent' THEN 'userAgent names awslabs MCP server ' || agent_name
        -- Where the record names no sessionIssuer, the detail of rules that name the call's
        -- role is their whole sentence: the role the rules read elsewhere (the session its key
        -- joins, userIdentity.arn), and where.
        WHEN 'agent_role.direct'
            THEN coalesce(
                'role ' || nullif(session_issuer_name, '') || ' is an agent role ('
                    || evidence_detail || ')',
                evidence_detail
            ) || '; no MCP mark on the call'
        WHEN 'service.aws_service'
            THEN 'userIdentity.type=AWSService' || coalesce('; invokedBy=' || invoked_by, '')
        WHEN 'service.service_linked_role' THEN 'service-linked role ' || session_issuer_arn
        WHEN 'service.service_event' THEN 'eventType=AwsServiceEvent'
        WHEN 'workload.service_issued' THEN evidence_detail
        WHEN 'workload.ec2_role_delivery' THEN 'ec2RoleDelivery=' || ec2_role_delivery
        WHEN 'workload.instance_session'
            -- arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
            THEN 'session name ' || split_part(principal_arn, '/', 3) || ' is an instance id'
        WHEN 'workload.web_identity' THEN 'web identity provider ' || evidence_detail
        -- A generation classified before rules revision 5 has no detail for this rule.
        WHEN 'workload.configured' THEN coalesce(evidence_detail, 'matches a configured workload pattern')
        WHEN 'workload.service_issued_by_name' THEN evidence_detail
        WHEN 'human.console_agent_role'
            THEN coalesce(
                'role ' || nullif(session_issuer_name, '') || ' is an agent role ('
                    || evidence_detail || ')',
                evidence_detail
            ) || ' used from the console: ' || CASE
                    WHEN session_credential_from_console THEN 'sessionCredentialFromConsole=true'
                    WHEN event_type = 'AwsConsoleSignIn' THEN 'eventType=AwsConsoleSignIn'
                    ELSE 'console userAgent ' || user_agent
                END
        WHEN 'human.console'
            THEN CASE
                WHEN session_credential_from_console THEN 'sessionCredentialFromConsole=true'
                WHEN event_type = 'AwsConsoleSignIn' THEN 'eventType=AwsConsoleSignIn'
                ELSE 'console userAgent ' || user_agent
            END
        -- A record without sessionIssuer: the detail names the role the rules read.
        WHEN 'human.identity_center'
            THEN coalesce(
                'Identity Center user ' || nullif(on_behalf_of_user_id, ''),
                'Identity Center role '
                    || coalesce(nullif(session_issuer_name, ''), nullif(session_issuer_arn, '')),
                evidence_detail,
                'userIdentity.type=' || principal_type
            )
        WHEN 'human.iam_user'
            THEN 'userIdentity.type=' || principal_type || coalesce('; ' || evidence_detail, '')
        WHEN 'human.federated'
            THEN 'userIdentity.type=' || principal_type || coalesce(' via ' || evidence_detail, '')
        WHEN 'human.other_role'
            THEN coalesce(
                'role ' || nullif(session_issuer_name, '')
                    || ' with no agent, MCP, service or workload mark'
                    || coalesce('; ' || evidence_detail, ''),
                evidence_detail,
                'role ? with no agent, MCP, service or workload mark'
            )
        WHEN 'unknown'
            THEN 'userIdentity.type=' || coalesce(principal_type, 'absent')
                || coalesce('; ' || evidence_detail, '')
        ELSE 'userIdentity.type=' || coalesce(principal_type, 'absent')
    END AS evidence,
    confidence,
    rules_version,
    -- An empty value names no one: a record whose userIdentity.arn is empty (and whose
    -- sessionIssuer shows no ARN) is counted under its type and account, not under '', nor
    -- under the service that made the call for it (invokedBy names the principal only of a
    -- service that called on its own: an AWSService identity, or a record without one).
    coalesce(
        nullif(iam_principal_arn, ''),
        nullif(principal_arn, ''),
        CASE WHEN principal_type = 'WebIdentityUser' THEN nullif(principal_id, '') END,
        CASE WHEN coalesce(principal_type, 'AWSService') = 'AWSService'
            THEN nullif(invoked_by, '') END,
        coalesce(principal_type, 'Unknown') || ':'
            || coalesce(nullif(principal_account_id, ''), recipient_account_id)
    ) AS principal,
    -- A role session's role, as the rules read it: the record's sessionIssuer (not an empty
    -- one, which names no role: 50_classification.sql reads it as absent), else what the
    -- rebuild kept (the role of the session the key joins, else the one userIdentity.arn
    -- names; the account that ARN names, else userIdentity.accountId). Not the sessionIssuer
    -- of another identity: a FederatedUser's is the IAM user that called GetFederationToken.
    CASE WHEN principal_type = 'AssumedRole'
        THEN coalesce(nullif(session_issuer_account_id, ''), role_account_id_fallback) END
        AS role_account_id,
    CASE WHEN principal_type = 'AssumedRole'
        THEN coalesce(nullif(session_issuer_name, ''), role_name_fallback) END AS role_name
FROM events_verdicts;
