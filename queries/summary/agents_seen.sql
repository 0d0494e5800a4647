-- name: agents_seen
-- description: Every agent identity seen, by access path, with its first and last day: the
--   second table of the demo summary.
-- params: none
-- grain: one row per agent_name and access_path
-- used_by: pipeline/demo.py
WITH agent_events AS (
    SELECT agent_name, access_path, event_time
    FROM events_classified
    WHERE actor_kind = 'agent'
),

final AS (
    SELECT
        agent_name,
        access_path,
        count(*) AS events,
        CAST(min(event_time) AS DATE) AS first_seen,
        CAST(max(event_time) AS DATE) AS last_seen
    FROM agent_events
    GROUP BY agent_name, access_path
)

SELECT * FROM final ORDER BY agent_name, access_path
