-- name: agent_tag_changes
-- description: Who made a role an agent role, and who took that away? AWS's guidance rests on
--   agent roles tagged Usage=Agent (the configured agent tag): policies, permission boundaries
--   and this classification single them out by it, so removing the tag takes a role out of all
--   of them at once, and an agent that removes its own role's tag is hiding. One row per call in
--   the logs (CreateRole, TagRole, UntagRole, DeleteRole) that changed whether a role is an agent
--   role, on the timeline the classification's rules join (role_agent_intervals: the interval
--   that call opened, against the one before it). change is 'tagged' (the role became an agent
--   role), 'untagged' (it stopped being one: an UntagRole of the key, a TagRole with another
--   value, a CreateRole without the tag of a role re-created under the name; also a TagRole or
--   UntagRole that takes the key away where nothing says what the role was before, was
--   'unknown': an agent that untags its role before any IAM snapshot was imported) or 'deleted'
--   (a DeleteRole of an agent role). Columns: role_account_id,
--   role_name, change, changed_at (UTC), event (the call: event name and eventID, as
--   role_agent_intervals.observed_by names it), was (the state before: 'tagged', 'untagged',
--   'absent' where a snapshot did not list the role or a DeleteRole had deleted it, or
--   'unknown' where no snapshot or earlier call says), was_observed_by (what said so), who made
--   the call as the classification found it (actor_kind, access_path, agent_name, human_id,
--   principal, classified_by), by_the_role_itself (the call was made with a session of the role
--   it changed, or with one chained from such a session: an agent untagging its own role,
--   directly or from a hop away; the role of the call as the rules read it, for a record
--   without sessionIssuer the role of the session its key joins, else the one its
--   userIdentity.arn names), and finding (the change as one sentence).
--   principal matches the role name or ARN, the caller's principal or session ARN, agent name
--   or person.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per call that changed whether a role is an agent role
-- used_by: analysts; quarterly report (later)
WITH changes AS (
    SELECT
        cur.account_id AS role_account_id,
        cur.role_name,
        CASE
            WHEN cur.is_agent THEN 'tagged'
            WHEN starts_with(cur.observed_by, 'DeleteRole ') THEN 'deleted'
            ELSE 'untagged'
        END AS change,
        cur.valid_from AS changed_at,
        cur.observed_by AS event,
        -- An observation of a call is named by its event name and eventID (10_role_agent_timeline).
        split_part(cur.observed_by, ' ', 2) AS event_id,
        CASE
            WHEN prev.is_agent THEN 'tagged'
            WHEN ends_with(prev.observed_by, ' (role absent)')
                OR starts_with(prev.observed_by, 'DeleteRole ') THEN 'absent'
            WHEN NOT prev.is_agent THEN 'untagged'
            ELSE 'unknown'
        END AS was,
        prev.observed_by AS was_observed_by
    FROM role_agent_intervals AS cur
    -- The interval just before: intervals of a role are contiguous.
    LEFT JOIN role_agent_intervals AS prev
        ON prev.account_id = cur.account_id
        AND prev.role_name = cur.role_name
        AND prev.valid_to = cur.valid_from
    WHERE split_part(cur.observed_by, ' ', 1) IN ('CreateRole', 'TagRole', 'UntagRole', 'DeleteRole')
        AND (
            (cur.is_agent AND NOT coalesce(prev.is_agent, false))
            OR (NOT cur.is_agent AND prev.is_agent)
            -- A TagRole or UntagRole that takes the key away where nothing says what the role
            -- was before (no earlier observation, or one of unknown tags): listed, was unknown,
            -- as a tagging call in that place is. A CreateRole without the tag is no change:
            -- the role did not exist; nor is a DeleteRole of a role nothing says was one.
            OR (
                NOT cur.is_agent
                AND prev.is_agent IS NULL
                AND split_part(cur.observed_by, ' ', 1) IN ('TagRole', 'UntagRole')
            )
        )
        AND ($since IS NULL OR cur.valid_from >= $since)
        AND ($until IS NULL OR cur.valid_from < $until)
        AND ($account IS NULL OR cur.account_id = $account)
),

chain_up AS (
    -- From the key of each call up its session chain: at every step the session of the key, and
    -- who opened it (caller_iam_arn: the role ARN where a role session did; where the record
    -- of its call shows no sessionIssuer, the role its userIdentity.arn names, as the rules
    -- read it, written arn:PARTITION:iam::ACCOUNT:role/NAME). No deeper than the deepest
    -- chain the sessions table walked, so a key that is its own ancestor ends.
    WITH RECURSIVE up (event_id, key, caller_arn, depth) AS (
        SELECT e.event_id, e.access_key_id, NULL::VARCHAR, 0
        FROM changes AS c
        JOIN events_classified AS e ON e.event_id = c.event_id
        WHERE e.principal_type = 'AssumedRole' AND nullif(e.access_key_id, '') IS NOT NULL
        UNION ALL
        SELECT
            up.event_id,
            s.parent_key,
            coalesce(
                s.caller_iam_arn,
                CASE WHEN s.caller_type = 'AssumedRole' AND contains(s.caller, ':assumed-role/')
                    THEN 'arn:' || split_part(s.caller, ':', 2) || ':iam::'
                        || split_part(s.caller, ':', 5) || ':role/' || split_part(s.caller, '/', 2)
                END
            ),
            up.depth + 1
        FROM up
        JOIN sessions AS s ON s.issued_key = up.key
        WHERE up.depth <= (SELECT coalesce(max(chain_depth), 0) FROM sessions)
    )

    SELECT DISTINCT event_id, caller_arn FROM up WHERE caller_arn IS NOT NULL
),

