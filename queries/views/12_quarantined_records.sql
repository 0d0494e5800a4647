-- name: 12_quarantined_records
-- description: Records that could not become events, kept as found with the reason, one row
--   per source object and record position: those of the object as the manifest has it now (the
--   run of its newest manifest row), so a record fixed in a rewritten, re-ingested object is
--   gone, as the manifest's quarantined_records count says. quarantined_records_history keeps
--   the rows of every run whose manifest recorded the object (not those of a run killed
--   before its manifest write, which the re-run writes again).
-- params: none
-- grain: one row per quarantined record (uri, record_index)
-- used_by: analysts; the ingest summary points here
CREATE OR REPLACE VIEW quarantined_records AS
SELECT q.*
FROM quarantined_records_history AS q
SEMI JOIN manifest AS m ON q.uri = m.uri AND q.run_id = m.run_id
QUALIFY row_number() OVER (PARTITION BY q.uri, q.record_index ORDER BY q.recorded_at DESC) = 1;
