-- name: warehouse_id_hashes
-- description: DuckDB's 64-bit hash of every eventID in events/ (read once per ingest run,
--   before its first commit; later commits add their own).
-- params: none (reads the view existing_event_ids)
-- grain: one row per event in the warehouse
-- used_by: pipeline/warehouse/commit.py
SELECT hash(event_id) AS id_hash
FROM existing_event_ids
