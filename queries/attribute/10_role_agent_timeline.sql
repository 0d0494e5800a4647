-- name: 10_role_agent_timeline
-- description: When each IAM role was an agent role. role_agent_observations: what was observed of
--   the role's agent tag, and when; role_agent_intervals: the state that follows from them at
--   every time, the one answer to "is this role an agent role at time t" that the rules (agent
--   role, agent chain: 50_classification.sql) and the named queries on roles (principals,
--   untagged_agent_roles, human_roles_via_mcp) all join, so a report cannot contradict a verdict.
--   Observations come from the imported IAM snapshots (the role's tags at taken_at) and from
--   CreateRole, TagRole and UntagRole events in the logs (valid from the event's time), so a role
--   created or tagged during the period counts without a new snapshot. Only changes of the agent
--   tag key matter. A DeleteRole ends the role: no agent role from its time (observed_by
--   'DeleteRole <eventID>') until a CreateRole, or a later listing whose CreateDate is after it,
--   says what the role of that name is; a later listing whose CreateDate is in a second before it
--   shows the role it deleted (a stale export) and is no observation at its taken_at (still a
--   role created then, for the CTEs absent and created). Role names are unique per account, so
--   roles are keyed by (account_id, role_name): TagRole events carry no path. They are unique
--   whatever their letter case, so a TagRole, UntagRole or DeleteRole is of the role of its name,
--   in whatever case, that a snapshot listing or a CreateRole shows nearest before it (for a
--   DeleteRole, before its second: a CreateRole in it created the next role), else the first
--   after it, else the calls.
--   Only complete snapshots count (listed in iam_snapshots: the iam_roles view keeps no other),
--   one per account and taken_at (two of one account at one time, which imports now refuse unless
--   they agree: the larger snapshot id, as pipeline/iam/choice.py and principals.sql choose). A
--   snapshot lists every role of its account at its time: every snapshot of an account that does
--   not list a role known in it (listed by another of its snapshots, or named by one of the
--   events) gives the observation 'snapshot <id> (role absent)', not an agent role (a role
--   deleted, not yet created, or re-created untagged; a later CreateRole or TagRole still applies
--   from its time), before the role's first listing as after its last; not where a later listing's
--   CreateDate is at or before that snapshot (the file left the role out). A role created after
--   such a snapshot (or after one that listed an earlier role of its name) is, from its
--   CreateDate, what its first later listing shows, where no event of the role lies between
--   ('snapshot <id> (role created <time>)'), else of unknown tags (is_agent NULL) until the first
--   such event ('snapshot <id> (role created <time>; its tags unknown until its next event)'). One
--   observation per role and instant: among events of one instant (CloudTrail times have whole
--   seconds), the one that makes the role an agent role, so an UntagRole and a TagRole of the key
--   in one second (infrastructure as code re-writing a key's letter case: untag usage, tag Usage)
--   leave it tagged; then any but a DeleteRole (infrastructure as code replacing a role deletes
--   and creates it within a second: the role exists after it); then the larger observed_by.
--   Except that a DeleteRole holds where it was the last event of its second: always without a
--   CreateRole in that second (a TagRole or UntagRole succeeds only while the role exists), and
--   with one where the role did not exist before that second (what last says so before it is a
--   DeleteRole or a snapshot without the role: the role was created, then deleted). An
--   event happened somewhere within its second, so the events' state holds from that second on,
--   also over a snapshot taken within it: one that disagrees with them was taken before them
--   (after, it would show their change), so it is the state just before that second, and is placed
--   one microsecond before it (observed_at), where, as the role's first observation, it applies
--   backwards as any first snapshot does (role_agent_intervals); one that agrees may have been
--   taken after them, adds nothing, and is left out. Before a role's first observation, its oldest
--   snapshot applies only where that snapshot is the first observation: an event first
--   (CreateRole, TagRole or UntagRole of the key) sets the key whatever it was before, so no later
--   snapshot tells that state, nor does the event: CreateRole shows the role did not exist,
--   TagRole overwrites the key, and UntagRole succeeds whether or not the role carried the key
--   (IAM's API reference names no error for an absent key) and names no value. Then nothing is
--   known before it: not an agent role. role_agent_intervals turns the observations into
--   non-overlapping intervals [valid_from, valid_to) per (account_id, role_name), each with the
--   is_agent and observed_by of the observation that decides it: from each observation to the next
--   (the last to 'infinity'), and, where the role's first observation is a snapshot, from
--   '-infinity' to it. A time t is covered by at most one row, the one with valid_from <= t <
--   valid_to; by none before a first observation that is an event (nothing is known then: not an
--   agent role for the classification, unknown for the reports).
-- params: none (reads the tables attribution_settings, attribution_source_events and
--   attribution_distinct_values)
-- grain: role_agent_observations: one row per role and instant at which its agent tag was
--   observed (is_agent: true, false, or NULL where the tags are unknown from then on);
--   role_agent_intervals: one row per role and interval between two of its observations
--   (before the first, where that is a snapshot; after the last)
-- used_by: pipeline/attribute/classify.py (rules agent_role.direct, human.console_agent_role
--   and the agent role of agent_chain.*, through role_agent_intervals), queries principals,
--   untagged_agent_roles and human_roles_via_mcp (role_agent_intervals)
CREATE OR REPLACE TABLE role_agent_observations AS
WITH settings AS (
    SELECT lower(agent_tag_key) AS tag_key, lower(agent_tag_value) AS tag_value
    FROM attribution_settings
),

snapshots AS (
    -- The complete snapshots, one per account and instant: the larger id where two share it.
    SELECT account_id, snapshot_id, taken_at
    FROM (
        SELECT
            account_id,
            snapshot_id,
            taken_at,
            row_number() OVER (
                PARTITION BY account_id, taken_at ORDER BY snapshot_id DESC
            ) AS rank_at_instant
        FROM iam_snapshots
    ) AS ranked
    WHERE rank_at_instant = 1
),

snapshot_roles AS (
    SELECT
        r.account_id,
        r.role_name,
        r.snapshot_id,
        r.taken_at AS observed_at,
        'snapshot ' || r.snapshot_id AS observed_by,
        r.create_date,
        coalesce(bool_or(
            lower(t.tag_key) = s.tag_key AND lower(t.tag_value) = s.tag_value
        ), false) AS is_agent,
        max(CASE WHEN lower(t.tag_key) = s.tag_key THEN t.tag_key || '=' || t.tag_value END)
            AS tag_text
    FROM iam_roles AS r
    CROSS JOIN settings AS s
    LEFT JOIN iam_role_tags AS t
        ON t.snapshot_id = r.snapshot_id AND t.account_id = r.account_id AND t.role_name = r.role_name
    WHERE r.snapshot_id IN (SELECT snapshot_id FROM snapshots)
    GROUP BY ALL
),

role_events AS (
    SELECT *
    FROM attribution_source_events
    WHERE event_source = 'iam.amazonaws.com'
        AND event_name IN ('CreateRole', 'TagRole', 'UntagRole', 'DeleteRole')
        AND error_code IS NULL
),

spellings AS (
    -- Where each spelling of a role name shows, and when: a snapshot's listing (at its time), a
    -- CreateRole (at its time), the calls' sessionIssuer, or, for a call whose record has
    -- none, the role its userIdentity.arn names (as the role was created; no time).
    SELECT account_id, lower(role_name) AS name_key, role_name, source_rank, seen_at
    FROM (
        SELECT account_id, role_name, 3 AS source_rank, observed_at AS seen_at FROM snapshot_roles
        UNION ALL
        SELECT recipient_account_id, request_role_name, 2, event_time
        FROM role_events
        WHERE event_name = 'CreateRole'
        UNION ALL
        SELECT session_issuer_account_id, session_issuer_name, 1, NULL::TIMESTAMPTZ
        FROM attribution_distinct_values
        UNION ALL
        SELECT arn_role_account_id, arn_role_name, 1, NULL::TIMESTAMPTZ
        FROM attribution_distinct_values
    ) AS seen
    WHERE account_id IS NOT NULL AND role_name IS NOT NULL
),

tag_spellings AS (
    -- IAM role names are unique per account whatever their letter case ("Names are not
    -- distinguished by case", IAM API reference, CreateRole), but a TagRole, UntagRole or
    -- DeleteRole names the role as its caller typed it. The role it tagged is the one of that name
    -- (in any case) at its time: the spelling of the nearest snapshot listing or CreateRole at or
    -- before it (a role deleted and re-created in another case is then the new one), else of the
    -- first after it, else the calls' (its own where they show it). A DeleteRole deletes the role
    -- that existed before its second: a CreateRole in that second created the next one (a role
    -- replaced, deleted and created again in another case), so for it only what was seen before
    -- its second is before it.
    SELECT
        e.event_id,
        arg_max(
            n.role_name,
            (
                CASE WHEN n.seen_at IS NULL THEN 0 WHEN b.seen_before THEN 2 ELSE 1 END,
                CASE
                    WHEN n.seen_at IS NULL THEN 0
                    WHEN b.seen_before THEN epoch_us(n.seen_at)
                    ELSE -epoch_us(n.seen_at)
                END,
                n.source_rank,
                n.role_name = e.request_role_name,
                n.role_name
            )
        ) AS role_name
    FROM role_events AS e
    JOIN spellings AS n
        ON n.account_id = e.recipient_account_id AND n.name_key = lower(e.request_role_name)
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN e.event_name = 'DeleteRole' THEN n.seen_at < date_trunc('second', e.event_time)
            ELSE n.seen_at <= e.event_time
        END AS seen_before
    ) AS b
    WHERE e.event_name IN ('TagRole', 'UntagRole', 'DeleteRole')
    GROUP BY e.event_id
),

tag_events AS (
    SELECT
        e.recipient_account_id AS account_id,
        -- A CreateRole spells the role it creates.
        coalesce(s.role_name, e.request_role_name) AS role_name,
        e.event_time AS observed_at,
        e.event_name || ' ' || e.event_id AS observed_by,
        e.event_name,
        e.request_tags AS tags,
        e.request_tag_keys AS tag_keys
    FROM role_events AS e
    LEFT JOIN tag_spellings AS s ON s.event_id = e.event_id
),

tagged AS (
    SELECT
        e.account_id,
        e.role_name,
        e.observed_at,
        e.observed_by,
        e.event_name,
        t.key AS tag_key,
        t.value AS tag_value
    FROM tag_events AS e,
        unnest(coalesce(
            json_transform(e.tags, '[{"key":"VARCHAR","value":"VARCHAR"}]'), []
        )) AS u(t)
    WHERE e.event_name IN ('CreateRole', 'TagRole')
),

create_or_tag AS (
    SELECT
        e.account_id,
        e.role_name,
        e.observed_at,
        e.observed_by,
        coalesce(bool_or(
            lower(t.tag_key) = s.tag_key AND lower(t.tag_value) = s.tag_value
        ), false) AS is_agent,
        max(CASE WHEN lower(t.tag_key) = s.tag_key THEN t.tag_key || '=' || t.tag_value END)
            AS tag_text,
        bool_or(lower(t.tag_key) = s.tag_key) AS touches_key,
        any_value(e.event_name) AS event_name
    FROM tag_events AS e
    CROSS JOIN settings AS s
    LEFT JOIN tagged AS t ON t.observed_by = e.observed_by
    WHERE e.event_name IN ('CreateRole', 'TagRole')
    GROUP BY ALL
),

untag AS (
    SELECT DISTINCT
        e.account_id,
        e.role_name,
        e.observed_at,
        e.observed_by,
        false AS is_agent,
        NULL AS tag_text
    FROM tag_events AS e
    CROSS JOIN settings AS s,
        unnest(coalesce(json_transform(e.tag_keys, '["VARCHAR"]'), [])) AS u(k)
    WHERE e.event_name = 'UntagRole' AND lower(u.k) = s.tag_key
),

deleted AS (
    SELECT account_id, role_name, observed_at, observed_by, false AS is_agent, NULL AS tag_text
    FROM tag_events
    WHERE event_name = 'DeleteRole'
),

events AS (
    -- A TagRole that does not touch the agent key says nothing about it; CreateRole always does.
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text
    FROM create_or_tag
    WHERE event_name = 'CreateRole' OR touches_key
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM untag
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM deleted
),

current_listings AS (
    -- The listings that tell the role at their taken_at: not one whose CreateDate is before a
    -- DeleteRole of the role in a second before taken_at. That listing shows the role that
    -- DeleteRole deleted (a role created again has a later CreateDate): a stale export, taken
    -- before the deletion and imported with a later time, or an eventually consistent listing
    -- that still showed it. A DeleteRole in the CreateDate second may have come before the
    -- creation (a role replaced), one in the taken_at second is placed_snapshots' to order.
    SELECT *
    FROM snapshot_roles AS l
    WHERE NOT EXISTS (
        SELECT 1
        FROM events AS d
        WHERE d.account_id = l.account_id
            AND d.role_name = l.role_name
            AND starts_with(d.observed_by, 'DeleteRole ')
            AND d.observed_at >= date_trunc('second', l.create_date) + INTERVAL 1 SECOND
            AND date_trunc('second', d.observed_at) < date_trunc('second', l.observed_at)
    )
),

known_roles AS (
    SELECT DISTINCT account_id, role_name FROM snapshot_roles
    UNION
    SELECT DISTINCT account_id, role_name FROM events
),

absent AS (
    -- Every snapshot of the account that does not list a role known in the account, unless a
    -- later snapshot lists the role with a CreateDate at or before it: the role existed then,
    -- and this snapshot's file left it out (an export without roles, a hand-trimmed file).
    -- A snapshot that lists no role at all says nothing of any: every AWS account has roles (the
    -- service-linked AWSServiceRoleForSupport and AWSServiceRoleForTrustedAdvisor among them),
    -- so it is an export of other kinds (`--filter User`, which still prints an empty
    -- RoleDetailList), not an account whose roles were all deleted.
    SELECT
        k.account_id,
        k.role_name,
        n.taken_at AS observed_at,
        'snapshot ' || n.snapshot_id || ' (role absent)' AS observed_by,
        false AS is_agent,
        NULL AS tag_text
    FROM known_roles AS k
    JOIN snapshots AS n
        ON n.account_id = k.account_id
        AND n.snapshot_id IN (SELECT snapshot_id FROM snapshot_roles)
    ANTI JOIN snapshot_roles AS p
        ON p.snapshot_id = n.snapshot_id AND p.account_id = k.account_id AND p.role_name = k.role_name
    WHERE NOT EXISTS (
        SELECT 1
        FROM snapshot_roles AS l
        WHERE l.account_id = k.account_id
            AND l.role_name = k.role_name
            AND l.observed_at > n.taken_at
            AND l.create_date <= n.taken_at
    )
),

event_instants AS (
    -- Per role and instant of its events: whether a DeleteRole and a CreateRole are among them.
    SELECT
        account_id,
        role_name,
        observed_at,
        bool_or(starts_with(observed_by, 'DeleteRole ')) AS has_delete,
        bool_or(starts_with(observed_by, 'CreateRole ')) AS has_create
    FROM events
    GROUP BY ALL
),

existence AS (
    -- Whether a role of the name exists after each instant that says so by itself: not after
    -- a DeleteRole without a CreateRole, after any other event, and as each snapshot lists it
    -- or leaves it out. An instant with both a DeleteRole and a CreateRole says nothing here:
    -- after it the role is as it was before it (deleted and created again, or created and
    -- deleted).
    SELECT account_id, role_name, observed_at, NOT has_delete AS role_exists
    FROM event_instants
    WHERE NOT (has_delete AND has_create)
    UNION ALL
    SELECT account_id, role_name, observed_at, true FROM current_listings
    UNION ALL
    SELECT account_id, role_name, observed_at, false FROM absent
),

deleted_last AS (
    -- The instants at which a DeleteRole is the last event of its second. Without a CreateRole
    -- in that second, always: IAM tags a role only while it exists, so a TagRole or UntagRole
    -- that succeeded in the second of a DeleteRole came before it. With one, where the role
    -- did not exist before that second (what last says so before it is a DeleteRole or a
    -- snapshot without the role): the CreateRole came first (no role of an existing name can
    -- be created) and the DeleteRole after it. Where the role existed before, or nothing says,
    -- the role was deleted and created again (infrastructure as code replacing it).
    SELECT i.account_id, i.role_name, i.observed_at
    FROM event_instants AS i
    WHERE i.has_delete
        AND (
            NOT i.has_create
            OR NOT coalesce((
                SELECT arg_max(x.role_exists, x.observed_at)
                FROM existence AS x
                WHERE x.account_id = i.account_id
                    AND x.role_name = i.role_name
                    AND x.observed_at < date_trunc('second', i.observed_at)
            ), true)
        )
),

event_observations AS (
    -- One per role and instant: the DeleteRole where it is the last event of its second
    -- (deleted_last), else the event that makes the role an agent role, else any but a
    -- DeleteRole, else the larger observed_by.
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text
    FROM (
        SELECT
            e.*,
            row_number() OVER (
                PARTITION BY e.account_id, e.role_name, e.observed_at
                ORDER BY
                    starts_with(e.observed_by, 'DeleteRole ') AND d.observed_at IS NOT NULL DESC,
                    e.is_agent DESC,
                    starts_with(e.observed_by, 'DeleteRole ') ASC,
                    e.observed_by DESC
            ) AS rank_at_instant
        FROM events AS e
        LEFT JOIN deleted_last AS d
            ON d.account_id = e.account_id
            AND d.role_name = e.role_name
            AND d.observed_at = e.observed_at
    ) AS ranked
    WHERE rank_at_instant = 1
),

created AS (
    -- A role created after a snapshot that did not list it, or that listed an earlier role of that
    -- name (deleted and re-created since: the later listing's CreateDate is after that snapshot),
    -- or after a DeleteRole of the name, first listed by a later one: from its CreateDate on it is
    -- the role that listing shows (the oldest snapshot after a time applies where nothing in
    -- between says otherwise), not absent, nor the earlier role, until that listing. Where events
    -- of the role fall between its CreateDate and the listing, the listing tells nothing of the
    -- time before them (they changed the key, or may have), and neither do they (an event sets the
    -- key whatever it was): from the CreateDate the role is then of unknown tags, not an agent
    -- role, until its first event; still not the earlier role. Not where an event falls in the
    -- CreateDate's own second: that is the CreateRole, which says it all.
    SELECT
        l.account_id,
        l.role_name,
        l.create_date AS observed_at,
        l.observed_by || ' (role created ' || strftime(timezone('UTC', l.create_date), '%Y-%m-%dT%H:%M:%SZ')
            || CASE WHEN w.events_between THEN '; its tags unknown until its next event' ELSE '' END
            || ')' AS observed_by,
        -- Unknown (NULL): no agent role for the classification, 'unknown' for the reports.
        CASE WHEN NOT w.events_between THEN l.is_agent END AS is_agent,
        CASE WHEN NOT w.events_between THEN l.tag_text END AS tag_text
    FROM snapshot_roles AS l
    CROSS JOIN LATERAL (
        SELECT EXISTS (
            SELECT 1
            FROM event_observations AS e
            WHERE e.account_id = l.account_id
                AND e.role_name = l.role_name
                AND e.observed_at >= date_trunc('second', l.create_date)
                AND e.observed_at < l.observed_at
        ) AS events_between
    ) AS w
    WHERE l.create_date < l.observed_at
        -- The first listing of this role since its CreateDate.
        AND NOT EXISTS (
            SELECT 1
            FROM snapshot_roles AS m
            WHERE m.account_id = l.account_id
                AND m.role_name = l.role_name
                AND m.observed_at > l.create_date
                AND m.observed_at < l.observed_at
        )
        AND (
            EXISTS (
                SELECT 1
                FROM absent AS a
                WHERE a.account_id = l.account_id
                    AND a.role_name = l.role_name
                    AND a.observed_at < l.create_date
            )
            OR EXISTS (
                SELECT 1
                FROM snapshot_roles AS p
                WHERE p.account_id = l.account_id
                    AND p.role_name = l.role_name
                    AND p.observed_at < l.create_date
            )
            OR EXISTS (
                SELECT 1
                FROM event_observations AS d
                WHERE d.account_id = l.account_id
                    AND d.role_name = l.role_name
                    AND starts_with(d.observed_by, 'DeleteRole ')
                    AND d.observed_at < l.create_date
            )
        )
        AND NOT EXISTS (
            SELECT 1
            FROM event_observations AS e
            WHERE e.account_id = l.account_id
                AND e.role_name = l.role_name
                AND date_trunc('second', e.observed_at) = date_trunc('second', l.create_date)
        )
),

snapshot_observations AS (
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM current_listings
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM absent
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM created
),

event_seconds AS (
    -- The state events leave at the end of each second they fall in: the last one's.
    SELECT
        account_id,
        role_name,
        date_trunc('second', observed_at) AS second,
        arg_max(is_agent, observed_at) AS is_agent
    FROM event_observations
    GROUP BY ALL
),

placed_snapshots AS (
    -- A snapshot in the second of events of the role: before them where it disagrees with them
    -- (one microsecond before the second), left out where it agrees.
    SELECT
        s.account_id,
        s.role_name,
        CASE
            WHEN e.second IS NULL THEN s.observed_at
            ELSE e.second - INTERVAL 1 MICROSECOND
        END AS observed_at,
        s.observed_by,
        s.is_agent,
        s.tag_text,
        e.second IS NOT NULL AS placed_before_events
    FROM snapshot_observations AS s
    LEFT JOIN event_seconds AS e
        ON e.account_id = s.account_id
        AND e.role_name = s.role_name
        AND e.second = date_trunc('second', s.observed_at)
    WHERE e.second IS NULL OR e.is_agent IS DISTINCT FROM s.is_agent
),

final AS (
    -- One observation per role and instant: events and snapshots no longer share one (above),
    -- and a snapshot placed before the events of its second gives way to an observation made
    -- at that very microsecond.
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text
    FROM (
        SELECT
            *,
            row_number() OVER (
                PARTITION BY account_id, role_name, observed_at
                ORDER BY placed_before_events, observed_by DESC
            ) AS rank_at_instant
        FROM (
            SELECT * FROM placed_snapshots
            UNION ALL
            SELECT *, false AS placed_before_events FROM event_observations
        ) AS placed
    ) AS ranked
    WHERE rank_at_instant = 1
)

SELECT * FROM final;

CREATE OR REPLACE TABLE role_agent_intervals AS
-- Each observation holds from its time to the role's next one. role_agent_observations has one
-- row per role and instant, so the intervals never overlap (were two at one instant, the one
-- with the larger observed_by would hold from it). Before the first observation a snapshot
-- still applies (the oldest one after the period, issue 3), an event does not: it sets the key
-- whatever it was before, so neither it nor a later snapshot tells that.
-- 'infinity' and '-infinity' close the open ends, so that every reader tests one condition,
-- valid_from <= t < valid_to, and none re-derives which observation applies.
WITH ordered AS (
    SELECT
        account_id,
        role_name,
        observed_at,
        observed_by,
        is_agent,
        lead(observed_at) OVER w AS next_observed_at,
        row_number() OVER w AS n
    FROM role_agent_observations
    WINDOW w AS (PARTITION BY account_id, role_name ORDER BY observed_at, observed_by)
)

SELECT
    account_id,
    role_name,
    observed_at AS valid_from,
    coalesce(next_observed_at, 'infinity'::TIMESTAMPTZ) AS valid_to,
    is_agent,
    observed_by
FROM ordered
WHERE next_observed_at IS NULL OR next_observed_at > observed_at
UNION ALL
SELECT
    account_id,
    role_name,
    '-infinity'::TIMESTAMPTZ AS valid_from,
    observed_at AS valid_to,
    is_agent,
    observed_by
FROM ordered
WHERE n = 1 AND observed_by LIKE 'snapshot %';
