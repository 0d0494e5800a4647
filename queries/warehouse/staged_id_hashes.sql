-- name: staged_id_hashes
-- description: DuckDB's 64-bit hash of every eventID of a staged ingest batch. The commit
--   compares them with the hashes of the eventIDs already in the warehouse, which it keeps in
--   memory for the run, and with each other: only when one repeats can the batch hold a
--   duplicate, and only then does it run the exact check (staged_duplicates), which reads
--   every eventID in events/.
-- params: none (reads the relation staged_event_ids: the eventIDs the parse processes sent
--   back with the staged files, or the files' event_id column)
-- grain: one row per staged row
-- used_by: pipeline/warehouse/commit.py
SELECT hash(event_id) AS id_hash
FROM staged_event_ids
