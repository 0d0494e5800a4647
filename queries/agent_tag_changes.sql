-- name: agent_tag_changes
-- description: Who made a role an agent role, and who took that away? AWS's guidance rests on
--   agent roles tagged Usage=Agent (the configured agent tag): policies, permission boundaries
--   and this classification single them out by it, so removing the tag takes a role out of all
--   of them at once, and an agent that removes its own role's tag is hiding. One row per call in
--   the logs (CreateRole, TagRole, UntagRole) that changed whether a role is an agent role, on
--   the timeline the classification's rules join (role_agent_intervals: the interval that call
--   opened, against the one before it). change is 'tagged' (the role became an agent role) or
--   'untagged' (it stopped being one: an UntagRole of the key, a TagRole with another value, a
--   CreateRole without the tag of a role re-created under the name). Columns: role_account_id,
--   role_name, change, changed_at (UTC), event (the call: event name and eventID, as
--   role_agent_intervals.observed_by names it), was (the state before: 'tagged', 'untagged',
--   'absent' where a snapshot did not list the role, or 'unknown' where no snapshot or earlier
--   call says), was_observed_by (what said so), who made
--   the call as the classification found it (actor_kind, access_path, agent_name, human_id,
--   principal, classified_by), by_the_role_itself (the call was made with a session of the role
--   it changed: an agent untagging its own role), and finding (the change as one sentence).
--   principal matches the role name, the caller's principal, agent name or person.
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per call that changed whether a role is an agent role
-- used_by: analysts; quarterly report (later)
WITH changes AS (
    SELECT
        cur.account_id AS role_account_id,
        cur.role_name,
        CASE WHEN cur.is_agent THEN 'tagged' ELSE 'untagged' END AS change,
        cur.valid_from AS changed_at,
        cur.observed_by AS event,
        -- An observation of a call is named by its event name and eventID (10_role_agent_timeline).
        split_part(cur.observed_by, ' ', 2) AS event_id,
        CASE
            WHEN prev.is_agent THEN 'tagged'
            WHEN ends_with(prev.observed_by, ' (role absent)') THEN 'absent'
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
    WHERE split_part(cur.observed_by, ' ', 1) IN ('CreateRole', 'TagRole', 'UntagRole')
        AND (
            (cur.is_agent AND NOT coalesce(prev.is_agent, false))
            OR (NOT cur.is_agent AND prev.is_agent)
        )
        AND ($since IS NULL OR cur.valid_from >= $since)
        AND ($until IS NULL OR cur.valid_from < $until)
        AND ($account IS NULL OR cur.account_id = $account)
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
        coalesce(
            e.principal_type = 'AssumedRole'
                AND e.session_issuer_account_id = c.role_account_id
                AND lower(e.session_issuer_name) = lower(c.role_name),
            false
        ) AS by_the_role_itself
    FROM changes AS c
    LEFT JOIN events_classified AS e ON e.event_id = c.event_id
    WHERE $principal IS NULL
        OR $principal IN (c.role_name, e.principal, e.agent_name, e.human_id)
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
        || CASE change
            WHEN 'tagged' THEN ' became an agent role'
            ELSE ' stopped being an agent role'
        END
        || ' at ' || strftime(timezone('UTC', changed_at), '%Y-%m-%dT%H:%M:%SZ') || ' (' || event || ')'
        || ', by ' || CASE
            WHEN by_the_role_itself AND actor_kind = 'agent'
                THEN 'the agent ' || coalesce(agent_name, '?') || ' with a session of the role itself'
            WHEN by_the_role_itself THEN 'a session of the role itself (' || actor_kind || ')'
            WHEN actor_kind = 'agent' THEN 'the agent ' || coalesce(agent_name, '?')
            WHEN actor_kind IS NULL THEN 'a caller the classification does not know'
            ELSE 'a ' || actor_kind || coalesce(' (' || human_id || ')', '')
        END
        || coalesce(' (access path ' || nullif(access_path, 'none') || ')', '')
        || CASE was
            WHEN 'unknown' THEN '.'
            WHEN 'absent' THEN '; ' || was_observed_by || ' did not list it.'
            ELSE '; it was ' || was || ' before (' || was_observed_by || ').'
        END AS finding
    FROM made_by
)

SELECT * FROM final
ORDER BY changed_at, role_account_id, role_name;
