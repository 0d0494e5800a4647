-- name: untagged_agent_roles
-- description: Which roles do agents use through MCP without being marked as agent roles? AWS's
--   guidance is to give agents dedicated roles tagged Usage=Agent (the configured agent tag), so
--   that policies, boundaries and reviews can single them out; a role used through an MCP server
--   (mcp_managed or mcp_self_managed) that lacked the tag when it was used is a guidance gap. The
--   tag state at each call comes from role_agent_intervals, the intervals the classification's
--   rules join (IAM snapshots and the CreateRole, TagRole, UntagRole and DeleteRole events of the logs): the
--   newest observation at or before the call, else the role's first observation where that is a
--   snapshot (a snapshot applies backwards; a tag event only from its time). tag_state is
--   'untagged' (IAM data shows the role without the tag) or 'unknown' (no observation applies to
--   the call: no IAM snapshot or tag event names the role, or only tag events after the call:
--   import an older snapshot; or the one that applies leaves the tags unknown: a role
--   re-created between two snapshots, before its first tag event). Columns:
--   role_account_id, principal (the role ARN; for calls whose records name no sessionIssuer,
--   the session ARN, userIdentity.arn), role_name (for those calls, as the rules read it: the
--   role of the session the key joins, else the one userIdentity.arn names), tag_state,
--   observed_by (the observations that decided: 'snapshot <id>', 'snapshot <id> (role
--   absent)', 'snapshot <id> (role created <time>)', 'snapshot <id> (role created <time>; its
--   tags unknown until its next event)' or '<event name> <event id>'),
--   access_paths and mcp_servers (agent_name values), people (human_id values; all
--   comma-separated), calls, sessions (distinct MCP sign-in sessions, else access keys),
--   first_seen and last_seen (UTC), tagged_since (when the gap closed: the first observation
--   after last_seen, the row's last call, that tags the role, where no later one before the end
--   of the period untags it again (an UntagRole, a DeleteRole, a snapshot without the tag or
--   without the role): the role is an agent role from then to the end of the period; NULL where it is no
--   agent role at the end of the period, or no observation after last_seen tags it).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per role used through MCP without the agent tag, and tag state
-- used_by: analysts; quarterly report (later)
WITH mcp_role_events AS (
    SELECT
        e.event_id,
        e.event_time,
        -- The role as the rules read it (events_classified: the sessionIssuer, else the role
        -- of the session its key joins, else the one its userIdentity.arn names).
        e.role_account_id,
        e.role_name,
        e.principal,
        e.access_path,
        e.agent_name,
        e.human_id,
        coalesce(e.sign_in_session_arn, e.access_key_id) AS session_key
    FROM events_classified AS e
    WHERE e.access_path IN ('mcp_managed', 'mcp_self_managed')
        AND e.principal_type = 'AssumedRole'
        AND ($since IS NULL OR e.event_time >= $since)
        AND ($until IS NULL OR e.event_time < $until)
        AND ($account IS NULL OR e.recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (e.principal, e.principal_arn, e.agent_name, e.human_id)
        )
),

tag_at_call AS (
    -- The interval of role_agent_intervals that covers each call: the very row the rules of
    -- the classification join for it at the call (10_role_agent_timeline.sql says which
    -- observation decides). The rules also read the role when the session of the call was created
    -- (an agent that untags its own role keeps the calls of its session); this query does not: a
    -- role used without the tag is a guidance gap whoever used it. None covers a call before
    -- a first observation that is a tag event (unknown, as is an interval of unknown tags:
    -- is_agent NULL).
    SELECT
        e.*,
        CASE
            WHEN i.is_agent THEN 'tagged'
            WHEN NOT i.is_agent THEN 'untagged'
            ELSE 'unknown'
        END AS tag_state,
        i.observed_by
    FROM mcp_role_events AS e
    LEFT JOIN role_agent_intervals AS i
        ON i.account_id = e.role_account_id
        AND i.role_name = e.role_name
        AND i.valid_from <= e.event_time
        AND e.event_time < i.valid_to
),

gaps AS (
    SELECT
        role_account_id,
        principal,
        role_name,
        tag_state,
        string_agg(DISTINCT observed_by, ',' ORDER BY observed_by) AS observed_by,
        string_agg(DISTINCT access_path, ',' ORDER BY access_path) AS access_paths,
        string_agg(DISTINCT agent_name, ',' ORDER BY agent_name) AS mcp_servers,
        string_agg(DISTINCT human_id, ',' ORDER BY human_id) AS people,
        count(*) AS calls,
        count(DISTINCT session_key) AS sessions,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM tag_at_call
    WHERE tag_state <> 'tagged'
    GROUP BY role_account_id, principal, role_name, tag_state
),

period_intervals AS (
    -- The intervals that begin before the end of the period: the last of each role is the one
    -- in force at that end.
    SELECT * FROM role_agent_intervals WHERE $until IS NULL OR valid_from < $until
),

tagged_at_end AS (
    -- Per role tagged at the end of the period (the interval in force at that end tags it):
    -- since when, the start of the first tagging interval after the last one that does not
    -- tag it. Where every interval tags it, that start is minus infinity (the first observation
    -- of the role is a snapshot that tags it, and holds before it too), which no call precedes:
    -- such a role has no untagged call, so no row to close.
    SELECT o.account_id, o.role_name, min(o.valid_from) AS tagged_from
    FROM period_intervals AS o
    WHERE o.is_agent
        AND NOT EXISTS (
            SELECT 1
            FROM period_intervals AS u
            WHERE u.account_id = o.account_id
                AND u.role_name = o.role_name
                -- untagged, or of unknown tags from then on
                AND u.is_agent IS NOT TRUE
                AND u.valid_from > o.valid_from
        )
    GROUP BY o.account_id, o.role_name
),

final AS (
    -- A tagging after the last call of the row closed its gap; one at or before that call
    -- cannot have (the call would have been tagged).
    SELECT
        g.*,
        t.tagged_from AS tagged_since
    FROM gaps AS g
    LEFT JOIN tagged_at_end AS t
        ON t.account_id = g.role_account_id
        AND t.role_name = g.role_name
        AND t.tagged_from > g.last_seen
)

SELECT * FROM final
ORDER BY calls DESC, role_account_id, principal, tag_state;
