-- name: 50_classification
-- description: Every event with who acted and through which path. Rules, first match wins
--   (README, "Rules"; attribution_rules numbers them in that order): managed MCP; agent
--   sessions (session tags, source identity); chains an agent started, with an MCP mark; a key
--   that joins no issuing event whose role and session name the logs show only in agent
--   sessions, with an MCP mark; the awslabs MCP user agent; a console request on an agent role
--   (a person in the agent's role); agent roles on the direct path (the MCP bypass); chains an agent started, on the direct path; the same role-and-name fallback,
--   on the direct path; AWS services; workloads (last: the role-and-name fallback for sessions
--   an AWS service obtained); unknown identities; people (console, then direct). A call an AWS
--   service made with the credentials of the agent, workload or person a rule found (invokedBy
--   a service principal) keeps that actor on the service path (rules 30 to 32, which replace
--   that verdict and name it in their evidence). Each row says which rule
--   decided (classified_by), the field values that decided (evidence: composed by the
--   events_classified view from the event and evidence_detail), its confidence and the
--   rules_version in force. Everything that is not per event is computed first, per
--   distinct key, into small tables (session marks, chain marks, configured-pattern matches per
--   distinct value, MCP links, and the role agent intervals: role_agent_intervals, which
--   10_role_agent_timeline.sql builds and every generation publishes, so that the named queries
--   on roles read the very intervals the rules joined), so the pass over the events is one
--   streaming scan with equality hash joins against small tables: no correlated subquery, no
--   as-of join.
-- params: none (reads the tables built by 10_* to 40_*, attribution_settings,
--   attribution_patterns, and attribution_events: the events with each row's file_index and
--   file_row_number, which classify.py uses to write the verdicts next to the event columns)
-- grain: one row per event
-- used_by: pipeline/attribute/classify.py, which materialises it as events_classified
CREATE OR REPLACE TABLE classification_sessions AS
-- One row per issued key: what the rules need from the session and its chain.
WITH marks AS (
    SELECT
        t.issued_key,
        bool_or(
            lower(t.tag_key) = lower(c.agent_tag_key) AND lower(t.tag_value) = lower(c.agent_tag_value)
        ) AS agent_tag,
        -- An empty value names no MCP server (nor an agent ''): the session is no MCP server's.
        max(CASE WHEN lower(t.tag_key) = lower(c.mcp_server_tag_key) THEN nullif(t.tag_value, '') END)
            AS mcp_server_tag,
        array_to_string(list_sort(list(t.tag_key || '=' || t.tag_value)), ', ') AS tag_text
    FROM session_effective_tags AS t
    CROSS JOIN attribution_settings AS c
    GROUP BY t.issued_key
),

unlogged_parents AS (
    -- The session a chain's root was opened with, where that session's own issuing event is
    -- not in the logs (issued before they begin, or in another trail, such as an Identity
    -- Center one): the chain's first session, and the session_root of the calls made with its
    -- key directly too, so one chain has one session_root. Only a session's key (a role or
    -- federated user's): an IAM user's or the root user's access key is no session, and a
    -- GetFederationToken broker's key would put many people's sessions under one root. Nor a
    -- console request's key: the console mints one per request, which no other call carries
    -- (the console session is named by its principal and creation date instead). Not past a
    -- cut: a truncated chain's root has a parent in the logs. Found for the roots alone, then
    -- joined by root: joining every session to its root's issuing event held ~600MB at 10M
    -- events (1M sessions).
    SELECT r.issued_key AS root_key, r.parent_key
    FROM sessions AS r
    -- The STS call that issued the root, to tell a console request.
    LEFT JOIN attribution_source_events AS opened ON opened.event_id = r.issuing_event_id
    LEFT JOIN user_agent_clients AS opened_ua ON opened_ua.user_agent = opened.user_agent
    WHERE r.root_key = r.issued_key
        AND NOT r.chain_truncated
        AND r.caller_type IN ('AssumedRole', 'FederatedUser')
        AND r.parent_key NOT IN (SELECT issued_key FROM sessions)
        -- A key several STS calls issued (20_sessions) names no one session.
        AND r.parent_key NOT IN (SELECT issued_key FROM session_key_conflicts)
        AND NOT coalesce(
            opened.session_credential_from_console OR opened.event_type = 'AwsConsoleSignIn'
                OR opened_ua.client = 'console',
            false
        )
)

-- The per-event pass holds this table in one hash table (1M sessions at 10M events): the root's
-- key and role are NULL where the session is its own root (most are), and the issuing call an
-- ENUM, so that it stays within the pass's memory. Past it, DuckDB's join spills and returns
-- the events in an order that held every file open at once (classify.py, HELD_VERDICT_ROWS).
SELECT
    s.issued_key,
    nullif(s.root_key, s.issued_key) AS root_key,
    u.parent_key AS root_parent_key,
    CASE WHEN s.root_key <> s.issued_key THEN s.root_role_name END AS root_role_name,
    s.chain_truncated,
    s.role_name AS session_role_name,
    -- The person who started the chain (20_sessions.sql says who counts).
    s.root_person,
    s.root_web_identity_provider,
    -- How a workload opened the chain, for rule 18 and its evidence: an AWS service issued the
    -- root's credentials, or an EC2 instance's role session assumed the root (its own issuing
    -- event not in the logs; when it is, that session is the root and the service issued it).
    CASE
        WHEN s.root_caller_type = 'AWSService'
            THEN 'whose credentials ' || coalesce(s.root_caller_invoked_by, 'an AWS service') || ' issued'
        WHEN s.root_caller_instance_mark IS NOT NULL
            THEN 'which EC2 instance session ' || s.root_caller || ' assumed ('
                || s.root_caller_instance_mark || ')'
    END AS root_workload_text,
    CAST(s.issued_by_call AS ENUM (
        'AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity', 'GetSessionToken',
        'GetFederationToken', 'AssumeRoot'
    )) AS issued_by_call,
    s.source_identity AS session_source_identity,
    coalesce(m.agent_tag, false) AS agent_tag,
    m.mcp_server_tag,
    m.tag_text
FROM sessions AS s
LEFT JOIN unlogged_parents AS u ON u.root_key = s.root_key
LEFT JOIN marks AS m ON m.issued_key = s.issued_key;

CREATE OR REPLACE TABLE classification_session_names AS
-- The fallback for keys that join no issuing event (issued before the logs begin, or an empty
-- accessKeyId): the role and session name (facts doc s.3). An answer is taken from it only
-- where every session of that role and name that the logs do show agrees, and with medium
-- confidence: all were obtained by an AWS service (a Lambda function's name, an ECS task's
-- id), so the unjoined one is a workload's too; or all carry the agent mark (the agent tag or
-- an MCP server tag), as when a self-managed MCP server re-assumes its role under one session
-- name, so the unjoined one is the agent's.
SELECT
    s.role_account_id,
    s.role_name,
    s.session_name,
    count(*) AS sessions,
    bool_and(c.root_workload_text IS NOT NULL) AS service_issued,
    bool_and(c.agent_tag OR c.mcp_server_tag IS NOT NULL) AS agent_marked,
    bool_and(c.mcp_server_tag IS NOT NULL) AS mcp_marked,
    count(c.mcp_server_tag) AS mcp_marked_sessions,
    arg_max(c.mcp_server_tag, (s.issued_at, s.issued_key)) AS mcp_server_tag,
    arg_max(c.tag_text, (s.issued_at, s.issued_key)) AS tag_text,
    arg_max(c.root_workload_text, (s.issued_at, s.issued_key)) AS root_workload_text,
    arg_max(s.issued_key, (s.issued_at, s.issued_key)) AS example_key,
    -- The example of the direct-path verdict (agent_session.direct_by_name): the latest
    -- session without an MCP server tag, the kind that decided it, never one that has one.
    arg_max(c.tag_text, (s.issued_at, s.issued_key)) FILTER (WHERE c.mcp_server_tag IS NULL)
        AS direct_tag_text,
    arg_max(s.issued_key, (s.issued_at, s.issued_key)) FILTER (WHERE c.mcp_server_tag IS NULL)
        AS direct_example_key
FROM sessions AS s
JOIN classification_sessions AS c ON c.issued_key = s.issued_key
WHERE s.role_account_id IS NOT NULL AND s.role_name IS NOT NULL AND s.session_name IS NOT NULL
GROUP BY s.role_account_id, s.role_name, s.session_name
HAVING bool_and(c.root_workload_text IS NOT NULL)
    OR bool_and(c.agent_tag OR c.mcp_server_tag IS NOT NULL);

