-- name: 05_source_events
-- description: The few events whose request or response bodies the attribution reads: IAM role
--   tag changes (CreateRole, TagRole, UntagRole), STS calls that issue credentials, sign-in
--   CreateOAuth2Token grants, AwsMcpEvent tool calls and the calls of web-identity and SAML
--   principals (whose userIdentity names an identityProvider), with the columns 10_* to 50_*
--   need.
--   One scan of the events reads the wide JSON columns once for all of them, instead of once
--   per derived table. The filters of each consumer are kept in the consumer (this table is a
--   superset), so what each one selects is unchanged.
-- params: none
-- grain: one row per event of the kinds above
-- used_by: 10_role_agent_timeline, 20_sessions, 30_mcp_links, 50_classification
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
    OR (event_source = 'signin.amazonaws.com' AND event_name = 'CreateOAuth2Token')
    OR principal_type IN ('WebIdentityUser', 'SAMLUser');

CREATE OR REPLACE TEMP TABLE attribution_distinct_values AS
-- The distinct combinations of the few low-cardinality columns that user-agent markers and
-- configured patterns are tested against: one narrow scan for 40_user_agents and the pattern
-- matches of 50_classification, which then test each value once instead of once per event.
SELECT
    user_agent,
    invoked_by,
    session_issuer_name,
    CASE WHEN principal_type = 'IAMUser' THEN user_name END AS iam_user_name,
    source_identity,
    web_id_provider
FROM events
GROUP BY ALL;
