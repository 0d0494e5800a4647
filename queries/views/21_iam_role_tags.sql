-- name: 21_iam_role_tags
-- description: Role tags as rows, from every complete IAM snapshot (listed in iam_snapshots: the
--   iam_roles view keeps no other, so an import that failed half-way adds none). Role tags
--   (Usage=Agent marks an agent role, rule 4) never appear in CloudTrail's STS or downstream
--   records (facts doc s.3), so the IAM inventory is their source; keep every snapshot and filter
--   on the one that applies (pipeline/iam/choice.py). Keys and values are kept as IAM returns
--   them; compare values case-insensitively where the rule says so. Plain SQL: map_entries +
--   unnest exist in DuckDB, Trino and Spark alike.
-- params: none
-- grain: one row per tag per role per snapshot
-- used_by: attribution (agent roles); analysts
CREATE OR REPLACE VIEW iam_role_tags AS
WITH roles AS (
    SELECT account_id, role_name, arn, tags, snapshot_id, taken_at
    FROM iam_roles
),

final AS (
    SELECT
        roles.account_id,
        roles.role_name,
        roles.arn AS role_arn,
        entry.tag.key AS tag_key,
        entry.tag.value AS tag_value,
        roles.snapshot_id,
        roles.taken_at
    FROM roles
    CROSS JOIN unnest(map_entries(roles.tags)) AS entry (tag)
)

SELECT * FROM final;