CREATE OR REPLACE TABLE classification_created_agent_roles AS
-- The sessions whose role was an agent role when they were issued (their issuing event's time,
-- the very creation their calls' sessionContext creationDate names), with the observation that
-- says so: for a call whose record shows no creationDate (the attribute is absent, or not a
-- time), so that a session's own calls read its role as the chain below it does (`hops`:
-- created_at is the ancestor's issued_at). Agent roles' sessions only: a small table.
SELECT s.issued_key, s.issued_at, i.observed_by
FROM sessions AS s
JOIN role_agent_intervals AS i
    ON i.account_id = s.role_account_id
    AND i.role_name = s.role_name
    AND s.issued_at >= i.valid_from
    AND s.issued_at < i.valid_to
WHERE i.is_agent;

CREATE OR REPLACE TABLE classification_identity_providers AS
-- userIdentity.identityProvider of the calls of web-identity and SAML principals (all of them
-- are source events), so the rules never read the wide user_identity column of every event.
SELECT event_id, identity_provider
FROM attribution_source_events
WHERE principal_type IN ('WebIdentityUser', 'SAMLUser') AND identity_provider IS NOT NULL;

CREATE OR REPLACE TABLE classification_pattern_matches AS
-- (kind, value) for every distinct value of the events that matches a configured pattern of
-- that kind: the rules join on equality instead of testing LIKE patterns row by row.
WITH distinct_values AS (
    SELECT invoked_by, session_issuer_name, arn_role_name, iam_user_name, source_identity,
        web_id_provider
    FROM attribution_distinct_values
),

candidates AS (
    SELECT 'mcp_principal' AS kind, invoked_by AS value FROM distinct_values
    UNION
    SELECT unnest(['agent_role', 'workload_role']), session_issuer_name FROM distinct_values
    UNION
    -- The role of a record without sessionIssuer, as its userIdentity.arn names it.
    SELECT unnest(['agent_role', 'workload_role']), arn_role_name FROM distinct_values
    UNION
    -- The roles of a chain's sessions, for the agent-role and workload-role tests of the chain
    -- rules, and the IAM users that opened chains.
    SELECT unnest(['agent_role', 'workload_role']), role_name FROM sessions
    UNION
    SELECT 'workload_user', regexp_extract(caller, '[^/]+$')
    FROM sessions
    WHERE caller_type = 'IAMUser' AND issued_by_call <> 'GetFederationToken'
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
    SELECT c.kind, c.value, p.pattern
    FROM candidates AS c
    JOIN attribution_patterns AS p ON p.kind = c.kind AND c.value LIKE p.pattern
    WHERE c.value IS NOT NULL
),

final AS (
    -- Rule 2: a source identity matching an MCP pattern is also an agent source identity.
    SELECT kind, value, pattern FROM matched
    UNION ALL
    SELECT 'agent_source_identity', value, pattern FROM matched WHERE kind = 'mcp_source_identity'
)

-- One row per (kind, value), so that a join matches an event once; the pattern is kept for
-- the evidence (the first by name where several match).
SELECT kind, value, min(pattern) AS pattern
FROM final
GROUP BY kind, value;

CREATE OR REPLACE TABLE classification_links AS
-- Managed-MCP links per key: downstream request ids, tool-call events, MCP grants (own event),
-- and sign-in sessions with their first MCP grant.
WITH downstream AS (
    -- One tool call per downstream request id, taken whole (its fields never from two rows):
    -- the earliest that lists it, then the smaller eventID, whatever order the files came in.
    SELECT
        'request' AS link,
        link_key,
        chosen.tool_event_id,
        chosen.tool_name,
        chosen.mcp_principal,
        NULL::VARCHAR AS resource,
        NULL::VARCHAR AS grant_owner,
        NULL::TIMESTAMPTZ AS granted_at
    FROM (
        SELECT
            downstream_request_id AS link_key,
            arg_min(
                {'tool_event_id': tool_event_id, 'tool_name': tool_name, 'mcp_principal': mcp_principal},
                (tool_event_time, tool_event_id)
            ) AS chosen
        FROM mcp_tool_calls
        WHERE downstream_request_id IS NOT NULL
        GROUP BY downstream_request_id
    ) AS requests
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
    WHERE sign_in_session_arn IS NOT NULL
    GROUP BY sign_in_session_arn
)

SELECT * FROM downstream
UNION ALL
SELECT * FROM tool_calls
UNION ALL
SELECT * FROM own_grants
UNION ALL
SELECT * FROM sign_in_sessions;

CREATE OR REPLACE TABLE classification_chain_marks AS
-- Sessions whose chain passes through an agent: a session above them (depth > 0 in the walk)
-- that carries the agent tag or an MCP server tag (its own or inherited, transitive or not), or
-- that is of an agent role when it acted (its agent tag in force when it assumed the session
-- below it, or a configured agent-role pattern). Calls carry no tags, and AWS passes on only
-- transitive session tags and never role tags; but the actor after a role hop is still the
-- agent (rules agent_chain.*). The nearest such session is the one the evidence names; the
-- nearest MCP server tag is the chain's MCP mark. Only sessions with such a chain have a row.
-- The chain's root was itself opened by someone: where that caller was a role session whose
-- own issuing event is not in the logs (issued before they begin), it is an ancestor too, one
-- hop above the root, known only by what the root's issuing event shows of it (its role and
-- its session's creationDate, not its session tags): an agent role when it assumed the root, or
-- when its session was created, is the agent's mark, as for any ancestor, so adding the
-- caller's issuing event to the logs never changes the verdict.
-- The same hops give the chain's workload mark (rule 22, workload.configured): a session above
-- that is of a role matching a configured workload-role pattern, or an IAM user matching a
-- configured workload-user pattern that opened the chain's root (as a CI job's user assuming
-- its deploy role). A session may have either mark or both; the agent mark decides first.
-- A session the managed MCP server obtained is an agent mark too, on the session itself and
-- below it (depth 0 and more): its issuing STS call was the server's (invokedBy an MCP
-- principal, a downstream request of a tool call, or a call of an MCP grant's sign-in session:
-- rule 1's marks), so the agent holds its credentials, and one it uses from a shell, without
-- any MCP mark, is the agent's bypass (facts doc s.4), whoever's session the server used. So
-- is a session a self-managed awslabs MCP server obtained (the issuing call's user agent names
-- it, rule 10's mark), with medium confidence: a user agent is the caller's to set.
WITH minted AS (
    SELECT
        k.issued_key,
        coalesce(p.value, d.mcp_principal, g.mcp_principal, ua.awslabs_mcp_server) AS mcp_principal,
        'issued by ' || e.event_name || ' ' || e.event_id || CASE
            WHEN p.value IS NOT NULL THEN ' with invokedBy=' || p.value
            WHEN d.tool_event_id IS NOT NULL
                THEN ', a downstream request of MCP tool call ' || d.tool_event_id
            WHEN g.tool_event_id IS NOT NULL
                THEN ', made with MCP grant ' || g.tool_event_id || ' (signInSessionArn '
                    || e.sign_in_session_arn || ')'
            ELSE ' whose userAgent names awslabs MCP server ' || ua.awslabs_mcp_server
        END AS minted_text,
        -- A self-managed awslabs MCP server's call (its user agent, facts doc s.4): medium
        -- evidence, as rule 10's (the credentials' later calls are at most medium).
        p.value IS NULL AND d.tool_event_id IS NULL AND g.tool_event_id IS NULL AS minted_by_user_agent
    FROM (
        SELECT issued_key, unnest(issuing_event_ids) AS event_id FROM sessions
    ) AS k
    JOIN attribution_source_events AS e ON e.event_id = k.event_id
    LEFT JOIN classification_pattern_matches AS p
        ON p.kind = 'mcp_principal' AND p.value = e.invoked_by
    LEFT JOIN classification_links AS d ON d.link = 'request' AND d.link_key = e.request_id
    LEFT JOIN user_agent_clients AS ua ON ua.user_agent = e.user_agent
    -- Not a console, CLI, SDK or IaC request of the sign-in session (as rule 5: the person's
    -- own, not made with the grant's token).
    LEFT JOIN classification_links AS g
        ON g.link = 'sign_in_session' AND g.link_key = e.sign_in_session_arn
        AND g.granted_at <= e.event_time
        AND NOT coalesce(
            e.session_credential_from_console OR e.event_type = 'AwsConsoleSignIn'
                OR ua.client IN ('console', 'cli', 'sdk', 'iac'),
            false
        )
    WHERE p.value IS NOT NULL OR d.link_key IS NOT NULL OR g.link_key IS NOT NULL
        OR ua.awslabs_mcp_server IS NOT NULL
    -- A key logged twice (a cross-account AssumeRole in both accounts): one mark, a managed
    -- server's before one a user agent shows.
    QUALIFY row_number() OVER (
        PARTITION BY k.issued_key
        ORDER BY p.value IS NULL AND d.tool_event_id IS NULL AND g.tool_event_id IS NULL, e.event_id
    ) = 1
),

console_issued AS (
    -- Sessions a console request opened (a switch-role in the browser): the session above
    -- acted through a person in the console, so its agent role or tags are no agent mark for
    -- the chain below (as rule 11 says of the console request itself).
    SELECT s.issued_key
    FROM sessions AS s
    WHERE s.issuing_event_id IN (
        SELECT e.event_id
        FROM attribution_source_events AS e
        LEFT JOIN user_agent_clients AS ua ON ua.user_agent = e.user_agent
        WHERE e.event_source = 'sts.amazonaws.com'
            AND coalesce(
                e.session_credential_from_console OR e.event_type = 'AwsConsoleSignIn'
                    OR ua.client = 'console',
                false
            )
    )
),

console_hops AS (
    -- The hops (a chain's session and the depth of an ancestor) whose ancestor acted by opening
    -- a console-issued session: the one just below it in that chain.
    SELECT w.issued_key, w.depth + 1 AS depth
    FROM session_chain AS w
    WHERE w.ancestor_key IN (SELECT issued_key FROM console_issued)
),

root_sessions AS (
    -- The roots opened by a role session whose own issuing event is not in the logs.
    SELECT r.issued_key, r.parent_key, r.issued_at, r.caller_iam_arn, r.caller, r.issuing_event_ids
    FROM session_nodes AS r
    WHERE r.caller_type = 'AssumedRole'
        AND r.parent_key IS NOT NULL
        AND r.parent_key NOT IN (SELECT issued_key FROM session_nodes)
        AND r.issued_key NOT IN (SELECT issued_key FROM console_issued)
),

root_caller_created AS (
    -- When the caller's session was created: the creationDate its call shows
    -- (sessionContext.attributes), also where the session's own issuing event is not in the
    -- logs, as the caller's own calls are read in `features`. Of two copies of a cross-account
    -- AssumeRole, the one that shows the caller.
    SELECT k.issued_key, max(e.session_creation_date) AS created_at
    FROM (SELECT issued_key, unnest(issuing_event_ids) AS event_id FROM root_sessions) AS k
    JOIN attribution_source_events AS e ON e.event_id = k.event_id
    GROUP BY k.issued_key
),

root_callers AS (
    SELECT
        r.issued_key AS root_key,
        r.parent_key AS caller_key,
        r.issued_at AS acted_at,
        cc.created_at,
        -- The caller's role: its sessionIssuer (caller_iam_arn), else, where the record of its
        -- call shows none, the role its userIdentity.arn names
        -- (arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION), as the call's own role is
        -- read in `features` (its key joins no session: its issuing event is not in the logs).
        coalesce(
            CASE WHEN contains(r.caller_iam_arn, ':role/')
                THEN nullif(split_part(r.caller_iam_arn, '/', -1), '')
            END,
            CASE WHEN r.caller_iam_arn IS NULL AND contains(r.caller, ':assumed-role/')
                THEN nullif(split_part(r.caller, '/', 2), '')
            END
        ) AS role_name,
        coalesce(
            nullif(regexp_extract(r.caller_iam_arn, '^arn:[^:]+:iam::(\d{12}):', 1), ''),
            CASE WHEN r.caller_iam_arn IS NULL AND contains(r.caller, ':assumed-role/')
                THEN nullif(split_part(r.caller, ':', 5), '')
            END
        ) AS role_account_id,
        CASE WHEN r.caller_iam_arn IS NULL AND contains(r.caller, ':assumed-role/')
            THEN '; its role from the userIdentity.arn of the call that opened the chain, which '
                || 'shows no sessionIssuer'
            ELSE ''
        END AS role_note
    FROM root_sessions AS r
    LEFT JOIN root_caller_created AS cc ON cc.issued_key = r.issued_key
),

hops AS (
    -- Every ancestor of a session: those the walk found (depth > 0), then the root's caller
    -- one hop above the root. Each is looked up once below: was its role an agent role when it
    -- acted.
    SELECT
        w.issued_key,
        w.depth,
        w.ancestor_key,
        coalesce(a.role_name, a.session_name) AS ancestor_name,
        a.role_account_id,
        a.role_name,
        w.acted_at,
        a.issued_at AS created_at,
        m.agent_tag OR m.mcp_server_tag IS NOT NULL AS agent_session,
        m.mcp_server_tag,
        m.tag_text,
        '' AS agent_role_note,
        NULL::VARCHAR AS user_name,
        NULL::VARCHAR AS minted_text,
        NULL::VARCHAR AS minted_by,
        false AS minted_by_user_agent
    FROM session_chain AS w
    JOIN sessions AS a ON a.issued_key = w.ancestor_key
    LEFT JOIN classification_sessions AS m ON m.issued_key = w.ancestor_key
    LEFT JOIN console_hops AS ch ON ch.issued_key = w.issued_key AND ch.depth = w.depth
    WHERE w.depth > 0 AND ch.issued_key IS NULL
    UNION ALL
    SELECT
        s.issued_key,
        s.chain_depth + 1 AS depth,
        c.caller_key AS ancestor_key,
        c.role_name AS ancestor_name,
        c.role_account_id,
        c.role_name,
        c.acted_at,
        c.created_at,
        false AS agent_session,
        NULL::VARCHAR AS mcp_server_tag,
        NULL::VARCHAR AS tag_text,
        '; its own issuing event is not in the logs' || c.role_note AS agent_role_note,
        NULL::VARCHAR AS user_name,
        NULL::VARCHAR AS minted_text,
        NULL::VARCHAR AS minted_by,
        false AS minted_by_user_agent
    FROM root_callers AS c
    JOIN sessions AS s ON s.root_key = c.root_key AND NOT s.chain_truncated
    UNION ALL
    -- The IAM user that opened the chain's root with its own keys: no role, so never an agent
    -- mark (an IAM user carries no session tags), but a workload's where its name says so.
    SELECT
        s.issued_key,
        s.chain_depth + 1 AS depth,
        r.parent_key AS ancestor_key,
        regexp_extract(r.caller, '[^/]+$') AS ancestor_name,
        NULL AS role_account_id,
        NULL AS role_name,
        r.issued_at AS acted_at,
        NULL::TIMESTAMPTZ AS created_at,
        false AS agent_session,
        NULL::VARCHAR AS mcp_server_tag,
        NULL::VARCHAR AS tag_text,
        '' AS agent_role_note,
        regexp_extract(r.caller, '[^/]+$') AS user_name,
        NULL::VARCHAR AS minted_text,
        NULL::VARCHAR AS minted_by,
        false AS minted_by_user_agent
    FROM session_nodes AS r
    JOIN sessions AS s ON s.root_key = r.issued_key AND NOT s.chain_truncated
    -- Not a GetFederationToken session: the IAM user that called it is a broker minting
    -- credentials for the federated user it names (20_sessions.sql, root_person), not the
    -- one who acts.
    WHERE r.caller_type = 'IAMUser' AND r.issued_by_call <> 'GetFederationToken'
    UNION ALL
    -- The sessions the managed MCP server obtained, from the session itself (depth 0) up.
    SELECT
        w.issued_key,
        w.depth,
        w.ancestor_key,
        coalesce(a.role_name, a.session_name) AS ancestor_name,
        NULL AS role_account_id,
        NULL AS role_name,
        w.acted_at,
        NULL::TIMESTAMPTZ AS created_at,
        false AS agent_session,
        NULL::VARCHAR AS mcp_server_tag,
        NULL::VARCHAR AS tag_text,
        '' AS agent_role_note,
        NULL::VARCHAR AS user_name,
        m.minted_text,
        m.mcp_principal AS minted_by,
        m.minted_by_user_agent
    FROM session_chain AS w
    JOIN minted AS m ON m.issued_key = w.ancestor_key
    JOIN sessions AS a ON a.issued_key = w.ancestor_key
),

ancestors AS (
    SELECT
        h.issued_key,
        h.depth,
        h.ancestor_key,
        h.ancestor_name,
        h.agent_session,
        h.mcp_server_tag,
        h.tag_text,
        h.minted_text,
        h.minted_by,
        h.minted_by_user_agent,
        -- The role when the ancestor acted, or when its session was created (as for the
        -- call's own role in `features`).
        CASE
            WHEN o.is_agent THEN o.observed_by
            WHEN oc.is_agent
                THEN oc.observed_by || ' when the session was created at '
                    || strftime(timezone('UTC', h.created_at), '%Y-%m-%dT%H:%M:%SZ')
                    || ', not when it acted (since ' || coalesce(o.observed_by, '?') || ')'
            ELSE 'configured pattern ' || pr.pattern
        END || h.agent_role_note AS agent_role_by,
        CASE
            WHEN pw.pattern IS NOT NULL
                THEN 'session ' || h.ancestor_key || ' of role ' || h.role_name
                    || ', which matches configured workload role pattern ' || pw.pattern
                    || CASE WHEN h.agent_role_note <> ''
                        THEN ' (' || ltrim(h.agent_role_note, '; ') || ')' ELSE '' END
            WHEN pu.pattern IS NOT NULL
                THEN 'IAM user ' || h.user_name || ' (key ' || coalesce(h.ancestor_key, '?')
                    || '), which matches configured workload user pattern ' || pu.pattern
        END AS workload_text
    FROM hops AS h
    LEFT JOIN role_agent_intervals AS o
        ON o.account_id = h.role_account_id
        AND o.role_name = h.role_name
        AND h.acted_at >= o.valid_from
        AND h.acted_at < o.valid_to
    LEFT JOIN role_agent_intervals AS oc
        ON oc.account_id = h.role_account_id
        AND oc.role_name = h.role_name
        AND h.created_at >= oc.valid_from
        AND h.created_at < oc.valid_to
        AND h.created_at <= h.acted_at
    LEFT JOIN classification_pattern_matches AS pr
        ON pr.kind = 'agent_role' AND pr.value = h.role_name
    LEFT JOIN classification_pattern_matches AS pw
        ON pw.kind = 'workload_role' AND pw.value = h.role_name
    LEFT JOIN classification_pattern_matches AS pu
        ON pu.kind = 'workload_user' AND pu.value = h.user_name
),

marked AS (
    SELECT
        *,
        agent_session OR agent_role_by IS NOT NULL OR minted_text IS NOT NULL AS agent_mark,
        CASE
            WHEN minted_text IS NOT NULL THEN minted_text
            WHEN agent_session THEN 'tags {' || tag_text || '}'
            ELSE 'an agent role: ' || agent_role_by
        END AS mark_text
    FROM ancestors
    WHERE agent_session OR agent_role_by IS NOT NULL OR workload_text IS NOT NULL
        OR minted_text IS NOT NULL
)

SELECT
    issued_key,
    -- The mark the evidence names: the nearest, but a session an awslabs MCP server obtained
    -- (known by its user agent alone) only where the chain has no other mark, so that its
    -- medium confidence never overrides a stronger mark further up; equal marks by their text.
    arg_min(ancestor_key, (minted_by_user_agent, depth, mark_text)) FILTER (WHERE agent_mark)
        AS chain_mark_key,
    arg_min(ancestor_name, (minted_by_user_agent, depth, mark_text)) FILTER (WHERE agent_mark)
        AS chain_mark_name,
    arg_min(mark_text, (minted_by_user_agent, depth, mark_text)) FILTER (WHERE agent_mark)
        AS chain_mark_text,
    -- The agent that mark names: the MCP server for a session it obtained, else the marked
    -- session's role.
    arg_min(coalesce(minted_by, ancestor_name), (minted_by_user_agent, depth, mark_text))
        FILTER (WHERE agent_mark) AS chain_mark_agent,
    -- Every mark of the chain is a session an awslabs MCP server obtained.
    bool_and(minted_by_user_agent) FILTER (WHERE agent_mark) AS chain_mark_by_user_agent,
    arg_min(mcp_server_tag, depth) FILTER (WHERE mcp_server_tag IS NOT NULL) AS chain_mcp_server_tag,
    arg_min(ancestor_key, depth) FILTER (WHERE mcp_server_tag IS NOT NULL) AS chain_mcp_key,
    -- The nearest workload mark above the session (rule 22).
    arg_min(workload_text, depth) FILTER (WHERE workload_text IS NOT NULL) AS chain_workload_text
FROM marked
GROUP BY issued_key;

CREATE OR REPLACE TABLE classification_event_marks AS
-- What the rules know of single events, by the event's position in the pinned events files
-- (an integer the per-event pass joins on, instead of the eventID string), so that each event
-- is probed once: the tool call it is, the MCP grant it is, the identity provider of its
-- web-identity or SAML principal. Every marked event is a source event, whose position
-- attribution_source_events holds.
WITH marks AS (
    SELECT link, link_key AS event_id, tool_name, mcp_principal, resource,
        NULL::VARCHAR AS identity_provider
    FROM classification_links
    WHERE link IN ('tool_call', 'grant')
    UNION ALL
    SELECT 'identity_provider', event_id, NULL, NULL, NULL, identity_provider
    FROM classification_identity_providers
)

SELECT
    p.event_position,
    any_value(m.tool_name) FILTER (WHERE m.link = 'tool_call') AS own_tool_name,
    -- The JSON-RPC method of a tool-call record that names no tool (a call of the MCP protocol
    -- itself, as session/destroy), for its evidence.
    any_value(nullif(p.request_method, '')) FILTER (WHERE m.link = 'tool_call') AS own_mcp_method,
    any_value(m.mcp_principal) FILTER (WHERE m.link = 'tool_call') AS own_mcp_principal,
    bool_or(m.link = 'grant') AS is_mcp_grant,
    any_value(m.mcp_principal) FILTER (WHERE m.link = 'grant') AS own_grant_mcp_principal,
    any_value(m.resource) FILTER (WHERE m.link = 'grant') AS own_grant_resource,
    any_value(m.identity_provider) AS identity_provider
FROM marks AS m
JOIN attribution_source_events AS p ON p.event_id = m.event_id
GROUP BY p.event_position;

CREATE OR REPLACE TABLE attribution_rules AS
-- The rules in the order they are tried (first match wins), with what each one concludes.
-- The per-event pass stores only the rule's number; the events_classified view looks the rest
-- up here, and the table is published with every generation as the view attribution_rules.
-- Rules 30 to 32 are no further tries: where an AWS service made the call with the caller's
-- credentials (invokedBy), they replace the verdict of the rule that found the actor (5 to
-- 14, 18 to 23, 26 to 29), keeping its actor and naming it in their evidence.
SELECT * FROM (VALUES
    (1, 'mcp_managed.invoked_by', 'agent', 'mcp_managed', 'high'),
    (2, 'mcp_managed.tool_call', 'agent', 'mcp_managed', 'high'),
    (3, 'mcp_managed.downstream_request', 'agent', 'mcp_managed', 'high'),
    (4, 'mcp_managed.oauth_grant', 'agent', 'mcp_managed', 'high'),
    (5, 'mcp_managed.oauth_session', 'agent', 'mcp_managed', 'high'),
    (6, 'agent_session.mcp', 'agent', 'mcp_self_managed', 'high'),
    (7, 'agent_session.direct', 'agent', 'direct', 'high'),
    (8, 'agent_chain.mcp', 'agent', 'mcp_self_managed', 'high'),
    (9, 'agent_session.mcp_by_name', 'agent', 'mcp_self_managed', 'medium'),
    (10, 'awslabs_user_agent', 'agent', 'mcp_self_managed', 'medium'),
    (11, 'human.console_agent_role', 'human', 'console', 'high'),
    (12, 'agent_role.direct', 'agent', 'direct', 'high'),
    (13, 'agent_chain.direct', 'agent', 'direct', 'high'),
    (14, 'agent_session.direct_by_name', 'agent', 'direct', 'medium'),
    (15, 'service.aws_service', 'service', 'service', 'high'),
    (16, 'service.service_linked_role', 'service', 'service', 'high'),
    (17, 'service.service_event', 'service', 'service', 'high'),
    (18, 'workload.service_issued', 'workload', 'direct', 'high'),
    (19, 'workload.ec2_role_delivery', 'workload', 'direct', 'high'),
    (20, 'workload.instance_session', 'workload', 'direct', 'high'),
    (21, 'workload.web_identity', 'workload', 'direct', 'high'),
    (22, 'workload.configured', 'workload', 'direct', 'high'),
    (23, 'workload.service_issued_by_name', 'workload', 'direct', 'medium'),
    (24, 'unknown', 'unknown', 'none', 'low'),
    (25, 'human.console', 'human', 'console', 'high'),
    (26, 'human.identity_center', 'human', 'direct', 'high'),
    (27, 'human.iam_user', 'human', 'direct', 'high'),
    (28, 'human.federated', 'human', 'direct', 'high'),
    (29, 'human.other_role', 'human', 'direct', 'medium'),
    (30, 'agent.service_invoked', 'agent', 'service', 'high'),
    (31, 'workload.service_invoked', 'workload', 'service', 'high'),
    (32, 'human.service_invoked', 'human', 'service', 'high')
) AS t(rule, classified_by, actor_kind, access_path, confidence);

CREATE OR REPLACE TABLE classification_rule_names AS
-- The rules' names as one list indexed by rule number, for the evidence of rules 30 to 32.
SELECT list(classified_by ORDER BY rule) AS names FROM attribution_rules;

CREATE OR REPLACE VIEW classification AS
WITH features AS (
    SELECT
        e.*,
        -- arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION; neither name may hold a '/'.
        CASE WHEN contains(e.principal_arn, ':assumed-role/')
            THEN split_part(e.principal_arn, '/', 3) ELSE '' END AS session_name,
        s.issued_key IS NOT NULL AS session_joined,
        -- The call's role, which the rules below join on: for a role session (AssumedRole;
        -- the sessionIssuer of another identity is no role of the call: that of a
        -- FederatedUser is the IAM user that called GetFederationToken, whose name may match a
        -- role pattern or be a role's), the record's sessionIssuer, else (a record without
        -- one: no sessionContext, or one without its sessionIssuer) the role of the session its
        -- key joins, as the session's assumedRoleUser.arn names it, else the role
        -- userIdentity.arn names (arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION). The
        -- account is the record's own (the same ARN, else userIdentity.accountId: the role's
        -- account for a role session), which keeps classification_sessions, held whole in the
        -- pass's memory, from carrying the account of every session. coalesce() evaluates the
        -- rest only where the record has no sessionIssuer, so the records that name their role
        -- cost the pass nothing more.
        CASE WHEN e.principal_type = 'AssumedRole' THEN coalesce(
            e.session_issuer_account_id,
            CASE WHEN contains(e.principal_arn, ':assumed-role/')
                THEN nullif(split_part(e.principal_arn, ':', 5), '') END,
            e.principal_account_id
        ) END AS role_account_id,
        CASE WHEN e.principal_type = 'AssumedRole' THEN coalesce(
            e.session_issuer_name,
            s.session_role_name,
            CASE WHEN contains(e.principal_arn, ':assumed-role/')
                THEN nullif(split_part(e.principal_arn, '/', 2), '') END
        ) END AS role_name,
        -- The role as the evidence names it: where it was not read from sessionIssuer, it says
        -- which field decided, and where the session the key joins is of another role than
        -- userIdentity.arn names (the issuing event, which names the role the credentials were
        -- issued for, decides), that role too.
        CASE WHEN e.principal_type = 'AssumedRole' THEN coalesce(
            e.session_issuer_name,
            s.session_role_name || ' (from session ' || e.access_key_id
                || ', which its key joins; the record has no sessionIssuer'
                || CASE
                    WHEN contains(e.principal_arn, ':assumed-role/')
                        AND lower(nullif(split_part(e.principal_arn, '/', 2), ''))
                            <> lower(s.session_role_name)
                        THEN '; its userIdentity.arn names role '
                            || split_part(e.principal_arn, '/', 2)
                    ELSE ''
                END || ')',
            CASE WHEN contains(e.principal_arn, ':assumed-role/')
                THEN nullif(split_part(e.principal_arn, '/', 2), '')
                    || ' (from userIdentity.arn; the record has no sessionIssuer)'
            END
        ) END AS role_text,
        s.root_key,
        s.root_parent_key,
        s.root_role_name,
        coalesce(s.chain_truncated, false) AS chain_truncated,
        cfg.chain_max_depth,
        cfg.rule_names,
        cfg.mcp_server_tag_key,
        s.session_role_name,
        s.root_workload_text,
        s.root_person,
        s.root_web_identity_provider,
        s.issued_by_call,
        coalesce(s.session_source_identity, e.source_identity) AS chain_source_identity,
        coalesce(s.agent_tag, false) AS agent_tag,
        s.mcp_server_tag,
        s.tag_text,
        cm.chain_mark_key,
        cm.chain_mark_name,
        cm.chain_mark_text,
        cm.chain_mark_agent,
        coalesce(cm.chain_mark_by_user_agent, false) AS chain_mark_by_user_agent,
        cm.chain_mcp_server_tag,
        cm.chain_mcp_key,
        dl.tool_event_id AS downstream_of,
        em.own_tool_name,
        em.own_mcp_method,
        em.own_mcp_principal,
        dl.tool_name AS downstream_tool_name,
        dl.mcp_principal AS downstream_mcp_principal,
        g.tool_event_id AS grant_event_id,
        g.resource AS grant_resource,
        g.grant_owner,
        g.mcp_principal AS grant_mcp_principal,
        coalesce(em.is_mcp_grant, false) AS is_mcp_grant,
        em.own_grant_mcp_principal,
        em.own_grant_resource,
        ua.client AS ua_client,
        -- The AWS CLI, an SDK or an IaC tool (no MCP marker in the user agent): a call made with
        -- the person's own sign-in credentials (`aws login`'s share the browser's sign-in
        -- session), not with an MCP grant's token, which is issued for the MCP endpoint.
        coalesce(ua.client IN ('cli', 'sdk', 'iac'), false) AS direct_client,
        ua.awslabs_mcp_server,
        ua.awslabs_mcp_marker,
        p_agent_si.kind IS NOT NULL AS agent_source_identity,
        p_mcp_si.kind IS NOT NULL AS mcp_source_identity,
        coalesce(e.web_id_provider, em.identity_provider, s.root_web_identity_provider)
            AS web_identity_provider,
        -- Whether the provider is the call's own (else its chain root's, for the evidence).
        coalesce(e.web_id_provider, em.identity_provider) IS NOT NULL AS own_web_identity,
        p_web.kind IS NOT NULL AS workload_web_identity,
        cm.chain_workload_text,
        p_mcp.kind IS NOT NULL AS invoked_by_mcp,
        -- A GetFederationToken session is named after its federated user
        -- (arn:aws:sts::ACCOUNT:federated-user/NAME); its session issuer is the IAM user that
        -- minted it.
        CASE WHEN e.principal_type = 'FederatedUser'
            THEN nullif(regexp_extract(e.principal_arn, ':federated-user/(.+)$', 1), '')
        END AS federated_user_name,
        -- An AWS service that made the call with the caller's credentials (invokedBy a service
        -- principal that is no MCP server, such as cloudformation.amazonaws.com creating a
        -- stack's resources; or `AWS Internal`, which AWS writes for a call a service makes
        -- inside AWS, as S3 decrypting an SSE-KMS object with KMS). Other values do not count.
        coalesce(
            (e.invoked_by LIKE '%.amazonaws.com' AND p_mcp.kind IS NULL) OR e.invoked_by = 'AWS Internal',
            false
        ) AS invoked_by_service,
        -- sessionCredentialFromConsole is present only when true (facts doc s.2).
        coalesce(
            e.session_credential_from_console OR e.event_type = 'AwsConsoleSignIn' OR ua.client = 'console',
            false
        ) AS from_console
    -- The raw fields whose empty string would name someone or something (a role '', an
    -- Identity Center user '', an EC2 instance, a person '' by sourceIdentity or userName, a web
    -- identity provider ''), or hide the value after it in a coalesce(), read as absent:
    -- records carry them as written (05_source_events.sql does the same for the source events).
    FROM (
        SELECT * REPLACE (
            nullif(session_issuer_name, '') AS session_issuer_name,
            nullif(session_issuer_account_id, '') AS session_issuer_account_id,
            nullif(session_issuer_arn, '') AS session_issuer_arn,
            nullif(on_behalf_of_user_id, '') AS on_behalf_of_user_id,
            nullif(ec2_role_delivery, '') AS ec2_role_delivery,
            nullif(source_identity, '') AS source_identity,
            nullif(web_id_provider, '') AS web_id_provider,
            -- A console sign-in that failed for a user name the account does not have shows
            -- HIDDEN_DUE_TO_SECURITY_REASONS in place of what was typed (IAM User Guide): it
            -- names no person.
            nullif(nullif(user_name, ''), 'HIDDEN_DUE_TO_SECURITY_REASONS') AS user_name
        )
        FROM attribution_events
    ) AS e
    -- One row: the settings, and the rules' names for the evidence of rules 30 to 32.
    CROSS JOIN (
        SELECT s.*, n.names AS rule_names
        FROM attribution_settings AS s, classification_rule_names AS n
    ) AS cfg
    LEFT JOIN classification_sessions AS s ON s.issued_key = e.access_key_id
    LEFT JOIN classification_chain_marks AS cm ON cm.issued_key = e.access_key_id
    LEFT JOIN classification_links AS dl ON dl.link = 'request' AND dl.link_key = e.request_id
    LEFT JOIN classification_event_marks AS em
        ON em.event_position = (e.file_index::BIGINT << 32) + e.file_row_number
    -- A grant links the events of its sign-in session from the grant on, not before.
    LEFT JOIN classification_links AS g
        ON g.link = 'sign_in_session' AND g.link_key = e.sign_in_session_arn
        AND g.granted_at <= e.event_time
    LEFT JOIN user_agent_clients AS ua ON ua.user_agent = e.user_agent
    LEFT JOIN classification_pattern_matches AS p_mcp
        ON p_mcp.kind = 'mcp_principal' AND p_mcp.value = e.invoked_by
    LEFT JOIN classification_pattern_matches AS p_agent_si
        ON p_agent_si.kind = 'agent_source_identity'
        AND p_agent_si.value = coalesce(s.session_source_identity, e.source_identity)
    LEFT JOIN classification_pattern_matches AS p_mcp_si
        ON p_mcp_si.kind = 'mcp_source_identity'
        AND p_mcp_si.value = coalesce(s.session_source_identity, e.source_identity)
    LEFT JOIN classification_pattern_matches AS p_web
        ON p_web.kind = 'workload_web_identity_provider'
        AND p_web.value = coalesce(e.web_id_provider, em.identity_provider, s.root_web_identity_provider)
),

