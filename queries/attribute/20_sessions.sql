-- name: 20_sessions
-- description: The sessions table: one row per access key issued by STS (AssumeRole,
--   AssumeRoleWithSAML, AssumeRoleWithWebIdentity, GetSessionToken, GetFederationToken, and
--   AssumeRoot: a short-term root session in a member account, with no role), with
--   the role, session name, the issuing principal and its own key (the parent), session tags in
--   one normalised list (list form `tags`, map form `principalTags`, and
--   `incomingTransitiveTags`), transitive tag keys, the source identity, and issue/expiry times.
--   A cross-account AssumeRole logged in both accounts (same sharedEventID) is one session.
--   Chains are walked to their root (bounded depth, cycle-safe): transitive tags and the source
--   identity of ancestors reach every session below them. A chain longer than chain_max_depth
--   is cut there: chain_truncated says so, and root_key is then the furthest session reached,
--   not the real root. root_person names the person who started the chain, where its first
--   session was issued to one. A key that more than one STS call issued (masked, or a reused
--   example) is no session: session_key_conflicts lists it.
-- params: none (reads the tables attribution_settings and attribution_source_events)
-- grain: one row per issued access key
-- used_by: pipeline/attribute/classify.py; queries session_chains, unjoined_sessions
CREATE OR REPLACE TABLE session_events AS
SELECT
    nullif(response_access_key_id, '') AS issued_key,
    event_id,
    event_time,
    event_name,
    recipient_account_id,
    shared_event_id,
    coalesce(request_role_arn, response_federated_user_arn) AS role_arn,
    response_assumed_role_arn AS assumed_role_arn,
    coalesce(request_role_session_name, request_name) AS session_name,
    access_key_id AS parent_key,
    principal_type AS caller_type,
    coalesce(principal_arn, invoked_by) AS caller,
    invoked_by AS caller_invoked_by,
    iam_principal_arn AS caller_iam_arn,
    -- The identity provider of the caller: a web-identity or SAML user's own, or the web
    -- identity a role session came from (webIdFederationData), which reaches the sessions it
    -- opens also where its own issuing event is not in the logs.
    coalesce(identity_provider, web_id_provider) AS web_identity_provider,
    -- A SAML user's name, the signed-in user a console request on a role is made by (the
    -- console names a switched-into role's session after that user), and the Identity Center
    -- user behind the caller: the person of a chain that starts there (root_person).
    CASE
        WHEN principal_type = 'SAMLUser' THEN user_name
        WHEN principal_type = 'AssumedRole' AND session_credential_from_console
            THEN nullif(split_part(principal_arn, '/', 3), '')
    END AS caller_user_name,
    on_behalf_of_user_id AS caller_on_behalf_of_user_id,
    -- The caller is an EC2 instance's role session (facts doc s.3: ec2RoleDelivery, or a
    -- session named after the instance id): where the caller's own issuing event is not in the
    -- logs, the chain it opens is still a workload's, as when it is (root_caller_type
    -- AWSService).
    CASE WHEN principal_type = 'AssumedRole' THEN coalesce(
        'ec2RoleDelivery=' || ec2_role_delivery,
        CASE WHEN regexp_matches(split_part(principal_arn, '/', 3), '^i-[0-9a-f]{8,17}$')
            THEN 'session name ' || split_part(principal_arn, '/', 3) || ' is an instance id'
        END
    ) END AS caller_instance_mark,
    -- sourceIdentity persists through a chain: the caller's own reaches the session it opens,
    -- also where the request does not repeat it.
    coalesce(request_source_identity, response_source_identity, source_identity) AS source_identity,
    -- The session's own tags, one sorted list without repeats per issuing event: the list form
    -- (`tags`), the map form (`principalTags`) and the tags a chain carried into this account
    -- (`incomingTransitiveTags`); and its transitive tag keys. Per event, not unnested and
    -- grouped by key: a key issued once (all but cross-account copies) then needs no grouping
    -- (at 10M events, grouping the tags by key and joining the lists back took ~2.8 of
    -- session_nodes' 7.6 CPU-seconds).
    CASE WHEN coalesce(request_tags, request_principal_tags, request_incoming_transitive_tags) IS NULL
        THEN []
    ELSE list_sort(list_distinct(list_filter(
        list_concat(
            list_transform(
                coalesce(json_transform(request_tags, '[{"key":"VARCHAR","value":"VARCHAR"}]'), []),
                lambda t: {'k': t.key, 'o': 'tags', 'v': t.value}
            ),
            list_transform(
                coalesce(map_entries(json_transform(request_principal_tags, '"MAP(VARCHAR, VARCHAR)"')), []),
                lambda m: {'k': m.key, 'o': 'principalTags', 'v': m.value}
            ),
            list_transform(
                coalesce(
                    map_entries(json_transform(request_incoming_transitive_tags, '"MAP(VARCHAR, VARCHAR)"')),
                    []
                ),
                lambda m: {'k': m.key, 'o': 'incomingTransitiveTags', 'v': m.value}
            )
        ),
        lambda t: t.k IS NOT NULL
    ))) END AS own_tag_list,
    CASE WHEN request_transitive_tag_keys IS NULL THEN []::VARCHAR[]
        ELSE list_sort(list_distinct(coalesce(json_transform(request_transitive_tag_keys, '["VARCHAR"]'), [])))
    END AS transitive_key_list,
    response_expiration AS expiration_text
FROM attribution_source_events
WHERE event_source = 'sts.amazonaws.com'
    AND event_name IN (
        'AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity',
        'GetSessionToken', 'GetFederationToken', 'AssumeRoot'
    )
    AND error_code IS NULL
    AND nullif(response_access_key_id, '') IS NOT NULL;

CREATE OR REPLACE TABLE session_key_conflicts AS
-- Access keys that more than one STS call issued: an issued key is unique to its call (a
-- cross-account AssumeRole logged in both accounts is one call), so these
-- are keys an export masked or an example reused (AKIAIOSFODNN7EXAMPLE in AWS documentation).
-- Merged into one session they would give every call carrying the key the tags, role and chain
-- of all those calls at once (one agent tag would make them all an agent's): such a key is no
-- session, its calls join none, and the rebuild says how many there were.
-- (The keys issued more than once first: a distinct count over every key cost more.)
WITH repeated AS (
    SELECT issued_key FROM session_events GROUP BY issued_key HAVING count(*) > 1
)

SELECT
    issued_key,
    list(DISTINCT event_id ORDER BY event_id) AS issuing_event_ids
FROM session_events
WHERE issued_key IN (SELECT issued_key FROM repeated)
GROUP BY issued_key
-- Copies of one call are logged in different accounts, show one sharedEventID where they show
-- one at all (records before eventVersion 1.03 show none, and an export may drop it from one
-- copy: a missing one tells nothing), and show alike what the call issued (the role session
-- and its expiry). Two issuing events of one key in one account, two sharedEventIDs, or two
-- different sessions or expiries are two calls.
HAVING count(DISTINCT event_id) > count(DISTINCT coalesce(recipient_account_id, event_id))
    OR count(DISTINCT shared_event_id) > 1
    OR count(DISTINCT lower(role_arn)) > 1
    OR count(DISTINCT assumed_role_arn) > 1
    OR count(DISTINCT expiration_text) > 1;

DELETE FROM session_events WHERE issued_key IN (SELECT issued_key FROM session_key_conflicts);

CREATE OR REPLACE TABLE session_tags AS
SELECT DISTINCT e.issued_key, t.k AS tag_key, t.v AS tag_value, t.o AS origin
FROM session_events AS e, unnest(e.own_tag_list) AS u(t);

CREATE OR REPLACE TABLE session_nodes AS
WITH repeated AS (
    -- Only a cross-account AssumeRole logged in both accounts has several issuing events.
    SELECT issued_key FROM session_events GROUP BY issued_key HAVING count(*) > 1
),

merged AS (
    -- One session per issued key. A key issued once is its event's row: grouping a million
    -- such keys with a dozen aggregates of text cost DuckDB ~5 s at 10M events.
    SELECT
        issued_key,
        event_id AS issuing_event_id,
        event_time AS issued_at,
        event_name AS issued_by_call,
        role_arn,
        assumed_role_arn,
        session_name,
        parent_key,
        caller_type,
        caller,
        caller_invoked_by,
        caller_iam_arn,
        web_identity_provider,
        caller_user_name,
        caller_on_behalf_of_user_id,
        caller_instance_mark,
        source_identity,
        -- "Sep 14, 2020, 7:01:26 AM", in UTC; ISO 8601 where an exporter rewrote it.
        coalesce(
            timezone('UTC', try_strptime(expiration_text, '%b %d, %Y, %I:%M:%S %p')),
            try_cast(expiration_text AS TIMESTAMPTZ)
        ) AS expires_at,
        own_tag_list,
        transitive_key_list
    FROM session_events
    WHERE issued_key NOT IN (SELECT issued_key FROM repeated)
    UNION ALL
    -- Of two copies of a cross-account AssumeRole, prefer the one logged in the role's own
    -- account as the issuing event: it is the one that shows incomingTransitiveTags. The
    -- caller is the one the other copy shows: the copy in the role's account names the
    -- caller's account only (userIdentity.type AWSAccount). Each value is taken from the
    -- copy that shows the caller where it has one, then by eventID: never an arbitrary copy,
    -- so that a second copy never changes (or removes) what the first one said.
    SELECT
        issued_key,
        arg_min(event_id, (
            CASE WHEN contains(role_arn, '::' || recipient_account_id || ':') THEN 0 ELSE 1 END,
            event_id
        )),
        min(event_time),
        arg_min(event_name, (caller_hidden, event_id)),
        arg_min(role_arn, (caller_hidden, event_id)),
        arg_min(assumed_role_arn, (caller_hidden, event_id)),
        arg_min(session_name, (caller_hidden, event_id)),
        arg_min(parent_key, (caller_hidden, event_id)),
        arg_min(caller_type, (caller_hidden, event_id)),
        arg_min(caller, (caller_hidden, event_id)),
        arg_min(caller_invoked_by, (caller_hidden, event_id)),
        arg_min(caller_iam_arn, (caller_hidden, event_id)),
        arg_min(web_identity_provider, (caller_hidden, event_id)),
        arg_min(caller_user_name, (caller_hidden, event_id)),
        arg_min(caller_on_behalf_of_user_id, (caller_hidden, event_id)),
        arg_min(caller_instance_mark, (caller_hidden, event_id)),
        arg_min(source_identity, (caller_hidden, event_id)),
        max(coalesce(
            timezone('UTC', try_strptime(expiration_text, '%b %d, %Y, %I:%M:%S %p')),
            try_cast(expiration_text AS TIMESTAMPTZ)
        )),
        -- Each copy's tags and transitive keys: the union of what either shows.
        list_sort(list_distinct(flatten(list(own_tag_list)))),
        list_sort(list_distinct(flatten(list(transitive_key_list))))
    FROM (
        SELECT
            *,
            coalesce(caller_type, '') IN ('AWSAccount', 'Unknown', '') AS caller_hidden
        FROM session_events
    ) AS copies
    WHERE issued_key IN (SELECT issued_key FROM repeated)
    GROUP BY issued_key
),

repeated_keys AS (
    -- The issuing events of the repeated keys. Listed for those keys alone, so that no
    -- aggregate over all keys is an ordered list, which DuckDB cannot spill to disk (1M
    -- sessions ran out of memory).
    SELECT issued_key, list(DISTINCT event_id ORDER BY event_id) AS issuing_event_ids
    FROM session_events
    WHERE issued_key IN (SELECT issued_key FROM repeated)
    GROUP BY issued_key
)

SELECT
    m.* EXCLUDE (issuing_event_id, assumed_role_arn, own_tag_list, transitive_key_list),
    m.issuing_event_id,
    coalesce(r.issuing_event_ids, [m.issuing_event_id]) AS issuing_event_ids,
    -- NULL, not '', where role_arn is no role (a GetFederationToken federated-user ARN).
    -- The name after the role's path (':role/PATH/NAME'): split_part, not a regular expression,
    -- which took ~0.7 CPU-s per million sessions.
    -- The role's own spelling, which the session's calls show in their sessionIssuer, from
    -- the issued session's ARN (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION): roleArn is
    -- the caller's spelling, and role names are unique whatever their letter case (IAM API
    -- reference, CreateRole), so a roleArn typed in another case would join neither the role's
    -- tags nor the session's calls.
    CASE WHEN contains(m.role_arn, ':role/')
        THEN coalesce(
            nullif(split_part(m.assumed_role_arn, '/', 2), ''),
            nullif(split_part(m.role_arn, '/', -1), '')
        )
    END AS role_name,
    nullif(regexp_extract(m.role_arn, '^arn:[^:]+:iam::(\d{12}):', 1), '') AS role_account_id,
    CASE WHEN len(m.own_tag_list) > 0
        THEN list_transform(m.own_tag_list, lambda t: {'key': t.k, 'value': t.v, 'origin': t.o})
    END AS own_tags,
    CASE WHEN len(m.transitive_key_list) > 0 THEN m.transitive_key_list END AS transitive_tag_keys
FROM merged AS m
LEFT JOIN repeated_keys AS r ON r.issued_key = m.issued_key;

-- Read by session_tags and session_nodes only; dropped to leave memory to what follows.
DROP TABLE session_events;

CREATE OR REPLACE TABLE session_chain AS
WITH RECURSIVE walk (issued_key, ancestor_key, depth, acted_at, path) AS (
    SELECT issued_key, issued_key, 0, NULL::TIMESTAMPTZ, [issued_key]
    FROM session_nodes
    UNION ALL
    -- acted_at: when the ancestor acted in this chain, by assuming the session below it.
    SELECT w.issued_key, p.issued_key, w.depth + 1, c.issued_at, list_append(w.path, p.issued_key)
    FROM walk AS w
    JOIN session_nodes AS c ON c.issued_key = w.ancestor_key
    JOIN session_nodes AS p ON p.issued_key = c.parent_key
    WHERE w.depth < (SELECT chain_max_depth FROM attribution_settings)
        AND NOT list_contains(w.path, p.issued_key)
)

-- The path only guards the walk against cycles; the table keeps the pairs, and marks the pair
-- where the depth bound cut a chain that goes on (the ancestor's parent is a session the walk
-- did not reach): the root found there is not the chain's real root.
SELECT
    w.issued_key,
    w.ancestor_key,
    w.depth,
    w.acted_at,
    p.issued_key IS NOT NULL AS cut
FROM walk AS w
LEFT JOIN session_nodes AS c ON c.issued_key = w.ancestor_key
LEFT JOIN session_nodes AS p
    ON p.issued_key = c.parent_key
    AND w.depth >= (SELECT chain_max_depth FROM attribution_settings)
    AND NOT list_contains(w.path, p.issued_key);

CREATE OR REPLACE TABLE session_effective_tags AS
-- Every tag in force on each session: its own and those inherited through its chain.
WITH inherited AS (
    -- Tags an ancestor marked transitive reach every session below it, and so do the tags an
    -- ancestor received as incomingTransitiveTags: they stay transitive for the rest of the
    -- chain, also when the session that first set them was issued before the logs begin.
    SELECT w.issued_key, t.tag_key, t.tag_value, w.depth
    FROM session_chain AS w
    JOIN session_nodes AS a ON a.issued_key = w.ancestor_key
    JOIN session_tags AS t ON t.issued_key = w.ancestor_key
    WHERE w.depth > 0
        -- Tag keys are case-insensitive (a transitive key may name its tag in another case).
        AND (
            t.origin = 'incomingTransitiveTags'
            OR list_contains(list_transform(a.transitive_tag_keys, lambda k: lower(k)), lower(t.tag_key))
        )
),

effective AS (
    -- A session's own tags first, then the nearest ancestor's (AWS refuses conflicting ones,
    -- so this only makes odd data deterministic).
    SELECT issued_key, tag_key, arg_min(tag_value, (depth, tag_value)) AS tag_value
    FROM (
        SELECT issued_key, tag_key, tag_value, 0 AS depth FROM session_tags
        UNION ALL
        SELECT issued_key, tag_key, tag_value, depth FROM inherited
    )
    GROUP BY issued_key, tag_key
)

SELECT * FROM effective;

-- What `sessions` takes from each key's chain walk: its root (and the root's caller), its
-- depth, and the root-most source identity (sourceIdentity persists through a chain: it names
-- who started it). A table of its own, as are the effective tag maps below, rather than CTEs
-- of `sessions`: as one statement, its aggregates and joins of 1M sessions (10M events) held
-- more than 550MB at once and failed with DuckDB out of memory; as three, 400MB suffices.
CREATE OR REPLACE TABLE session_chain_summary AS
SELECT
    w.issued_key,
    arg_max(w.ancestor_key, w.depth) AS root_key,
    max(w.depth) AS chain_depth,
    bool_or(w.cut) AS chain_truncated,
    arg_max(a.source_identity, w.depth) FILTER (WHERE a.source_identity IS NOT NULL)
        AS chain_source_identity
