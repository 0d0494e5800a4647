-- name: session_chains
-- description: Who started what? STS sessions (one per access key issued by AssumeRole,
--   AssumeRoleWithSAML, AssumeRoleWithWebIdentity, GetSessionToken, GetFederationToken or
--   AssumeRoot, whose short-term root session has no role) with the chain above each walked to its root, summarised per chain pattern: which principal or AWS
--   service opened the first session of the chain, which role each link assumed, at what depth,
--   with which effective tags (own tags plus the transitive tags inherited through the chain) and
--   which source identity (the person who started the chain). Sessions are in scope when issued in
--   the period; the account parameter matches the assumed role's account; principal matches the
--   role ARN (as the role spells it, or as the caller typed it), the caller (ARN or service), the
--   root caller or the source identity. Columns:
--   root_caller_type and root_caller (who opened the first session of the chain: a principal ARN,
--   an AWS service, or the identity provider of a web-identity call), root_role_arn, chain_depth
--   (0 for a root), role_arn (the role's name as the issued session's ARN spells it, as the calls
--   and the other queries name the role, whatever letter case the caller's roleArn used),
--   role_account_id, issued_by_call, source_identity (own or inherited),
--   effective_tags (key=value, comma-separated), transitive_tag_keys (comma-separated), sessions
--   (issued keys), first_issued_at and last_issued_at (UTC),
--   first_issued_key and last_issued_key (the keys issued first and last; ties by key), calls,
--   failed_calls, first_call and last_call (events made with those keys in the period),
--   actor_kinds and agent_names (of those calls; comma-separated).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per chain pattern (root caller and role, depth, role, call, source, tags)
-- used_by: analysts; quarterly report (later)
WITH all_sessions AS (
    SELECT
        issued_key,
        issued_at,
        issued_by_call,
        role_account_id,
        -- The role as it spells itself (sessions.role_name, from the ARN of the issued session),
        -- as the sessionIssuer of the calls and the other queries name it: roleArn is as the
        -- caller typed it, and role names are unique whatever their letter case, so a roleArn
        -- typed in another case names the same role.
        CASE WHEN role_name IS NOT NULL
            THEN left(role_arn, length(role_arn) - length(split_part(role_arn, '/', -1))) || role_name
            ELSE role_arn
        END AS role_arn,
        role_arn AS requested_role_arn,
        coalesce(caller, web_identity_provider) AS caller,
        caller_iam_arn,
        source_identity,
        -- Sorted entries, NULL when none: the same tags group together whatever their order.
        CASE
            WHEN cardinality(effective_tags) > 0 THEN list_sort(map_entries(effective_tags))
        END AS effective_tags,
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
            OR $principal IN (
                role_arn, requested_role_arn, caller, caller_iam_arn, root_caller, source_identity
            )
        )
),

key_usage AS (
    SELECT
        access_key_id AS issued_key,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        min(event_time) AS first_call,
        max(event_time) AS last_call,
        list(DISTINCT actor_kind) AS actor_kinds,
        list(DISTINCT agent_name) AS agent_names
    FROM events_classified
    WHERE access_key_id IN (SELECT issued_key FROM scoped_sessions)
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
    GROUP BY access_key_id
),

chained_roots AS (
    -- Only chains longer than one link need their root looked up (a root is its own root).
    SELECT issued_key, role_arn
    FROM all_sessions
    WHERE issued_key IN (SELECT root_key FROM scoped_sessions WHERE chain_depth > 0)
),

linked AS (
    SELECT
        s.*,
        CASE WHEN s.chain_depth = 0 THEN s.role_arn ELSE r.role_arn END AS root_role_arn
    FROM scoped_sessions AS s
    LEFT JOIN chained_roots AS r ON r.issued_key = s.root_key
),

patterns AS (
    SELECT
        root_caller_type,
        root_caller,
        root_role_arn,
        chain_depth,
        role_arn,
        issued_by_call,
        source_identity,
        effective_tags,
        max(role_account_id) AS role_account_id,
        count(*) AS sessions,
        min(issued_at) AS first_issued_at,
        max(issued_at) AS last_issued_at,
        min({'at': issued_at, 'key': issued_key}).key AS first_issued_key,
        max({'at': issued_at, 'key': issued_key}).key AS last_issued_key,
        list(transitive_tag_keys) FILTER (WHERE len(transitive_tag_keys) > 0) AS transitive_keys
    FROM linked
    GROUP BY ALL
),

pattern_usage AS (
    SELECT
        s.root_caller_type,
        s.root_caller,
        s.root_role_arn,
        s.chain_depth,
        s.role_arn,
        s.issued_by_call,
        s.source_identity,
        s.effective_tags,
        sum(u.calls) AS calls,
        sum(u.failed_calls) AS failed_calls,
        min(u.first_call) AS first_call,
        max(u.last_call) AS last_call,
        list_sort(list_distinct(flatten(list(u.actor_kinds)))) AS actor_kinds,
        list_sort(list_distinct(flatten(list(u.agent_names)))) AS agent_names
    FROM key_usage AS u
    JOIN linked AS s ON s.issued_key = u.issued_key
    GROUP BY ALL
),

final AS (
    SELECT
        p.root_caller_type,
        p.root_caller,
        p.root_role_arn,
        p.chain_depth,
        p.role_arn,
        p.role_account_id,
        p.issued_by_call,
        p.source_identity,
        (
            SELECT string_agg(x.tag_text, ',' ORDER BY x.tag_text)
            FROM (
                SELECT t.key || '=' || t.value AS tag_text FROM unnest(p.effective_tags) AS u (t)
            ) AS x
        ) AS effective_tags,
        nullif(array_to_string(list_sort(list_distinct(flatten(p.transitive_keys))), ','), '')
            AS transitive_tag_keys,
        p.sessions,
        p.first_issued_at,
        p.last_issued_at,
        p.first_issued_key,
        p.last_issued_key,
        coalesce(u.calls, 0)::BIGINT AS calls,
        coalesce(u.failed_calls, 0)::BIGINT AS failed_calls,
        u.first_call,
        u.last_call,
        nullif(array_to_string(u.actor_kinds, ','), '') AS actor_kinds,
        nullif(array_to_string(u.agent_names, ','), '') AS agent_names
    FROM patterns AS p
    LEFT JOIN pattern_usage AS u
        ON u.root_caller_type IS NOT DISTINCT FROM p.root_caller_type
        AND u.root_caller IS NOT DISTINCT FROM p.root_caller
        AND u.root_role_arn IS NOT DISTINCT FROM p.root_role_arn
        AND u.chain_depth IS NOT DISTINCT FROM p.chain_depth
        AND u.role_arn IS NOT DISTINCT FROM p.role_arn
        AND u.issued_by_call IS NOT DISTINCT FROM p.issued_by_call
        AND u.source_identity IS NOT DISTINCT FROM p.source_identity
        AND u.effective_tags IS NOT DISTINCT FROM p.effective_tags
)

SELECT * FROM final
ORDER BY first_issued_at, root_caller, chain_depth, role_arn, first_issued_key;