chained_from_role AS (
    -- The calls made with a session chained from a session of the role they changed (its own
    -- account, its name in any case): an agent that untags its role from one hop away.
    SELECT DISTINCT c.event_id
    FROM changes AS c
    JOIN chain_up AS u ON u.event_id = c.event_id
    WHERE contains(u.caller_arn, ':role/')
        AND split_part(u.caller_arn, ':', 5) = c.role_account_id
        AND lower(regexp_extract(u.caller_arn, '[^/]+$')) = lower(c.role_name)
),

made_by AS (
    SELECT
        c.*,
        e.actor_kind,
        e.access_path,
        e.agent_name,
        e.human_id,
        e.principal,
        e.classified_by,
        -- The role of the call as the rules read it (events_classified: the sessionIssuer,
        -- else the role of the session its key joins, else the one its userIdentity.arn
        -- names), in any letter case.
        coalesce(
            e.role_account_id = c.role_account_id AND lower(e.role_name) = lower(c.role_name),
            false
        ) AS own_session,
        ch.event_id IS NOT NULL AS chained_from_the_role
    FROM changes AS c
    LEFT JOIN events_classified AS e ON e.event_id = c.event_id
    LEFT JOIN chained_from_role AS ch ON ch.event_id = c.event_id
    WHERE $principal IS NULL
        OR $principal IN (c.role_name, e.principal, e.principal_arn, e.agent_name, e.human_id)
        -- The changed role by its ARN (any path), as principals names it.
        OR (
            split_part($principal, ':', 5) = c.role_account_id
            AND starts_with(split_part($principal, ':', 6), 'role/')
            AND lower(regexp_extract($principal, '[^/]+$')) = lower(c.role_name)
        )
),

final AS (
    SELECT
        role_account_id,
        role_name,
        change,
        changed_at,
        event,
        was,
        was_observed_by,
        actor_kind,
        access_path,
        agent_name,
        human_id,
        principal,
        classified_by,
        by_the_role_itself,
        'Role ' || role_name || ' in account ' || role_account_id
        || CASE
            -- Nothing says what it was before a TagRole or UntagRole: it is or is not one from
            -- then on. A CreateRole makes a new role.
            WHEN was = 'unknown' AND split_part(event, ' ', 1) <> 'CreateRole'
                THEN CASE change WHEN 'tagged' THEN ' is an agent role' ELSE ' is no agent role' END
                    || ' from ' || strftime(timezone('UTC', changed_at), '%Y-%m-%dT%H:%M:%SZ')
                    || ' on (' || event || ')'
            ELSE CASE change
                    WHEN 'tagged' THEN ' became an agent role'
                    WHEN 'deleted' THEN ', an agent role, was deleted'
                    ELSE ' stopped being an agent role'
                END
                || ' at ' || strftime(timezone('UTC', changed_at), '%Y-%m-%dT%H:%M:%SZ')
                || ' (' || event || ')'
        END
        || ', by ' || CASE
            WHEN by_the_role_itself AND actor_kind = 'agent'
                THEN 'the agent ' || coalesce(agent_name, '?') || ' with a session '
                    || CASE WHEN own_session THEN 'of' ELSE 'chained from' END || ' the role itself'
            WHEN by_the_role_itself
                THEN 'a session ' || CASE WHEN own_session THEN 'of' ELSE 'chained from' END
                    || ' the role itself (' || actor_kind || ')'
            WHEN actor_kind = 'agent' THEN 'the agent ' || coalesce(agent_name, '?')
            WHEN actor_kind IS NULL THEN 'a caller the classification does not know'
            ELSE 'a ' || actor_kind || coalesce(' (' || human_id || ')', '')
        END
        || coalesce(' (access path ' || nullif(access_path, 'none') || ')', '')
        || CASE
            WHEN was = 'unknown' AND split_part(event, ' ', 1) = 'CreateRole' THEN '.'
            WHEN was = 'unknown' AND was_observed_by IS NULL
                THEN '; no snapshot or earlier call says whether it was one before.'
            WHEN was = 'unknown'
                THEN '; ' || was_observed_by || ' does not say whether it was one before.'
            WHEN was = 'absent' AND starts_with(was_observed_by, 'DeleteRole ')
                THEN '; a role of that name had been deleted (' || was_observed_by || ').'
            WHEN was = 'absent' THEN '; ' || was_observed_by || ' did not list it.'
            ELSE '; it was ' || was || ' before (' || was_observed_by || ').'
        END AS finding
    FROM (
        SELECT *, own_session OR chained_from_the_role AS by_the_role_itself FROM made_by
    ) AS m
)

SELECT * FROM final
ORDER BY changed_at, role_account_id, role_name;
