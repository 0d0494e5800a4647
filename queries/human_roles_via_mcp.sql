-- name: human_roles_via_mcp
-- description: Whose own credentials do agents use through MCP? A person's identity (an IAM user or
--   root, an Identity Center user or role - path /aws-reserved/sso.amazonaws.com/, or a role
--   named AWSReservedSSO_ where the record shows no sessionIssuer and so no path - a SAML or
--   federated user) that reaches AWS through an MCP server gives the agent everything the person
--   may do, where AWS's guidance asks for a dedicated agent role. Covers the AWS-managed MCP
--   servers (OAuth grant, tool calls and downstream calls of the person's session) and self-managed
--   servers that name themselves in the user agent (awslabs MCP servers). A role session on a role
--   that is an agent role at the call, or was when the session was created (credentials issued to
--   an agent role stay the agent's; the creationDate of the call, none after it, else the issuing
--   event of the session its key joins, as the classification reads it), is left out, whoever opened it (a person through
--   AssumeRoleWithSAML too): that is the dedicated agent role the guidance asks for, whose direct
--   calls the classification calls agent_role.direct. The role's agent tag at those times is read
--   from role_agent_intervals, the intervals the classification's rules join (IAM snapshots and
--   CreateRole/TagRole/UntagRole/DeleteRole events): the newest observation at or before the call, else the
--   role's first observation where that is a snapshot, which applies backwards (a tag event only
--   from its time on). Roles that are agent roles only by a configured agent_role_patterns entry
--   are not left out: the patterns are attribution settings no named query can read (no view
--   holds them). Columns: human_id (the person: Identity Center user, source identity, SSO
--   session name, IAM user, owner of the MCP OAuth grant), principal (the role or user ARN;
--   for calls whose records name no sessionIssuer, the session ARN, userIdentity.arn; their
--   role, as the rules read it, the role of the session the key joins, else the one the ARN
--   names, decides whether it is an agent role),
--   access_path (mcp_managed or mcp_self_managed), mcp_server (agent_name: the managed server's
--   principal or the awslabs server), identity_kind (identity_center, iam_user, root, federated:
--   a SAML user's role session, which AssumeRoleWithSAML opened, or a federated user), accounts
--   (comma-separated), calls, failed_calls, write_calls (readOnly false), sessions (distinct MCP
--   sign-in sessions, else access keys), mcp_clients (user agents of the MCP tool-call records,
--   comma-separated; NULL for self-managed servers), first_seen and last_seen (UTC).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per person, identity, access path and MCP server
-- used_by: analysts; quarterly report (later)
WITH mcp_events AS (
    SELECT
        event_time,
        -- When the session was created, as the rules read it: the creationDate of the call
        -- (none after the call: such a time is wrong), else, where the call shows none, the
        -- issuing event of the session its key joins.
        CASE
            WHEN session_creation_date IS NULL THEN (
                SELECT s.issued_at
                FROM sessions AS s
                WHERE s.issued_key = e.access_key_id AND s.issued_at <= e.event_time
            )
            WHEN session_creation_date <= event_time THEN session_creation_date
        END AS session_creation_date,
        event_type,
        recipient_account_id,
        human_id,
        principal,
        access_path,
        agent_name,
        error_code,
        read_only,
        user_agent,
        coalesce(sign_in_session_arn, access_key_id) AS session_key,
        -- The role of a role session, whose agent tag decides below, as the rules read it
        -- (events_classified: the sessionIssuer, else the role of the session its key joins,
        -- else the one its userIdentity.arn names).
        role_account_id,
        role_name,
        CASE
            -- An Identity Center role: by its path, or, where the record has no
            -- sessionIssuer and so no path, by its AWSReservedSSO_ name (as the rules read it).
            WHEN principal_type = 'IdentityCenterUser'
                OR on_behalf_of_user_id IS NOT NULL
                OR session_issuer_arn LIKE '%:role/aws-reserved/sso.amazonaws.com/%'
                OR (session_issuer_name IS NULL AND starts_with(role_name, 'AWSReservedSSO_'))
                THEN 'identity_center'
            WHEN principal_type = 'IAMUser' THEN 'iam_user'
            WHEN principal_type = 'Root' THEN 'root'
            WHEN principal_type IN ('SAMLUser', 'FederatedUser') THEN 'federated'
            -- The calls of a SAML user are made with the role session AssumeRoleWithSAML
            -- opened (userIdentity.type AssumedRole): the issuing call of the session says so.
            WHEN access_key_id IN (
                SELECT issued_key FROM sessions WHERE issued_by_call = 'AssumeRoleWithSAML'
            ) THEN 'federated'
        END AS identity_kind
    FROM events_classified AS e
    WHERE access_path IN ('mcp_managed', 'mcp_self_managed')
        AND ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

role_calls AS (
    SELECT DISTINCT role_account_id, role_name, event_time, session_creation_date
    FROM mcp_events
    WHERE identity_kind IS NOT NULL AND role_name IS NOT NULL
),

agent_roles_at_call AS (
    -- The roles of the calls that are agent roles at the call or when the session was created:
    -- those whose interval of role_agent_intervals covering either time tags them, the very
    -- rows the rules of the classification join for it (10_role_agent_timeline.sql says which
    -- observation decides), so a call is left out here exactly when the rules read its role as
    -- an agent role.
    SELECT DISTINCT c.role_account_id, c.role_name, c.event_time, c.session_creation_date
    FROM role_calls AS c
    JOIN role_agent_intervals AS i
        ON i.account_id = c.role_account_id
        AND i.role_name = c.role_name
        AND (
            (i.valid_from <= c.event_time AND c.event_time < i.valid_to)
            OR (i.valid_from <= c.session_creation_date AND c.session_creation_date < i.valid_to)
        )
    WHERE i.is_agent
),

people AS (
    SELECT e.*
    FROM mcp_events AS e
    ANTI JOIN agent_roles_at_call AS a
        ON a.role_account_id = e.role_account_id
        AND a.role_name = e.role_name
        AND a.event_time = e.event_time
        AND a.session_creation_date IS NOT DISTINCT FROM e.session_creation_date
    WHERE e.identity_kind IS NOT NULL
),

final AS (
    SELECT
        human_id,
        principal,
        access_path,
        agent_name AS mcp_server,
        identity_kind,
        string_agg(DISTINCT recipient_account_id, ',' ORDER BY recipient_account_id) AS accounts,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        sum(CASE WHEN read_only = false THEN 1 ELSE 0 END) AS write_calls,
        count(DISTINCT session_key) AS sessions,
        string_agg(
            DISTINCT CASE WHEN event_type = 'AwsMcpEvent' THEN user_agent END, ','
            ORDER BY CASE WHEN event_type = 'AwsMcpEvent' THEN user_agent END
        ) AS mcp_clients,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM people
    GROUP BY human_id, principal, access_path, agent_name, identity_kind
)

SELECT * FROM final
ORDER BY human_id NULLS LAST, principal, access_path, mcp_server;
