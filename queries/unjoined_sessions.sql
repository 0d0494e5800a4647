-- name: unjoined_sessions
-- description: Which assumed-role sessions can we not trace to the STS call that opened them? Calls
--   carry no session tags: tags, source identity and chain come only from joining the call's access
--   key to the issuing STS event (the sessions table). An agent session that does not join escapes
--   the tag-based rules, and any unjoined key is a blind spot; some are expected (Identity Center
--   hands out keys from its portal without an STS event in the trail, AWS services obtain their
--   service-linked role credentials themselves, keys issued before the first event in the
--   warehouse). Console sessions mint a new key per request, so keys are grouped into sessions by
--   principal ARN and sessionContext creationDate. reason: identity_center, service_linked_role,
--   issued_before_data (created before the earliest event in the warehouse), no_issuing_event
--   (unexpected: a gap in the data or credentials issued outside the trail). Agent sessions come
--   first. Columns: is_agent_session (an agent made calls with it), reason, principal_arn (the
--   assumed-role session ARN), role_arn, session_created_at (UTC), access_keys (distinct keys),
--   sample_access_key (the smallest), calls, console_calls, actor_kinds, agent_names, people
--   (human_id values), accounts (all comma-separated), first_call and last_call (UTC).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per assumed-role session (principal ARN and creation time) whose keys join no issuing event
-- used_by: analysts; quarterly report (later)
WITH unjoined AS (
    SELECT
        event_time,
        recipient_account_id,
        principal_arn,
        iam_principal_arn,
        session_issuer_arn,
        session_creation_date,
        access_key_id,
        session_credential_from_console,
        actor_kind,
        agent_name,
        human_id
    FROM events_classified
    WHERE principal_type = 'AssumedRole'
        AND access_key_id IS NOT NULL
        AND NOT session_joined
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (iam_principal_arn, principal_arn, agent_name, human_id)
        )
),

data_start AS (
    SELECT min(event_time) AS first_event_at FROM events
),

per_session AS (
    SELECT
        principal_arn,
        session_creation_date AS session_created_at,
        max(coalesce(iam_principal_arn, session_issuer_arn)) AS role_arn,
        max(session_issuer_arn) AS session_issuer_arn,
        max(CASE WHEN actor_kind = 'agent' THEN 1 ELSE 0 END) = 1 AS is_agent_session,
        count(DISTINCT access_key_id) AS access_keys,
        min(access_key_id) AS sample_access_key,
        count(*) AS calls,
        sum(CASE WHEN session_credential_from_console THEN 1 ELSE 0 END) AS console_calls,
        string_agg(DISTINCT actor_kind, ',' ORDER BY actor_kind) AS actor_kinds,
        string_agg(DISTINCT agent_name, ',' ORDER BY agent_name) AS agent_names,
        string_agg(DISTINCT human_id, ',' ORDER BY human_id) AS people,
        string_agg(DISTINCT recipient_account_id, ',' ORDER BY recipient_account_id) AS accounts,
        min(event_time) AS first_call,
        max(event_time) AS last_call
    FROM unjoined
    GROUP BY principal_arn, session_creation_date
),

final AS (
    SELECT
        s.is_agent_session,
        CASE
            WHEN s.session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                THEN 'identity_center'
            WHEN s.session_issuer_arn LIKE '%:role/aws-service-role/%' THEN 'service_linked_role'
            WHEN s.session_created_at < d.first_event_at THEN 'issued_before_data'
            ELSE 'no_issuing_event'
        END AS reason,
        s.principal_arn,
        s.role_arn,
        s.session_created_at,
        s.access_keys,
        s.sample_access_key,
        s.calls,
        s.console_calls,
        s.actor_kinds,
        s.agent_names,
        s.people,
        s.accounts,
        s.first_call,
        s.last_call
    FROM per_session AS s
    CROSS JOIN data_start AS d
)

SELECT * FROM final
ORDER BY is_agent_session DESC, first_call, principal_arn, session_created_at;
