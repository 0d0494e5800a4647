-- name: principals
-- description: Who acts in these accounts, and as what? Every principal seen in the period with the
--   kinds of actor its calls were classified as, the tags that mark it, and when it was first and
--   last seen: the inventory a review starts from. The principal is the IAM identity (the role ARN
--   for sessions, the user ARN, the web-identity subject, or the AWS service). A role used both by
--   a person and by an agent (a person's role used through MCP) shows both kinds. Columns:
--   principal, principal_types (userIdentity.type values), accounts (recipient accounts),
--   primary_kind (the actor_kind of most of its calls; ties by name), actor_kinds, calls,
--   agent_calls, human_calls, workload_calls, service_calls, unknown_calls, agent_names, people
--   (human_id values; lists are comma-separated), first_seen and last_seen (UTC), in_iam_snapshot
--   (the role or user is in the IAM snapshot that applies to the period: per account and kind,
--   among the snapshots that list any role for a role and any user for a user, the newest taken
--   at or before its end, else the oldest after it, with a notice from `agenttrail query run`;
--   of two taken at one time, the larger snapshot id, as pipeline/iam/choice.py and the
--   attribution's role timeline choose. A snapshot that lists no role, or no user, says nothing
--   of that kind: an export with `--filter Role` prints an empty UserDetailList, one with
--   `--filter User` an empty RoleDetailList, and an account without IAM users (Identity Center
--   sign-in only) cannot be told from such an export. NULL when no snapshot of the account in
--   its ARN lists its kind, or, for another principal, when no snapshot of that account (none
--   at all where its ARN names none, such as an AWS service's) was imported),
--   iam_tags (its tags in that snapshot, key=value),
--   agent_role (for roles, from the calls of their sessions, and for the session ARN that is
--   the principal of calls whose records name no sessionIssuer, from the role the rules read
--   for its latest call, the role of the session its key joins, else the one the ARN names:
--   tagged as an agent role at
--   last_seen, read from role_agent_intervals, the intervals the classification's rules join
--   (IAM snapshots and CreateRole/TagRole/UntagRole/DeleteRole events): the newest observation at or
--   before last_seen, else the role's first observation where that is a snapshot, which applies
--   backwards; false after a snapshot of its account that does not list it; NULL where none
--   applies, as for the classification, which then takes the role for no agent role: no IAM
--   data names the role, or its first observation is a tag event after last_seen, which says
--   nothing of the time before it, whatever a later snapshot shows (import an older snapshot),
--   or the one that applies leaves its tags unknown (a role re-created between two snapshots,
--   before its first tag event); NULL for every other principal, an IAM user too whatever role
--   shares its name: the session issuer of a
--   FederatedUser is the IAM user that called GetFederationToken), agent_role_observed_by (the
--   observation that decided: 'snapshot <id>', 'snapshot <id> (role absent)', 'snapshot <id>
--   (role created <time>)', 'snapshot <id> (role created <time>; its tags unknown until its
--   next event)' or '<event name> <event id>'),
--   session_tags (effective tags of the STS sessions its calls used, key=value).
-- params: since TIMESTAMPTZ = NULL; until TIMESTAMPTZ = NULL; account VARCHAR = NULL; principal VARCHAR = NULL
-- grain: one row per principal (IAM identity or AWS service)
-- used_by: analysts; quarterly report (later)
WITH classified AS NOT MATERIALIZED (
    SELECT
        event_time,
        recipient_account_id,
        principal_type,
        actor_kind,
        agent_name,
        human_id,
        access_key_id,
        -- The role of a role session as the rules read it (NULL for other identities).
        role_account_id,
        role_name,
        principal
    FROM events_classified
    WHERE ($since IS NULL OR event_time >= $since)
        AND ($until IS NULL OR event_time < $until)
        AND ($account IS NULL OR recipient_account_id = $account)
        AND (
            $principal IS NULL
            OR $principal IN (principal, principal_arn, agent_name, human_id)
        )
),

snapshots AS (
    SELECT account_id, snapshot_id, taken_at, roles, users FROM iam_snapshots
),

snapshot_kinds AS (
    -- What each snapshot speaks of: the roles of its account where it lists any role, its users
    -- where it lists any user (an empty list is an export of other kinds: it says nothing).
    SELECT account_id, snapshot_id, taken_at, 'role' AS kind FROM snapshots WHERE roles > 0
    UNION ALL
    SELECT account_id, snapshot_id, taken_at, 'user' AS kind FROM snapshots WHERE users > 0
),

chosen_snapshots AS (
    -- Per account and kind: the newest snapshot listing that kind taken at or before the end of
    -- the period, else the oldest; of two taken at one time, the larger snapshot id
    -- (pipeline/iam/choice.py).
    SELECT account_id, kind, snapshot_id
    FROM (
        SELECT
            account_id,
            kind,
            snapshot_id,
            row_number() OVER (
                PARTITION BY account_id, kind
                ORDER BY
                    CASE WHEN $until IS NULL OR taken_at <= $until THEN 0 ELSE 1 END,
                    CASE
                        WHEN $until IS NULL OR taken_at <= $until THEN taken_at
                    END DESC NULLS LAST,
                    taken_at,
                    snapshot_id DESC
            ) AS choice
        FROM snapshot_kinds
    ) AS ranked
    WHERE choice = 1
),

iam_identities AS (
    SELECT r.arn, r.tags
    FROM iam_roles AS r
    JOIN chosen_snapshots AS c ON c.snapshot_id = r.snapshot_id AND c.kind = 'role'
    UNION ALL
    SELECT u.arn, u.tags
    FROM iam_users AS u
    JOIN chosen_snapshots AS c ON c.snapshot_id = u.snapshot_id AND c.kind = 'user'
),

iam_tag_text AS (
    SELECT
        i.arn,
        string_agg(t.tag.key || '=' || t.tag.value, ',' ORDER BY t.tag.key) AS iam_tags
    FROM iam_identities AS i
    CROSS JOIN unnest(map_entries(i.tags)) AS t (tag)
    GROUP BY i.arn
),

per_identity AS (
    -- One pass over the events, into few groups (principal and who acted as what, where); the
    -- per-principal figures and lists roll up from these.
    SELECT
        principal,
        principal_type,
        recipient_account_id,
        actor_kind,
        agent_name,
        human_id,
        count(*) AS calls,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen,
        -- The role of a role session, as the rules read it (events_classified: the
        -- sessionIssuer, else the role of the session the key joins, else the one
        -- userIdentity.arn names), at its latest call that has one: the calls of one session
        -- ARN may read different roles (a key that joins a session of another role than the
        -- ARN names, and one that joins none). Of two at one time, the larger.
        max({'at': event_time, 'account_id': role_account_id, 'name': role_name})
            FILTER (WHERE role_name IS NOT NULL) AS last_role
    FROM classified
    GROUP BY ALL
),

kind_counts AS (
    SELECT
        principal,
        actor_kind,
        row_number() OVER (PARTITION BY principal ORDER BY sum(calls) DESC, actor_kind) AS kind_rank
    FROM per_identity
    GROUP BY principal, actor_kind
),

per_principal AS (
    SELECT
        principal,
        string_agg(DISTINCT principal_type, ',' ORDER BY principal_type) AS principal_types,
        string_agg(DISTINCT recipient_account_id, ',' ORDER BY recipient_account_id) AS accounts,
        string_agg(DISTINCT actor_kind, ',' ORDER BY actor_kind) AS actor_kinds,
        sum(calls)::BIGINT AS calls,
        coalesce(sum(calls) FILTER (WHERE actor_kind = 'agent'), 0)::BIGINT AS agent_calls,
        coalesce(sum(calls) FILTER (WHERE actor_kind = 'human'), 0)::BIGINT AS human_calls,
        coalesce(sum(calls) FILTER (WHERE actor_kind = 'workload'), 0)::BIGINT AS workload_calls,
        coalesce(sum(calls) FILTER (WHERE actor_kind = 'service'), 0)::BIGINT AS service_calls,
        coalesce(sum(calls) FILTER (WHERE actor_kind = 'unknown'), 0)::BIGINT AS unknown_calls,
        string_agg(DISTINCT agent_name, ',' ORDER BY agent_name) AS agent_names,
        string_agg(DISTINCT human_id, ',' ORDER BY human_id) AS people,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        max(last_role) AS last_role,
        -- The account the ARN names: a role or user ARN (iam), or a session ARN (sts).
        nullif(regexp_extract(principal, '^arn:[^:]+:(iam|sts)::(\d{12}):', 2), '')
            AS principal_account,
        CASE
            WHEN regexp_matches(principal, '^arn:[^:]+:iam::\d{12}:role/') THEN 'role'
            WHEN regexp_matches(principal, '^arn:[^:]+:iam::\d{12}:user/') THEN 'user'
        END AS principal_kind,
        -- The principal of the calls whose records name no sessionIssuer: their session ARN,
        -- which names the role (no snapshot lists a session).
        regexp_matches(principal, '^arn:[^:]+:sts::\d{12}:assumed-role/') AS role_session
    FROM per_identity
    GROUP BY principal
),

role_state AS (
    -- The agent tag at last_seen of the role the latest call read: the interval of
    -- role_agent_intervals that covers it, the very row the rules of the classification join
    -- for a call of the role at that time (10_role_agent_timeline.sql says which observation
    -- decides), so agent_role is what the verdicts took the role for, by construction. At most
    -- one interval covers a time; none before a first observation that is a tag event
    -- (agent_role NULL).
    SELECT p.principal, i.is_agent, i.observed_by
    FROM per_principal AS p
    JOIN role_agent_intervals AS i
        ON i.account_id = p.last_role.account_id
        AND i.role_name = p.last_role.name
        AND i.valid_from <= p.last_seen
        AND p.last_seen < i.valid_to
    -- Roles only: an IAM user named as a role is not that role.
    WHERE p.principal_kind = 'role' OR p.role_session
),

session_tag_text AS (
    SELECT principal, string_agg(DISTINCT tag_text, ',' ORDER BY tag_text) AS session_tags
    FROM (
        -- Join first: few calls use a key of the sessions table, and millions of distinct keys
        -- are not worth deduplicating.
        SELECT k.principal, t.tag.key || '=' || t.tag.value AS tag_text
        FROM classified AS k
        JOIN sessions AS s ON s.issued_key = k.access_key_id
        CROSS JOIN unnest(map_entries(s.effective_tags)) AS t (tag)
    ) AS tags
    GROUP BY principal
),

final AS (
    SELECT
        p.principal,
        p.principal_types,
        p.accounts,
        k.actor_kind AS primary_kind,
        p.actor_kinds,
        p.calls,
        p.agent_calls,
        p.human_calls,
        p.workload_calls,
        p.service_calls,
        p.unknown_calls,
        p.agent_names,
        p.people,
        p.first_seen,
        p.last_seen,
        CASE
            WHEN EXISTS (SELECT 1 FROM iam_identities AS i WHERE i.arn = p.principal) THEN true
            -- Not listed: false where a snapshot could have listed it, else unknown. A role or a
            -- user only by a snapshot of its account that lists its kind.
            WHEN p.principal_kind IS NOT NULL THEN CASE
                WHEN EXISTS (
                    SELECT 1
                    FROM chosen_snapshots AS c
                    WHERE c.account_id = p.principal_account AND c.kind = p.principal_kind
                ) THEN false
            END
            WHEN EXISTS (
                SELECT 1
                FROM snapshots AS n
                WHERE n.account_id = p.principal_account OR p.principal_account IS NULL
            ) THEN false
        END AS in_iam_snapshot,
        t.iam_tags,
        r.is_agent AS agent_role,
        r.observed_by AS agent_role_observed_by,
        s.session_tags
    FROM per_principal AS p
    JOIN kind_counts AS k ON k.principal = p.principal AND k.kind_rank = 1
    LEFT JOIN iam_tag_text AS t ON t.arn = p.principal
    LEFT JOIN role_state AS r ON r.principal = p.principal
    LEFT JOIN session_tag_text AS s ON s.principal = p.principal
)

SELECT * FROM final
ORDER BY principal;
