-- name: 10_manifest
-- description: The current state of every source object: the newest manifest row per uri.
--   manifest_history keeps every sighting (one row per object per run that looked at it).
-- params: none
-- grain: one row per source object uri
-- used_by: agenttrail ingest (incremental decisions are made in Python from the same files); analysts
CREATE OR REPLACE VIEW manifest AS
SELECT *
FROM manifest_history
QUALIFY row_number() OVER (PARTITION BY uri ORDER BY recorded_at DESC) = 1;
