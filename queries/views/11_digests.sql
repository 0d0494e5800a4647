-- name: 11_digests
-- description: CloudTrail digest objects seen by ingest, one row per object (the newest
--   sighting), with their S3 signature metadata and gunzipped body for the integrity check.
--   digests_history keeps one row per object per run whose manifest recorded it.
-- params: none
-- grain: one row per digest object uri
-- used_by: the evidence bundle (later); analysts
CREATE OR REPLACE VIEW digests AS
SELECT *
FROM digests_history
QUALIFY row_number() OVER (PARTITION BY uri ORDER BY recorded_at DESC) = 1;
