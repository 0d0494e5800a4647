-- name: id_hash_repeats
-- description: How many staged rows share an eventID hash with another staged row or with an
--   event already in the warehouse. Zero means the batch holds no duplicate eventID (equal
--   ids have equal hashes), so every staged file can be renamed into place as it is.
-- params: none (reads the relations staged_id_hashes and known_id_hashes)
-- grain: one row
-- used_by: pipeline/warehouse/commit.py
WITH repeated_in_batch AS (
    SELECT count(*) AS n
    FROM (SELECT id_hash FROM staged_id_hashes GROUP BY id_hash HAVING count(*) > 1)
),

already_known AS (
    SELECT count(*) AS n
    FROM staged_id_hashes
    WHERE id_hash IN (SELECT id_hash FROM known_id_hashes)
)

SELECT repeated_in_batch.n + already_known.n AS repeats
FROM repeated_in_batch, already_known
