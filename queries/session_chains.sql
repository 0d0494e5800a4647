-- name: session_chains
-- description: Who started what? Every STS session (one per access key issued by AssumeRole,
--   AssumeRoleWithSAML, AssumeRoleWithWebIdentity, GetSessionToken or GetFederationToken) with the
--   chain above it walked to its root: which principal or AWS service opened the first session,
--   which tags each session carried and inherited, and which source identity (the person who
--   started the chain) travels with it. Sessions are in scope when issued in the period; the
--   account parameter matches the assumed role's account; principal matches the role ARN, the
--   caller (ARN or service), the root caller or the source identity. Columns: root_key,
--   root_caller_type and root_caller (who opened the first session of the chain: a principal ARN,
--   an AWS service, or the identity provider of a web-identity call), root_role_arn,
--   root_issued_at, chain_depth (0 for a root), issued_key, parent_key (the caller's own access
--   key), issued_at and expires_at (UTC), issued_by_call, role_account_id, role_arn, session_name,
--   caller_type, caller, source_identity (own or inherited), session_tags (the tags the issuing
--   call set, including incomingTransitiveTags; key=value, comma-separated), effective_tags (with
--   the transitive tags inherited through the chain), transitive_tag_keys, calls, failed_calls,
--   first_call and last_call (events made with the issued key in the period), actor_kinds and
--   agent_names (of those calls; comma-separated).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per issued session (access key)
-- used_by: analysts; quarterly report (later)
WITH all_sessions AS (
    SELECT
        issued_key,
        parent_key,
        issued_at,
        expires_at,
        issued_by_call,
        role_account_id,
        role_arn,
        session_name,
        caller_type,
        coalesce(caller, web_identity_provider) AS caller,
        caller_iam_arn,
        source_identity,
        own_tags,
        effective_tags,
        transitive_tag_keys,
        root_key,
        chain_depth,
        root_caller_type,
        coalesce(root_caller, root_web_identity_provider) AS root_caller
    FROM sessions
),

scoped_sessions AS (
    SELECT *
    FROM all_sessions
    WHERE ($since IS NULL OR issued_at >= $since)
        AND ($until IS NULL OR issued_at < $until)
        AND ($account IS NULL OR role_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (role_arn, caller, caller_iam_arn, root_caller, source_identity)
        )
),

key_events AS (
    SELECT access_key_id, event_time, error_code, actor_kind, agent_name
    FROM events_classified
    WHERE access_key_id IN (SELECT issued_key FROM scoped_sessions)
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
),

own_tag_text AS (
    SELECT issued_key, string_agg(DISTINCT tag_text, ',' ORDER BY tag_text) AS session_tags
    FROM (
        SELECT s.issued_key, t.tag.key || '=' || t.tag.value AS tag_text
        FROM scoped_sessions AS s
        CROSS JOIN unnest(s.own_tags) AS t (tag)
    ) AS tags
    GROUP BY issued_key
),

effective_tag_text AS (
    SELECT issued_key, string_agg(DISTINCT tag_text, ',' ORDER BY tag_text) AS effective_tags
    FROM (
        SELECT s.issued_key, t.tag.key || '=' || t.tag.value AS tag_text
        FROM scoped_sessions AS s
        CROSS JOIN unnest(map_entries(s.effective_tags)) AS t (tag)
    ) AS tags
    GROUP BY issued_key
),

transitive_text AS (
    SELECT
        s.issued_key,
        string_agg(DISTINCT k.tag_key, ',' ORDER BY k.tag_key) AS transitive_tag_keys
    FROM scoped_sessions AS s
    CROSS JOIN unnest(s.transitive_tag_keys) AS k (tag_key)
    GROUP BY s.issued_key
),

usage AS (
    SELECT
        access_key_id AS issued_key,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        min(event_time) AS first_call,
        max(event_time) AS last_call,
        string_agg(DISTINCT actor_kind, ',' ORDER BY actor_kind) AS actor_kinds,
        string_agg(DISTINCT agent_name, ',' ORDER BY agent_name) AS agent_names
    FROM key_events
    GROUP BY access_key_id
),

final AS (
    SELECT
        s.root_key,
        s.root_caller_type,
        s.root_caller,
        r.role_arn AS root_role_arn,
        r.issued_at AS root_issued_at,
        s.chain_depth,
        s.issued_key,
        s.parent_key,
        s.issued_at,
        s.expires_at,
        s.issued_by_call,
        s.role_account_id,
        s.role_arn,
        s.session_name,
        s.caller_type,
        s.caller,
        s.source_identity,
        o.session_tags,
        e.effective_tags,
        x.transitive_tag_keys,
        coalesce(u.calls, 0) AS calls,
        coalesce(u.failed_calls, 0) AS failed_calls,
        u.first_call,
        u.last_call,
        u.actor_kinds,
        u.agent_names
    FROM scoped_sessions AS s
    LEFT JOIN all_sessions AS r ON r.issued_key = s.root_key
    LEFT JOIN own_tag_text AS o ON o.issued_key = s.issued_key
    LEFT JOIN effective_tag_text AS e ON e.issued_key = s.issued_key
    LEFT JOIN transitive_text AS x ON x.issued_key = s.issued_key
    LEFT JOIN usage AS u ON u.issued_key = s.issued_key
)

SELECT * FROM final
ORDER BY root_issued_at, root_key, chain_depth, issued_at, issued_key;
