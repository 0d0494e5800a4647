-- name: 05_source_events
-- description: The few events whose request or response bodies the attribution reads: IAM role
--   tag changes (CreateRole, TagRole, UntagRole) and deletions (DeleteRole), STS calls that issue credentials, sign-in
--   CreateOAuth2Token grants, AwsMcpEvent tool calls and the calls of web-identity and SAML
--   principals (whose userIdentity names an identityProvider), with the columns and JSON
--   fields 10_* to 50_* need. One scan of the events reads the wide JSON columns once for all of
--   them, instead of once per derived table. The filters of each consumer are kept in the consumer (this table is a
--   superset), so what each one selects is unchanged. Events files are never rewritten, so what
--   this file extracts from one is kept beside the generations (pipeline/attribute/
--   source_cache.py): a rebuild extracts only the files no earlier rebuild did
--   (attribution_extract_events) and reads the others' rows back
--   (attribution_cached_source_events, attribution_cached_values), each row with its file's
--   index in this rebuild's pinned list (file_index) and its row number in the file.
--   source_cache.py keeps the new files' rows of attribution_source_events and
--   attribution_extracted_values.
-- params: none (reads the views attribution_extract_events, attribution_cached_source_events
--   and attribution_cached_values)
-- grain: attribution_source_events: one row per event of the kinds above;
--   attribution_distinct_values: one row per distinct combination of its columns;
--   attribution_extracted_values: the same per file, of the files this rebuild extracts
-- used_by: 10_role_agent_timeline, 20_sessions, 30_mcp_links, 50_classification;
--   pipeline/attribute/source_cache.py
CREATE OR REPLACE TABLE attribution_source_events AS
WITH selected AS (
    SELECT
        event_id,
        -- Where the event is in the pinned events files.
        file_index,
        file_row_number,
        event_time,
        event_source,
        event_name,
        event_type,
        -- (Events files ingested before ingest read an empty errorCode as none.)
        nullif(error_code, '') AS error_code,
        recipient_account_id,
        shared_event_id,
        -- What ties an STS call to the managed MCP server (50_*: sessions it obtained).
        request_id,
        sign_in_session_arn,
        session_credential_from_console,
        user_agent,
        access_key_id,
        principal_type,
        -- An empty string in these fields names no one, as an absent one (records carry them
        -- as written): '' would name a person '' (onBehalfOf, sourceIdentity, userName, the
        -- last part of userIdentity.arn), make a session an EC2 instance's (ec2RoleDelivery) or
        -- a web identity's, and, first in a coalesce() of the consumers, hide the value that
        -- follows it.
        nullif(principal_arn, '') AS principal_arn,
        iam_principal_arn,
        nullif(invoked_by, '') AS invoked_by,
        nullif(on_behalf_of_user_id, '') AS on_behalf_of_user_id,
        nullif(source_identity, '') AS source_identity,
        -- When the caller's own session was created (sessionContext.attributes.creationDate):
        -- for a chain whose root a role session opened, that session's creation also where its
        -- issuing event is not in the logs (50_*: root_callers).
        session_creation_date,
        -- The caller's own marks, for the sessions it opens (20_sessions): the user name of a
        -- SAML user, the Identity Center user behind it, the web identity a role session came
        -- from (webIdFederationData).
        nullif(user_name, '') AS user_name,
        nullif(web_id_provider, '') AS web_id_provider,
        nullif(ec2_role_delivery, '') AS ec2_role_delivery,
        -- One parse of each JSON document for every path any consumer reads; the documents
        -- themselves are not kept (copying them cost more than parsing them).
        nullif(identity_provider, '') AS identity_provider,
        json_extract_string(request_parameters, [
            '$.roleArn', '$.roleSessionName', '$.name', '$.sourceIdentity', '$.roleName',
            '$.params.name', '$.method', '$.resource'
        ]) AS request_strings,
        json_extract(request_parameters, [
            '$.tags', '$.principalTags', '$.incomingTransitiveTags', '$.transitiveTagKeys',
            '$.tagKeys'
        ]) AS request_json,
        json_extract_string(response_elements, [
            '$.credentials.accessKeyId', '$.federatedUser.arn', '$.sourceIdentity',
            '$.credentials.expiration', '$.assumedRoleUser.arn'
        ]) AS response_strings,
        json_extract_string(additional_event_data, [
            '$.mcpEventDetails.sessionId', '$.mcpEventDetails.mcpServerName', '$.signInSessionArn'
        ]) AS additional_strings,
        json_extract(additional_event_data, '$.downstreamRequests') AS downstream_requests,
        json_extract_string(extra, ['$.mcpEventDetails.sessionId', '$.mcpEventDetails.mcpServerName'])
            AS extra_strings
    FROM attribution_extract_events
    WHERE event_type = 'AwsMcpEvent'
        OR (event_source = 'iam.amazonaws.com' AND event_name IN (
            'CreateRole', 'TagRole', 'UntagRole', 'DeleteRole'
        ))
        OR (event_source = 'sts.amazonaws.com' AND event_name IN (
            'AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity',
            'GetSessionToken', 'GetFederationToken', 'AssumeRoot'
        ))
        OR (event_source = 'signin.amazonaws.com' AND event_name = 'CreateOAuth2Token')
        OR principal_type IN ('WebIdentityUser', 'SAMLUser')
),