role_features AS (
    -- What the rules know of the call's role (features: role_account_id, role_name), joined
    -- once that role is known. The patterns first: the columns after them read their aliases.
    SELECT
        f.*,
        -- The configured role patterns, matched per distinct role name
        -- (classification_pattern_matches: the sessionIssuer names of the records, the roles
        -- of the sessions, and the roles the records without sessionIssuer name in their ARN).
        pa.pattern AS agent_role_pattern,
        pw.pattern AS workload_role_pattern,
        -- The role at the call, or when the call's session was created: credentials issued to
        -- an agent role stay the agent's until they expire, so an agent that removes its own
        -- role's tag (or has it removed) mid-session does not turn its later calls into a
        -- person's. sessionContext's creationDate names the session's creation also where its
        -- issuing event is not in the logs.
        -- Where the record shows no creationDate, the issuing event of the session its key
        -- joins tells when it was created (classification_created_agent_roles).
        coalesce(o.is_agent, false) OR coalesce(oc.is_agent, false) OR ca.issued_key IS NOT NULL
            OR agent_role_pattern IS NOT NULL AS agent_role,
        -- What made the role an agent role: an observation that says so, else the pattern (an
        -- observation without the tag is no evidence of it).
        CASE
            WHEN o.is_agent THEN o.observed_by
            WHEN oc.is_agent
                THEN 'was when session ' || coalesce(f.access_key_id, '?') || ' was created at '
                    || strftime(timezone('UTC', f.session_creation_date), '%Y-%m-%dT%H:%M:%SZ')
                    || ': ' || oc.observed_by || '; no longer at the call, since '
                    || coalesce(o.observed_by, '?')
            WHEN ca.issued_key IS NOT NULL
                THEN 'was when session ' || ca.issued_key || ' was issued at '
                    || strftime(timezone('UTC', ca.issued_at), '%Y-%m-%dT%H:%M:%SZ')
                    || ' (the call shows no creationDate): ' || ca.observed_by
                    || '; no longer at the call, since ' || coalesce(o.observed_by, '?')
            ELSE 'configured pattern ' || agent_role_pattern
        END AS agent_role_observed_by,
        p_workload_user.pattern AS workload_user_pattern,
        workload_role_pattern IS NOT NULL OR p_workload_user.kind IS NOT NULL
            OR f.chain_workload_text IS NOT NULL AS workload_pattern,
        sn.sessions AS named_sessions,
        coalesce(sn.service_issued, false) AS named_service_issued,
        coalesce(sn.agent_marked, false) AS named_agent_marked,
        coalesce(sn.mcp_marked, false) AS named_mcp_marked,
        sn.mcp_server_tag AS named_mcp_server_tag,
        sn.tag_text AS named_tag_text,
        sn.root_workload_text AS named_root_workload_text,
        sn.example_key AS named_example_key,
        sn.mcp_marked_sessions AS named_mcp_marked_sessions,
        sn.direct_tag_text AS named_direct_tag_text,
        sn.direct_example_key AS named_direct_example_key
    FROM features AS f
    LEFT JOIN role_agent_intervals AS o
        ON o.account_id = f.role_account_id
        AND o.role_name = f.role_name
        AND f.event_time >= o.valid_from
        AND f.event_time < o.valid_to
    -- A creationDate after the call names no creation of the call's session (a session makes
    -- no call before it exists): the record's time is wrong, and it is not read.
    LEFT JOIN role_agent_intervals AS oc
        ON oc.account_id = f.role_account_id
        AND oc.role_name = f.role_name
        AND f.session_creation_date >= oc.valid_from
        AND f.session_creation_date < oc.valid_to
        AND f.session_creation_date <= f.event_time
    LEFT JOIN classification_created_agent_roles AS ca
        ON ca.issued_key = f.access_key_id
        AND f.session_creation_date IS NULL
        AND ca.issued_at <= f.event_time
    LEFT JOIN classification_session_names AS sn
        ON NOT f.session_joined
        AND f.principal_type = 'AssumedRole'
        AND sn.role_account_id = f.role_account_id
        AND sn.role_name = f.role_name
        AND sn.session_name = split_part(f.principal_arn, '/', 3)
    LEFT JOIN classification_pattern_matches AS pa
        ON pa.kind = 'agent_role' AND pa.value = f.role_name
    LEFT JOIN classification_pattern_matches AS pw
        ON pw.kind = 'workload_role' AND pw.value = f.role_name
    LEFT JOIN classification_pattern_matches AS p_workload_user
        ON p_workload_user.kind = 'workload_user' AND f.principal_type = 'IAMUser'
        AND p_workload_user.value = f.user_name
),

