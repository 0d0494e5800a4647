-- name: staged_duplicates
-- description: Rows of a staged ingest batch that must not reach events/, so that the
--   warehouse holds exactly one row per eventID. Within a batch the copy kept is the one with
--   the smallest source_uri, then the smallest record index; across runs the copy already in
--   the warehouse wins (rows in events/ are never rewritten).
-- params: files VARCHAR[] (required)
-- grain: one row per staged row to drop
-- used_by: pipeline/warehouse/commit.py
WITH staged AS (
    SELECT event_id, source_uri, source_record_index, filename, file_row_number
    FROM read_parquet($files, filename = true, file_row_number = true, hive_partitioning = false)
),

repeated_ids AS (
    SELECT event_id FROM staged GROUP BY event_id HAVING count(*) > 1
),

later_copies AS (
    SELECT filename, file_row_number, source_uri, 'batch' AS kept_copy
    FROM (
        SELECT
            *,
            row_number() OVER (
                PARTITION BY event_id ORDER BY source_uri, source_record_index
            ) AS copy_rank
        FROM staged
        WHERE event_id IN (SELECT event_id FROM repeated_ids)
    )
    WHERE copy_rank > 1
),

already_kept AS (
    SELECT filename, file_row_number, source_uri, 'warehouse' AS kept_copy
    FROM staged
    WHERE event_id IN (SELECT event_id FROM existing_event_ids)
),

final AS (
    SELECT filename, file_row_number, source_uri, min(kept_copy) AS kept_copy
    FROM (SELECT * FROM later_copies UNION ALL SELECT * FROM already_kept)
    GROUP BY ALL
)

SELECT * FROM final
