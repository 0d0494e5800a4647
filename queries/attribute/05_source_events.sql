-- name: 05_source_events
-- description: The few events whose request or response bodies the attribution reads: IAM role
--   tag changes (CreateRole, TagRole, UntagRole), STS calls that issue credentials, sign-in
--   CreateOAuth2Token grants and AwsMcpEvent tool calls, with the columns 10_* to 30_* need.
--   One scan of the events reads the wide JSON columns once for all of them, instead of once
--   per derived table. The filters of each consumer are kept in the consumer (this table is a
--   superset), so what each one selects is unchanged.
-- params: none
-- grain: one row per event of the kinds above
-- used_by: 10_role_agent_timeline, 20_sessions, 30_mcp_links
CREATE OR REPLACE TEMP TABLE attribution_source_events AS
SELECT
    event_id,
    event_time,
    event_source,
    event_name,
    event_type,
    error_code,
    recipient_account_id,
    shared_event_id,
    user_agent,
    access_key_id,
    principal_type,
    principal_arn,
    iam_principal_arn,
    invoked_by,
    on_behalf_of_user_id,
    source_identity,
    user_identity,
    request_parameters,
    response_elements,
    additional_event_data,
    extra
FROM events
WHERE event_type = 'AwsMcpEvent'
    OR (event_source = 'iam.amazonaws.com' AND event_name IN ('CreateRole', 'TagRole', 'UntagRole'))
    OR (event_source = 'sts.amazonaws.com' AND event_name IN (
        'AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity',
        'GetSessionToken', 'GetFederationToken'
    ))
    OR (event_source = 'signin.amazonaws.com' AND event_name = 'CreateOAuth2Token');