FROM session_chain AS w
LEFT JOIN session_nodes AS a ON a.issued_key = w.ancestor_key
GROUP BY w.issued_key;

CREATE OR REPLACE TABLE session_effective_maps AS
SELECT
    issued_key,
    map_from_entries(list_sort(list({'key': tag_key, 'value': tag_value}))) AS effective_tags
FROM session_effective_tags
GROUP BY issued_key;

CREATE OR REPLACE TABLE sessions AS
SELECT
    n.issued_key,
    n.issuing_event_id,
    n.issuing_event_ids,
    n.issued_by_call,
    n.issued_at,
    n.expires_at,
    n.role_arn,
    n.role_account_id,
    n.role_name,
    n.session_name,
    n.parent_key,
    n.caller_type,
    n.caller,
    n.caller_invoked_by,
    n.caller_iam_arn,
    n.web_identity_provider,
    coalesce(n.source_identity, r.chain_source_identity) AS source_identity,
    n.own_tags,
    n.transitive_tag_keys,
    e.effective_tags,
    r.root_key,
    r.chain_depth,
    r.chain_truncated,
    root.role_name AS root_role_name,
    root.caller_type AS root_caller_type,
    root.caller AS root_caller,
    root.caller_invoked_by AS root_caller_invoked_by,
    root.web_identity_provider AS root_web_identity_provider,
    -- What shows that the chain's root was opened by an EC2 instance's role session.
    root.caller_instance_mark AS root_caller_instance_mark,
    -- The person who started the chain, where its first session was issued to one: an IAM
    -- user (the user name), a session of an Identity Center role (the session name is the
    -- user), the root user, a SAML user (its user name), an Identity Center user, the signed-in
    -- user of a console request on a role. Not for a
    -- GetFederationToken session: the IAM user that called it is a broker minting credentials
    -- for the federated user the session is named after, not the person behind it. Chains a
    -- service, a workload or a role session of no person started have none.
    CASE
        WHEN root.issued_by_call = 'GetFederationToken' THEN NULL
        WHEN root.caller_on_behalf_of_user_id IS NOT NULL THEN root.caller_on_behalf_of_user_id
        WHEN root.caller_type = 'IAMUser' THEN regexp_extract(root.caller, '[^/]+$')
        WHEN root.caller_type = 'AssumedRole'
            AND contains(root.caller, ':assumed-role/AWSReservedSSO_')
            THEN split_part(root.caller, '/', 3)
        WHEN root.caller_type = 'Root' THEN 'root'
        -- userIdentity.userName of AssumeRoleWithSAML: for an Identity Center role, the user
        -- its sessions are named after.
        WHEN root.caller_type = 'SAMLUser' THEN root.caller_user_name
        -- A role session in the console (sessionCredentialFromConsole): the signed-in user it
        -- is named after.
        WHEN root.caller_type = 'AssumedRole' THEN root.caller_user_name
    END AS root_person
FROM session_nodes AS n
LEFT JOIN session_chain_summary AS r ON r.issued_key = n.issued_key
LEFT JOIN session_nodes AS root ON root.issued_key = r.root_key
LEFT JOIN session_effective_maps AS e ON e.issued_key = n.issued_key;
