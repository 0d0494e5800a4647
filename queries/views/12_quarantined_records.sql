-- name: 12_quarantined_records
-- description: Records that could not become events, kept as found with the reason, one row
--   per source object and record position (the newest sighting).
-- params: none
-- grain: one row per quarantined record (uri, record_index)
-- used_by: analysts; the ingest summary points here
CREATE OR REPLACE VIEW quarantined_records AS
SELECT *
FROM quarantined_records_history
QUALIFY row_number() OVER (PARTITION BY uri, record_index ORDER BY recorded_at DESC) = 1;