based AS (
    -- The rule that decided who acted, by its number in attribution_rules (integer tests keep
    -- the per-event pass cheap).
    SELECT
        *,
        CASE
            WHEN invoked_by_mcp THEN 1
            WHEN event_type = 'AwsMcpEvent' THEN 2
            WHEN downstream_of IS NOT NULL THEN 3
            WHEN is_mcp_grant THEN 4
            -- Calls made with the grant's token carry its signInSessionArn; a console request
            -- in the same browser sign-in session is not one of them (facts doc s.4), nor a
            -- CLI, SDK or IaC call without an MCP mark: the person's.
            WHEN grant_event_id IS NOT NULL AND NOT from_console AND NOT direct_client THEN 5
            -- An awslabs MCP user agent is an MCP mark too (facts doc s.4): an agent session
            -- using an awslabs server is on the self-managed MCP path, not the bypass. So is an
            -- MCP server tag on a session above it in the chain: a server that makes its agent
            -- tag transitive (so that policies deeper in the chain can test it) passes on no
            -- MCPServer tag that is not transitive, yet the calls are still its own.
            WHEN (agent_tag OR mcp_server_tag IS NOT NULL OR agent_source_identity)
                AND (
                    mcp_server_tag IS NOT NULL OR chain_mcp_server_tag IS NOT NULL
                    OR mcp_source_identity OR awslabs_mcp_server IS NOT NULL
                )
                THEN 6
            WHEN agent_tag OR agent_source_identity THEN 7
            -- A chain an agent started, past a role hop that dropped its marks: the same MCP
            -- marks as rule 2 (the chain's MCPServer tag, an awslabs user agent) decide the path.
            -- Tested before the awslabs rule (the credentials say more than the user agent);
            -- without an MCP mark, after the call's own agent role (which names the role).
            WHEN chain_mark_key IS NOT NULL
                AND (chain_mcp_server_tag IS NOT NULL OR awslabs_mcp_server IS NOT NULL)
                THEN 8
            -- The role-plus-session-name fallback for agent sessions (a console request is a
            -- person's whatever its session name).
            WHEN named_agent_marked AND NOT from_console
                AND (named_mcp_marked OR awslabs_mcp_server IS NOT NULL)
                THEN 9
            WHEN awslabs_mcp_server IS NOT NULL THEN 10
            -- A console request on an agent role is a person who switched into the role in
            -- the console: not the agent's bypass (facts doc s.2, s.3).
            WHEN principal_type = 'AssumedRole' AND agent_role AND from_console
                THEN 11
            WHEN principal_type = 'AssumedRole' AND agent_role THEN 12
            WHEN chain_mark_key IS NOT NULL THEN 13
            WHEN named_agent_marked AND NOT from_console THEN 14
            WHEN principal_type = 'AWSService' THEN 15
            WHEN session_issuer_arn LIKE '%:role/aws-service-role/%' THEN 16
            WHEN principal_type IS NULL AND event_type = 'AwsServiceEvent' THEN 17
            WHEN root_workload_text IS NOT NULL THEN 18
            WHEN ec2_role_delivery IS NOT NULL THEN 19
            -- The prefix test first: the pattern is then matched on few names.
            WHEN starts_with(session_name, 'i-') AND regexp_matches(session_name, '^i-[0-9a-f]{8,17}$')
                THEN 20
            WHEN workload_web_identity THEN 21
            -- A console request on a workload's role or user is a person's in the browser.
            WHEN workload_pattern AND NOT from_console THEN 22
            WHEN named_service_issued AND NOT from_console THEN 23
            WHEN principal_type IN ('Unknown', 'AWSAccount') OR principal_type IS NULL THEN 24
            -- A short-term root session (sessionContext.assumedRoot) whose AssumeRoot is not in
            -- the logs: a principal of the management account started it, agent or person,
            -- which nothing here names (not the root user); a console request is a person in
            -- the browser (rule 25).
            WHEN principal_type = 'Root' AND assumed_root AND NOT session_joined AND NOT from_console
                THEN 24
            WHEN from_console THEN 25
            -- An Identity Center role (path aws-reserved/sso.amazonaws.com), known for a record
            -- without sessionIssuer by its name, AWSReservedSSO_ (role_name: its ARN shows no
            -- path), as 20_sessions knows the role session that opened a chain.
            WHEN principal_type IN ('IdentityCenterUser')
                OR on_behalf_of_user_id IS NOT NULL
                OR session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                OR (session_issuer_name IS NULL AND starts_with(role_name, 'AWSReservedSSO_'))
                THEN 26
            WHEN principal_type IN ('IAMUser', 'Root') THEN 27
            WHEN principal_type IN ('SAMLUser', 'FederatedUser', 'WebIdentityUser', 'Directory')
                OR issued_by_call = 'AssumeRoleWithSAML'
                THEN 28
            WHEN principal_type = 'AssumedRole' THEN 29
            ELSE 24
        END AS base_rule
    FROM role_features
),

ruled AS (
    -- A call an AWS service made with the credentials of an agent, a workload or a person
    -- (invokedBy a service principal: facts doc s.2, s.3) was not made by their client: the
    -- actor stays the one base_rule found, the path is the service's (rules 30 to 32, which
    -- replace base_rule's verdict). Not for the MCP records and links (rules 1 to 4), nor AWS
    -- services' own identities (15 to 17), unknown identities (24) or console requests (11,
    -- 25: a person's browser).
    SELECT
        *,
        CASE
            WHEN NOT invoked_by_service OR from_console THEN base_rule
            WHEN base_rule BETWEEN 5 AND 14 THEN 30
            WHEN base_rule BETWEEN 18 AND 23 THEN 31
            WHEN base_rule BETWEEN 26 AND 29 THEN 32
            ELSE base_rule
        END AS rule
    FROM based
),

detailed AS (
    -- The evidence detail of the rule that found the actor. The evidence sentence is composed
    -- by the events_classified view (queries/views/50_events_classified.sql) from the event's
    -- own fields and this detail: the values the deciding rule found outside the event (NULL
    -- where it found none), so the rebuild writes one short value instead of a sentence per
    -- event.
    SELECT
        r.*,
        CASE r.base_rule
            WHEN 2 THEN coalesce(
                'tool=' || r.own_tool_name,
                'method=' || r.own_mcp_method || ' (no tool named)',
                'no tool named'
            )
            WHEN 3 THEN r.downstream_of
            WHEN 4 THEN r.own_grant_resource
            WHEN 5 THEN r.grant_event_id || ' for ' || r.grant_resource
            -- Tags only where the key joined a session that has some: a source identity
            -- alone can decide, also on a key whose issuing event is not in the logs.
            WHEN 6 THEN concat_ws('; ',
                'session ' || r.access_key_id || ' tags {' || r.tag_text || '}',
                -- Only a source identity that matched a configured pattern decided; any other
                -- is the person's (human_id), not evidence of an agent.
                CASE WHEN r.agent_source_identity THEN 'sourceIdentity=' || r.chain_source_identity END,
                CASE WHEN r.mcp_server_tag IS NULL
                    THEN r.mcp_server_tag_key || '=' || r.chain_mcp_server_tag || ' on session '
                        || r.chain_mcp_key || ' above it in the chain'
                END,
                'userAgent has ' || r.awslabs_mcp_marker,
                'chain root ' || r.root_key,
                CASE WHEN r.chain_truncated THEN 'chain truncated at depth ' || r.chain_max_depth END
            )
            WHEN 7 THEN concat_ws('; ',
                'session ' || r.access_key_id || ' tags {' || r.tag_text || '}',
                CASE WHEN r.agent_source_identity THEN 'sourceIdentity=' || r.chain_source_identity END,
                'no MCP mark',
                CASE WHEN r.chain_truncated THEN 'chain truncated at depth ' || r.chain_max_depth END
            )
            WHEN 8 THEN concat_ws('; ',
                'session ' || r.access_key_id || ' of '
                    || coalesce(r.session_role_name, r.session_issuer_name, r.principal_arn, '?')
                    || CASE
                        -- The session itself is the mark (one the MCP server obtained).
                        WHEN r.chain_mark_key = r.access_key_id THEN ' was ' || r.chain_mark_text
                        ELSE ' is chained from session ' || r.chain_mark_key || ' of '
                            || coalesce(r.chain_mark_name, '?') || ' (' || r.chain_mark_text || ')'
                    END,
                r.mcp_server_tag_key || '=' || r.chain_mcp_server_tag || ' on session ' || r.chain_mcp_key,
                'userAgent has ' || r.awslabs_mcp_marker,
                CASE WHEN r.chain_truncated THEN 'chain truncated at depth ' || r.chain_max_depth END
            )
            WHEN 11 THEN r.agent_role_observed_by
            WHEN 12 THEN r.agent_role_observed_by
            WHEN 13 THEN concat_ws('; ',
                'session ' || r.access_key_id || ' of '
                    || coalesce(r.session_role_name, r.session_issuer_name, r.principal_arn, '?')
                    || CASE
                        -- The session itself is the mark (one the MCP server obtained).
                        WHEN r.chain_mark_key = r.access_key_id THEN ' was ' || r.chain_mark_text
                        ELSE ' is chained from session ' || r.chain_mark_key || ' of '
                            || coalesce(r.chain_mark_name, '?') || ' (' || r.chain_mark_text || ')'
                    END,
                'no MCP mark',
                CASE WHEN r.chain_truncated THEN 'chain truncated at depth ' || r.chain_max_depth END
            )
            -- The workload opened the chain root, not necessarily the event's session.
            WHEN 18 THEN 'session ' || r.access_key_id || ' of '
                || coalesce(r.session_role_name, r.session_issuer_name, r.principal_arn, '?')
                || CASE
                    WHEN r.root_key IS NOT NULL
                        THEN ', chained from ' || coalesce(r.root_role_name, '?') || ' '
                            || r.root_workload_text || ' (chain root ' || r.root_key || ')'
                    ELSE ', ' || r.root_workload_text
                END
                || CASE WHEN r.chain_truncated THEN '; chain truncated at depth ' || r.chain_max_depth ELSE '' END
            -- Not the call's own: the web identity that opened the chain's root (the root's
            -- caller), which the root's issuing event shows.
            WHEN 21 THEN r.web_identity_provider
                || CASE WHEN NOT r.own_web_identity
                    THEN ' that opened the chain (root session ' || coalesce(r.root_key, r.access_key_id) || ')' ELSE '' END
                || CASE WHEN r.chain_truncated THEN '; chain truncated at depth ' || r.chain_max_depth ELSE '' END
            WHEN 22 THEN coalesce(
                'role ' || r.role_text || ' matches configured workload role pattern '
                    || r.workload_role_pattern,
                'IAM user ' || r.user_name || ' matches configured workload user pattern '
                    || r.workload_user_pattern,
                'session ' || r.access_key_id || ' of '
                    || coalesce(r.session_role_name, r.session_issuer_name, r.principal_arn, '?') || ' traces back to '
                    || r.chain_workload_text
            ) || CASE WHEN r.chain_truncated THEN '; chain truncated at depth ' || r.chain_max_depth ELSE '' END
            WHEN 9 THEN concat_ws('; ',
                coalesce('key ' || r.access_key_id || ' joins no issuing event', 'no accessKeyId'),
                'the ' || r.named_sessions || ' session(s) of ' || r.role_text || ' named '
                    || r.session_name || ' in the logs all carry the agent mark (e.g. session '
                    || r.named_example_key || ' tags {' || r.named_tag_text || '})',
                'userAgent has ' || r.awslabs_mcp_marker
            )
            WHEN 14 THEN concat_ws('; ',
                coalesce('key ' || r.access_key_id || ' joins no issuing event', 'no accessKeyId'),
                'the ' || r.named_sessions || ' session(s) of ' || r.role_text || ' named '
                    || r.session_name || ' in the logs all carry the agent mark (e.g. session '
                    || r.named_direct_example_key || ' tags {' || r.named_direct_tag_text || '})',
                CASE WHEN r.named_mcp_marked_sessions > 0
                    THEN r.named_mcp_marked_sessions || ' of the ' || r.named_sessions
                        || CASE WHEN r.named_mcp_marked_sessions = 1 THEN ' carries' ELSE ' carry' END
                        || ' an MCP server tag, not all; the call has no MCP mark'
                    ELSE 'no MCP mark'
                END
            )
            WHEN 23 THEN
                coalesce('key ' || r.access_key_id || ' joins no issuing event', 'no accessKeyId')
                || '; the ' || r.named_sessions || ' session(s) of ' || r.role_text || ' named '
                || r.session_name || ' in the logs were all opened by a workload (e.g. session '
                || r.named_example_key || ', ' || r.named_root_workload_text || ')'
            WHEN 24 THEN CASE WHEN r.principal_type = 'Root' AND r.assumed_root
                THEN 'sessionContext.assumedRoot=true: a short-term root session whose AssumeRoot'
                    || ' is not in the logs (key ' || coalesce(r.access_key_id, 'none')
                    || '); who started it is unknown'
            END
            WHEN 27 THEN CASE WHEN r.issued_by_call = 'AssumeRoot'
                THEN 'short-term root session ' || r.access_key_id || ' (AssumeRoot)'
                    || CASE WHEN r.root_person IS NULL
                        THEN ' whose chain no person started and that has no agent, MCP, service or workload mark'
                        ELSE ''
                    END
            END
            WHEN 28 THEN r.issued_by_call::VARCHAR
            -- A web identity whose provider is no configured CI provider (rule 21) says so: the
            -- role was reached by federation, which an auditor needs to see.
            WHEN 29 THEN nullif(concat_ws('; ',
                -- (A SAML provider, held in the same column, is a person's sign-in.)
                CASE WHEN NOT contains(r.web_identity_provider, ':saml-provider/')
                    THEN 'web identity provider ' || r.web_identity_provider
                        || ' is not a configured workload provider'
                END,
                CASE WHEN r.chain_truncated THEN 'chain truncated at depth ' || r.chain_max_depth END
            ), '')
        END AS base_detail
    FROM ruled AS r
),

final AS (
    SELECT
        r.file_index,
        r.file_row_number,
        r.rule::UTINYINT AS rule,
        -- An ENUM: the hand-over to Arrow (and the Parquet writer) gets a dictionary.
        CAST(CASE
            WHEN r.awslabs_mcp_server IS NOT NULL OR r.event_type = 'AwsMcpEvent' OR r.invoked_by_mcp
                THEN 'mcp'
            WHEN coalesce(r.ua_client, 'unknown') <> 'unknown' THEN r.ua_client
            WHEN r.base_rule IN (11, 25) THEN 'console'
            WHEN r.base_rule BETWEEN 15 AND 17 OR r.rule >= 30 THEN 'service'
            ELSE 'unknown'
        END AS ENUM ('console', 'cli', 'sdk', 'iac', 'mcp', 'service', 'unknown')) AS client,
        CASE r.base_rule
            WHEN 1 THEN r.invoked_by
            WHEN 2 THEN r.own_mcp_principal
            WHEN 3 THEN r.downstream_mcp_principal
            WHEN 4 THEN r.own_grant_mcp_principal
            WHEN 5 THEN r.grant_mcp_principal
            -- A federated user's session is named after it, not after the IAM user that minted
            -- it (its session issuer); a source identity matching an agent pattern names the
            -- agent where nothing else does.
            WHEN 6 THEN coalesce(
                r.mcp_server_tag, r.chain_mcp_server_tag, r.awslabs_mcp_server, r.session_role_name,
                r.federated_user_name, r.role_name, r.chain_source_identity
            )
            WHEN 7 THEN coalesce(
                r.session_role_name, r.federated_user_name, r.role_name, r.chain_source_identity
            )
            WHEN 10 THEN r.awslabs_mcp_server
            WHEN 8 THEN coalesce(
                r.chain_mcp_server_tag, r.awslabs_mcp_server, r.chain_mark_agent
            )
            WHEN 12 THEN r.role_name
            WHEN 13 THEN r.chain_mark_agent
            WHEN 9 THEN coalesce(
                CASE WHEN r.named_mcp_marked THEN r.named_mcp_server_tag END,
                r.awslabs_mcp_server,
                r.role_name
            )
            WHEN 14 THEN r.role_name
        END AS agent_name,
        CASE
            WHEN r.base_rule BETWEEN 15 AND 23 THEN NULL  -- services and workloads
            ELSE coalesce(
                r.on_behalf_of_user_id,
                -- A source identity that matched an agent (or MCP) pattern is the agent's own
                -- name, not a person's.
                CASE WHEN NOT r.agent_source_identity THEN r.chain_source_identity END,
                r.grant_owner,
                -- An Identity Center role's session is named after the person (its role by
                -- its name where the record has no sessionIssuer, as rule 26 reads it).
                CASE WHEN r.session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                    OR (r.session_issuer_name IS NULL AND starts_with(r.role_name, 'AWSReservedSSO_'))
                    THEN nullif(r.session_name, '') END,
                -- A person's console session on a role (one switched into in the console, or a
                -- SAML federation's): the console names the session after the signed-in user.
                CASE WHEN r.base_rule IN (11, 25) AND r.principal_type = 'AssumedRole'
                    THEN nullif(r.session_name, '') END,
                CASE WHEN r.principal_type = 'IAMUser' THEN r.user_name END,
                -- The root user, but not a short-term root session (sts:AssumeRoot), whose person is
                -- the one who started its chain (root_person), if any.
                CASE WHEN r.principal_type = 'Root' AND r.issued_by_call IS DISTINCT FROM 'AssumeRoot'
                    AND NOT coalesce(r.assumed_root, false)
                    THEN 'root' END,
                CASE WHEN r.principal_type = 'SAMLUser' THEN r.user_name END,
                -- A federated user is the person its session is named after, unless the rules
                -- found it an agent's session (the name is then the agent's: agent_name).
                CASE WHEN r.base_rule > 14 THEN r.federated_user_name END,
                r.root_person
            )
        END AS human_id,
        coalesce(r.own_tool_name, r.downstream_tool_name) AS mcp_tool,
        r.session_joined,
        -- The console mints a new key per request (facts doc s.3), so an unjoined console
        -- call's key names one request; its principal and sessionContext creationDate name the
        -- console session all its requests share. A console sign-in carries no key, but where
        -- its record shows the creationDate (a role's sign-in, as Identity Center's) it names
        -- the session it opened the same way, so the sign-in is part of its session.
        coalesce(
            r.root_parent_key,
            r.root_key,
            -- A session that is its own root (root_key is NULL there).
            CASE WHEN r.session_joined THEN r.access_key_id END,
            -- Not for an empty userIdentity.arn, which names no principal (the sessions of
            -- all such records created in one second would be one).
            CASE
                WHEN r.from_console
                    AND (r.access_key_id IS NOT NULL OR r.event_type = 'AwsConsoleSignIn')
                    THEN 'console:' || nullif(r.principal_arn, '') || '@'
                        || strftime(timezone('UTC', r.session_creation_date), '%Y-%m-%dT%H:%M:%SZ')
            END,
            r.access_key_id
        ) AS session_root,
        -- The call's role as the rules read it (role_features), kept only where the record
        -- names no sessionIssuer (the role of the session its key joins, else the one
        -- userIdentity.arn names): NULL elsewhere, so the columns cost the pass next to nothing.
        -- The events_classified view composes role_account_id and role_name from them and the
        -- sessionIssuer, so that the named queries read the role the rules read.
        CASE WHEN r.session_issuer_account_id IS NULL THEN r.role_account_id END
            AS role_account_id_fallback,
        CASE WHEN r.session_issuer_name IS NULL THEN r.role_name END AS role_name_fallback,
        -- Verdicts whose confidence classify.py lowers to medium: rules that read the session's
        -- chain (inherited tags and source identity, the root's caller, the root's web
        -- identity, workload marks above, the absence of chain marks: an agent beyond the cut
        -- would have decided first) on a chain cut at chain_max_depth, which their evidence
        -- says; a call a service made (rules 30 to 32) where the rule that found the actor
        -- has medium confidence; and a chain whose nearest agent mark is a session an awslabs
        -- MCP server obtained, which only its user agent shows (rule 10's medium evidence).
        (r.chain_truncated AND r.base_rule IN (
            6, 7, 8,
            13, 18, 21, 22, 29
        )) OR (r.rule <> r.base_rule AND r.base_rule IN (9, 10, 14, 23, 29))
        OR (r.base_rule IN (8, 13) AND r.chain_mark_by_user_agent)
        -- A short-term root session (sts:AssumeRoot) whose chain no person started (a role
        -- session with no mark opened it): only the absence of other marks decided, as for
        -- that role session itself (rule 29).
        OR (r.base_rule = 27 AND r.issued_by_call = 'AssumeRoot' AND r.root_person IS NULL)
            AS at_most_medium,
        -- A call a service made: the service, then the rule that found the actor and its
        -- evidence.
        CASE
            -- The events_classified view names the role of rules 11, 12, 26 and 29 from the
            -- record's sessionIssuer; where the record has none, the detail is the whole
            -- sentence, with the role the rules read and where they read it.
            WHEN r.rule = r.base_rule AND r.base_rule IN (11, 12) AND r.session_issuer_name IS NULL
                THEN 'role ' || r.role_text || ' is an agent role (' || r.base_detail || ')'
            WHEN r.rule = r.base_rule AND r.base_rule = 26 AND r.session_issuer_name IS NULL
                AND r.on_behalf_of_user_id IS NULL
                THEN 'Identity Center role ' || r.role_text
            WHEN r.rule = r.base_rule AND r.base_rule = 29 AND r.session_issuer_name IS NULL
                THEN 'role ' || coalesce(r.role_text, '?')
                    || ' with no agent, MCP, service or workload mark'
                    || coalesce('; ' || r.base_detail, '')
            WHEN r.rule = r.base_rule THEN r.base_detail
            ELSE 'userIdentity.invokedBy=' || r.invoked_by
                || ': a service made the call with the caller''s credentials; the caller by '
                || r.rule_names[r.base_rule] || ': '
                || CASE r.base_rule
                    WHEN 5 THEN 'signInSessionArn=' || r.sign_in_session_arn || ' granted by ' || r.base_detail
                    WHEN 10 THEN 'userAgent names awslabs MCP server ' || r.awslabs_mcp_server
                    WHEN 12 THEN 'role ' || r.role_text || ' is an agent role (' || r.base_detail || ')'
                    WHEN 19 THEN 'ec2RoleDelivery=' || r.ec2_role_delivery
                    WHEN 20 THEN 'session name ' || r.session_name || ' is an instance id'
                    WHEN 21 THEN 'web identity provider ' || r.base_detail
                    WHEN 26 THEN coalesce(
                        'Identity Center user ' || r.on_behalf_of_user_id,
                        'Identity Center role '
                            || coalesce(r.session_issuer_name, r.session_issuer_arn, r.role_text),
                        'userIdentity.type=' || r.principal_type
                    )
                    WHEN 27 THEN 'userIdentity.type=' || r.principal_type || coalesce('; ' || r.base_detail, '')
                    WHEN 28 THEN 'userIdentity.type=' || r.principal_type || coalesce(' via ' || r.base_detail, '')
                    -- The call is a service's (invokedBy); the role's session has no mark.
                    WHEN 29 THEN 'role ' || coalesce(r.role_text, '?')
                        || ' whose session has no agent, MCP, service-issued or workload mark'
                        || coalesce('; ' || r.base_detail, '')
                    ELSE r.base_detail
                END
        END AS evidence_detail
    FROM detailed AS r
)

SELECT * FROM final;