-- name: 10_role_agent_timeline
-- description: When each IAM role was an agent role. Observations come from every imported IAM
--   snapshot (the role's tags at taken_at) and from CreateRole, TagRole and UntagRole events in
--   the logs (valid from the event's time), so a role created or tagged during the period counts
--   without a new snapshot. Only changes of the agent tag key matter. Role names are unique per
--   account, so roles are keyed by (account_id, role_name): TagRole events carry no path.
-- params: none (reads the tables attribution_settings and attribution_source_events)
-- grain: one row per observation of a role's agent tag
-- used_by: pipeline/attribute/classify.py (rule 4)
CREATE OR REPLACE TABLE role_agent_observations AS
WITH settings AS (
    SELECT lower(agent_tag_key) AS tag_key, lower(agent_tag_value) AS tag_value
    FROM attribution_settings
),

snapshot_roles AS (
    SELECT
        r.account_id,
        r.role_name,
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

final AS (
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM snapshot_roles
    UNION ALL
    -- A TagRole that does not touch the agent key says nothing about it; CreateRole always does.
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text
    FROM create_or_tag
    WHERE event_name = 'CreateRole' OR touches_key
    UNION ALL
    SELECT account_id, role_name, observed_at, observed_by, is_agent, tag_text FROM untag
)

SELECT * FROM final;
