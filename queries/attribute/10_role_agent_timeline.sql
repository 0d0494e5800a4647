-- name: 10_role_agent_timeline
-- description: When each IAM role was an agent role. Observations come from the imported IAM
--   snapshots (the role's tags at taken_at) and from CreateRole, TagRole and UntagRole events in
--   the logs (valid from the event's time), so a role created or tagged during the period counts
--   without a new snapshot. Only changes of the agent tag key matter. Role names are unique per
--   account, so roles are keyed by (account_id, role_name): TagRole events carry no path. Only
--   complete snapshots count (listed in iam_snapshots: the iam_roles view keeps no other), one per
--   account and taken_at (two of one account at one time, which imports now refuse unless they
--   agree: the larger snapshot id, as pipeline/iam/choice.py and principals.sql choose). A
--   snapshot lists every role of its account at its time, so what was observed of a role before
--   it ends there: a role the next snapshot of its account does not list gets an observation
--   'snapshot <id> (role absent)', not an agent role (a role deleted, or re-created untagged; a
--   later CreateRole or TagRole still applies from its time). One observation per role and
--   instant: a snapshot's wins over events at the same instant; among events of one instant
--   (CloudTrail times have whole seconds), the one that makes the role an agent role wins, so an
--   UntagRole and a TagRole of the key in one second (infrastructure as code re-writing a key's
--   letter case: untag usage, tag Usage) leave it tagged; then the larger observed_by.
-- params: none (reads the tables attribution_settings and attribution_source_events)
-- grain: one row per role and instant at which its agent tag was observed
-- used_by: pipeline/attribute/classify.py (rule 4)
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

tag_events AS (
    SELECT
        recipient_account_id AS account_id,
        request_role_name AS role_name,
        event_time AS observed_at,
        event_name || ' ' || event_id AS observed_by,
        event_name,
        request_tags AS tags,
        request_tag_keys AS tag_keys
    FROM attribution_source_events
    WHERE event_source = 'iam.amazonaws.com'
        AND event_name IN ('CreateRole', 'TagRole', 'UntagRole')
        AND error_code IS NULL
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

events AS (
    -- A TagRole that does not touch the agent key says nothing about it; CreateRole always does.
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text
    FROM create_or_tag
    WHERE event_name = 'CreateRole' OR touches_key
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM untag
),

observed AS (
    SELECT account_id, role_name, observed_at FROM snapshot_roles
    UNION ALL
    SELECT account_id, role_name, observed_at FROM events
),

next_snapshot AS (
    -- The first snapshot of the account after each observation, where the observation ends.
    SELECT DISTINCT o.account_id, o.role_name, n.snapshot_id, n.taken_at
    FROM observed AS o
    ASOF JOIN snapshots AS n ON n.account_id = o.account_id AND n.taken_at > o.observed_at
),

absent AS (
    SELECT
        x.account_id,
        x.role_name,
        x.taken_at AS observed_at,
        'snapshot ' || x.snapshot_id || ' (role absent)' AS observed_by,
        false AS is_agent,
        NULL AS tag_text
    FROM next_snapshot AS x
    ANTI JOIN snapshot_roles AS p
        ON p.snapshot_id = x.snapshot_id AND p.role_name = x.role_name
),

candidates AS (
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text, 0 AS source_rank
    FROM snapshot_roles
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text, 0 AS source_rank
    FROM absent
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text, 1 AS source_rank
    FROM events
),

final AS (
    -- One observation per role and instant: the snapshot's, else the event that tags the role,
    -- else the larger observed_by.
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text
    FROM (
        SELECT
            *,
            row_number() OVER (
                PARTITION BY account_id, role_name, observed_at
                ORDER BY source_rank, is_agent DESC, observed_by DESC
            ) AS rank_at_instant
        FROM candidates
    ) AS ranked
    WHERE rank_at_instant = 1
)

SELECT * FROM final;
