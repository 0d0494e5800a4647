-- name: unjoined_sessions
-- description: Which assumed-role sessions can we not trace to the STS call that opened them? Calls
--   carry no session tags: tags, source identity and chain come only from joining the call's access
--   key to the issuing STS event (the sessions table). An agent session that does not join escapes
--   the tag-based rules, and any unjoined key is a blind spot; some are expected (Identity Center
--   hands out keys from its portal without an STS event in the trail, AWS services obtain their
--   service-linked role credentials themselves, keys issued before the first event in the
--   warehouse, console requests). A call without an accessKeyId (empty or absent) joins nothing either and is
--   counted too. Console sessions mint a new key per request, so keys are grouped into sessions by
--   principal ARN and sessionContext creationDate. Short-term root sessions (sts:AssumeRoot)
--   whose AssumeRoot is not in the logs are counted too, outside the console: a principal of the
--   management account used the member account as root, and the logs do not say which. One row
--   per role and reason: reason is root_session (such a root session; role_arn is then the
--   account root ARN), reused_issued_key (the key was issued by more than one STS call, as where an export masked
--   the keys or examples reuse one: it names no one session, so it joins none),
--   identity_center, service_linked_role, console (console
--   requests and console sign-ins: the console mints a key per request, and a role switched
--   into in the console has no STS event in the trail), issued_before_data (created before the
--   earliest event in the warehouse) or no_issuing_event (unexpected: a gap in the data or credentials issued outside
--   the trail). Roles with agent sessions come first. Columns: reason, role_arn (for calls
--   whose records name no sessionIssuer ARN, the role the rules read, the name of the
--   sessionIssuer, else the role their userIdentity.arn names, written
--   arn:PARTITION:iam::ACCOUNT:role/NAME in the partition of userIdentity.arn: that ARN shows
--   no path; NULL where that ARN is empty or absent; a role named AWSReservedSSO_ is Identity
--   Center's where the record shows no sessionIssuer), sessions
--   (principal ARN and creation time pairs), agent_sessions (sessions an agent made calls with),
--   sample_access_key (the key of the earliest call; NULL where it had none), calls, agent_calls,
--   console_calls, actor_kinds, agent_names, people (human_id values), accounts (all
--   comma-separated), first_call and last_call (UTC), first_session and last_session (the
--   assumed-role session ARN of the earliest and latest call; ties by ARN), first_agent_session
--   (that of the earliest agent call).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per role and reason (unjoined assumed-role sessions summarised)
-- used_by: analysts; quarterly report (later)
WITH data_start AS (
    SELECT min(event_time) AS first_event_at FROM events
),

unjoined AS MATERIALIZED (
    SELECT
        e.event_time,
        e.recipient_account_id,
        e.principal_arn,
        role_arn,
        hash(e.principal_arn, e.session_creation_date) AS session_hash,
        e.access_key_id,
        e.session_credential_from_console,
        e.actor_kind,
        e.agent_name,
        e.human_id,
        CASE
            WHEN e.principal_type = 'Root' THEN 'root_session'
            WHEN k.issued_key IS NOT NULL THEN 'reused_issued_key'
            WHEN identity_center THEN 'identity_center'
            WHEN e.session_issuer_arn LIKE '%:role/aws-service-role/%' THEN 'service_linked_role'
            WHEN e.session_credential_from_console OR e.event_type = 'AwsConsoleSignIn' THEN 'console'
            WHEN e.session_creation_date < d.first_event_at THEN 'issued_before_data'
            ELSE 'no_issuing_event'
        END AS reason,
        hash(
            role_arn,
            CASE
                WHEN e.principal_type = 'Root' THEN 7
                WHEN k.issued_key IS NOT NULL THEN 6
                WHEN identity_center THEN 1
                WHEN e.session_issuer_arn LIKE '%:role/aws-service-role/%' THEN 2
                WHEN e.session_credential_from_console OR e.event_type = 'AwsConsoleSignIn' THEN 5
                WHEN e.session_creation_date < d.first_event_at THEN 3
                ELSE 4
            END
        ) AS role_hash
    FROM events_classified AS e
    CROSS JOIN data_start AS d
    CROSS JOIN LATERAL (
        SELECT
            -- The role: its ARN, else (a record without the ARN of its sessionIssuer) the role
            -- the rules read (events_classified: the name of the sessionIssuer, else, as an
            -- unjoined key joins no session, the one userIdentity.arn names), written as a role
            -- ARN without a path, which userIdentity.arn
            -- (arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION) does not show, in the
            -- partition of that ARN: none where it is empty or absent (NULL, not arn::iam::).
            coalesce(
                e.iam_principal_arn,
                e.session_issuer_arn,
                'arn:' || nullif(split_part(e.principal_arn, ':', 2), '') || ':iam::'
                    || e.role_account_id || ':role/' || e.role_name
            ) AS role_arn,
            -- An Identity Center role: by its path, or, where the record has no sessionIssuer,
            -- by its AWSReservedSSO_ name (as the rules read it).
            coalesce(
                e.session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                    OR (e.session_issuer_name IS NULL AND starts_with(e.role_name, 'AWSReservedSSO_')),
                false
            ) AS identity_center
    ) AS r
    -- Keys that several STS calls issued (masked by an export, or reused examples): no session.
    LEFT JOIN session_key_conflicts AS k ON k.issued_key = e.access_key_id
    -- A call without an accessKeyId joins no issuing event either (README, rule 4): it is
    -- counted, under the session its principal and creation time name.
    -- And the calls of short-term root sessions whose AssumeRoot is not in the logs: the rules
    -- find them unknown (README, rule 12), not the root user.
    WHERE (
            e.principal_type = 'AssumedRole'
            OR (e.principal_type = 'Root' AND e.classified_by = 'unknown')
        )
        AND NOT e.session_joined
        AND ($since IS NULL OR e.event_time >= $since)
        AND ($until IS NULL OR e.event_time < $until)
        AND ($account IS NULL OR e.recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (r.role_arn, e.principal_arn, e.agent_name, e.human_id)
        )
),

per_session AS (
    -- A session is a (principal ARN, creation time) pair. Millions of them: grouped on 64-bit
    -- hashes (of the pair, and of the role and reason it is counted under), not on the strings.
    SELECT session_hash, role_hash, bool_or(actor_kind = 'agent') AS is_agent_session
    FROM unjoined
    GROUP BY session_hash, role_hash
),

session_counts AS (
    SELECT
        role_hash,
        count(*) AS sessions,
        count(*) FILTER (WHERE is_agent_session) AS agent_sessions
    FROM per_session
    GROUP BY role_hash
),

per_identity AS (
    -- Few groups (role, reason and who acted), keyed by hashes again; the values are the same
    -- on every row of a group. The per-role lists roll up from these.
    SELECT
        role_hash,
        any_value(reason) AS reason,
        any_value(role_arn) AS role_arn,
        any_value(actor_kind) AS actor_kind,
        any_value(agent_name) AS agent_name,
        any_value(human_id) AS human_id,
        any_value(recipient_account_id) AS recipient_account_id,
        count(*) AS calls,
        count(*) FILTER (WHERE session_credential_from_console) AS console_calls,
        min({'at': event_time, 'arn': principal_arn, 'key': access_key_id}) AS first_session,
        max({'at': event_time, 'arn': principal_arn}) AS last_session
    FROM unjoined
    GROUP BY role_hash, hash(actor_kind, agent_name, human_id, recipient_account_id)
),

per_role AS (
    SELECT
        reason,
        role_arn,
        role_hash,
        min(first_session).key AS sample_access_key,
        sum(calls)::BIGINT AS calls,
        coalesce(sum(calls) FILTER (WHERE actor_kind = 'agent'), 0)::BIGINT AS agent_calls,
        sum(console_calls)::BIGINT AS console_calls,
        string_agg(DISTINCT actor_kind, ',' ORDER BY actor_kind) AS actor_kinds,
        string_agg(DISTINCT agent_name, ',' ORDER BY agent_name) AS agent_names,
        string_agg(DISTINCT human_id, ',' ORDER BY human_id) AS people,
        string_agg(DISTINCT recipient_account_id, ',' ORDER BY recipient_account_id) AS accounts,
        min(first_session).at AS first_call,
        max(last_session).at AS last_call,
        min(first_session).arn AS first_session,
        max(last_session).arn AS last_session,
        min(first_session) FILTER (WHERE actor_kind = 'agent').arn AS first_agent_session
    FROM per_identity
    GROUP BY role_hash, reason, role_arn
),

final AS (
    SELECT
        r.reason,
        r.role_arn,
        c.sessions,
        c.agent_sessions,
        r.* EXCLUDE (reason, role_arn, role_hash)
    FROM per_role AS r
    JOIN session_counts AS c ON c.role_hash = r.role_hash
)

SELECT * FROM final
ORDER BY agent_sessions > 0 DESC, first_call, role_arn, reason;
