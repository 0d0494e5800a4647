-- name: actors_and_paths
-- description: How many events each kind of actor made through each access path; the first
--   table of the demo summary and of `agenttrail ingest` output on a new warehouse.
-- params: none
-- grain: one row per actor_kind and access_path
-- used_by: pipeline/demo.py
WITH classified AS (
    SELECT actor_kind, access_path FROM events_classified
),

final AS (
    SELECT actor_kind, access_path, count(*) AS events
    FROM classified
    GROUP BY actor_kind, access_path
)

SELECT * FROM final ORDER BY actor_kind, access_path