extracted AS (
    SELECT
        * EXCLUDE (
            request_strings, request_json, response_strings, additional_strings, extra_strings
        ),
        request_strings[1] AS request_role_arn,
        request_strings[2] AS request_role_session_name,
        request_strings[3] AS request_name,
        nullif(request_strings[4], '') AS request_source_identity,
        request_strings[5] AS request_role_name,
        request_strings[6] AS request_tool_name,  -- params.name of an MCP tools/call
        request_strings[7] AS request_method,
        request_strings[8] AS request_resource,
        request_json[1] AS request_tags,
        request_json[2] AS request_principal_tags,
        request_json[3] AS request_incoming_transitive_tags,
        request_json[4] AS request_transitive_tag_keys,
        request_json[5] AS request_tag_keys,
        response_strings[1] AS response_access_key_id,
        response_strings[2] AS response_federated_user_arn,
        nullif(response_strings[3], '') AS response_source_identity,
        response_strings[4] AS response_expiration,
        response_strings[5] AS response_assumed_role_arn,
        additional_strings[1] AS additional_mcp_session_id,
        additional_strings[2] AS additional_mcp_server_name,
        additional_strings[3] AS additional_sign_in_session_arn,
        extra_strings[1] AS extra_mcp_session_id,
        extra_strings[2] AS extra_mcp_server_name
    FROM selected
)

SELECT
    *,
    -- Where the event is in the pinned events files (classification_event_marks is keyed by
    -- it: the per-event pass then neither reads nor hashes the eventID strings).
    (file_index::BIGINT << 32) + file_row_number AS event_position
FROM (
    SELECT * FROM extracted
    UNION ALL BY NAME
    SELECT * FROM attribution_cached_source_events
);

CREATE OR REPLACE TABLE attribution_extracted_values AS
-- The distinct combinations of the few low-cardinality columns that user-agent markers and
-- configured patterns are tested against: one narrow scan for 40_user_agents and the pattern
-- matches of 50_classification, which then test each value once instead of once per event.
-- Per file, so that each file's can be kept.
SELECT
    file_index,
    user_agent,
    invoked_by,
    -- Empty sessionIssuer fields name no role (the one userIdentity.arn names is the call's,
    -- as 50_* reads it).
    nullif(session_issuer_name, '') AS session_issuer_name,
    -- The account of a role the calls name, for the roles' own spellings (10_*).
    nullif(session_issuer_account_id, '') AS session_issuer_account_id,
    CASE WHEN principal_type = 'IAMUser' THEN user_name END AS iam_user_name,
    -- The role a record without sessionIssuer names in its userIdentity.arn
    -- (arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION), which 50_* reads as its role:
    -- tested against the configured role patterns with the others, and, with its account,
    -- one more spelling of the role (10_*).
    CASE WHEN nullif(session_issuer_name, '') IS NULL AND principal_type = 'AssumedRole'
        AND contains(principal_arn, ':assumed-role/')
        THEN nullif(split_part(principal_arn, '/', 2), '')
    END AS arn_role_name,
    CASE WHEN nullif(session_issuer_name, '') IS NULL AND principal_type = 'AssumedRole'
        AND contains(principal_arn, ':assumed-role/')
        THEN nullif(split_part(principal_arn, ':', 5), '')
    END AS arn_role_account_id,
    source_identity,
    web_id_provider
FROM attribution_extract_events
GROUP BY ALL;

CREATE OR REPLACE TABLE attribution_distinct_values AS
SELECT DISTINCT * EXCLUDE (file_index)
FROM (
    SELECT * FROM attribution_extracted_values
    UNION ALL BY NAME
    SELECT * FROM attribution_cached_values
);
