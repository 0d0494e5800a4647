"""Run the attribution SQL and materialise its results.

Configuration reaches the SQL as rows of temp tables filled with bound parameters
(attribution_settings, attribution_patterns, user_agent_markers), never as SQL text. Results
are written to a new generation folder under derived/ and then published by rewriting
derived/CURRENT, so readers never see half a rebuild. A generation holds the derived tables,
events_classified/ (per events file, its columns and the verdict columns), the schema of
events_classified for an empty warehouse, and FORMAT (the generation's shape).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.attribute.markers import USER_AGENT_MARKERS
from pipeline.config import AttributionSettings, Settings
from pipeline.errors import WarehouseError
from pipeline.resources import queries_dir
from pipeline.sqlfile import parse_sql_file
from pipeline.warehouse.column_append import append_columns, row_group_rows
from pipeline.warehouse.connect import (
    CLASSIFIED_FOLDER,
    GENERATION_FORMAT,
    HIVE_TYPES,
    connect,
    define_views,
    sql_literal,
)
from pipeline.warehouse.files import ZSTD_LEVEL
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.lock import writer_lock

# Derived tables written per rebuild, one Parquet file each.
DERIVED_TABLES = (
    "sessions",
    "mcp_tool_calls",
    "mcp_grants",
    "role_agent_observations",
    "attribution_rules",
)
# Verdict rows DuckDB hands over per Arrow batch: bounds the memory of the sorted stream.
VERDICT_BATCH_ROWS = 122_880


@dataclass(frozen=True)
class AttributionSummary:
    generation: str
    events: int
    sessions: int
    by_actor: dict[str, int]
    rules_version: str
    seconds: float


def _settings_tables(con: duckdb.DuckDBPyConnection, cfg: AttributionSettings) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE attribution_settings ("
        " agent_tag_key VARCHAR, agent_tag_value VARCHAR, mcp_server_tag_key VARCHAR,"
        " chain_max_depth INTEGER, rules_version VARCHAR)"
    )
    con.execute(
        "INSERT INTO attribution_settings VALUES ($key, $value, $mcp_key, $depth, $version)",
        {
            "key": cfg.agent_tag_key,
            "value": cfg.agent_tag_value,
            "mcp_key": cfg.mcp_server_tag_key,
            "depth": cfg.chain_max_depth,
            "version": cfg.rules_version(),
        },
    )
    con.execute("CREATE OR REPLACE TEMP TABLE attribution_patterns (kind VARCHAR, pattern VARCHAR)")
    patterns: list[tuple[str, str]] = [
        *(("mcp_principal", p) for p in cfg.mcp_service_principals),
        ("mcp_principal", "%-mcp.amazonaws.com"),
        *(("mcp_oauth_resource", p) for p in cfg.mcp_oauth_resource_patterns),
        *(("agent_source_identity", p) for p in cfg.agent_source_identity_patterns),
        *(("mcp_source_identity", p) for p in cfg.mcp_source_identity_patterns),
        *(("agent_role", p) for p in cfg.agent_role_patterns),
        *(("workload_web_identity_provider", p) for p in cfg.workload_web_identity_providers),
        *(("workload_role", p) for p in cfg.workload_role_patterns),
        *(("workload_user", p) for p in cfg.workload_user_patterns),
    ]
    if patterns:
        con.executemany("INSERT INTO attribution_patterns VALUES ($1, $2)", patterns)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE user_agent_markers"
        " (priority INTEGER, client VARCHAR, pattern VARCHAR, source VARCHAR)"
    )
    con.executemany("INSERT INTO user_agent_markers VALUES ($1, $2, $3, $4)", USER_AGENT_MARKERS)


def _ensure_iam_views(con: duckdb.DuckDBPyConnection) -> None:
    """Attribution reads IAM snapshots; a warehouse without any gets empty stand-ins."""
    names = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    if "iam_roles" not in names:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW iam_roles AS SELECT NULL::VARCHAR AS snapshot_id,"
            " NULL::VARCHAR AS account_id, NULL::VARCHAR AS role_name,"
            " NULL::TIMESTAMPTZ AS taken_at WHERE false"
        )
    if "iam_role_tags" not in names:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW iam_role_tags AS SELECT NULL::VARCHAR AS snapshot_id,"
            " NULL::VARCHAR AS account_id, NULL::VARCHAR AS role_name, NULL::VARCHAR AS role_arn,"
            " NULL::VARCHAR AS tag_key, NULL::VARCHAR AS tag_value, NULL::TIMESTAMPTZ AS taken_at"
            " WHERE false"
        )


def _events_with_positions(con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """attribution_events: the events of `files` (listed once per rebuild) with each row's
    file_index in that list and its row number in the file: the order events_classified is
    written in."""
    if files:
        listed = ", ".join(sql_literal(str(f)) for f in files)
        con.execute(
            "CREATE OR REPLACE TEMP VIEW attribution_events AS SELECT *, file_index"
            f" FROM read_parquet([{listed}], hive_partitioning = true, hive_types = {HIVE_TYPES},"
            " union_by_name = true, file_row_number = true)"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW attribution_events AS SELECT *,"
            " NULL::UBIGINT AS file_index, NULL::BIGINT AS file_row_number FROM events"
        )


def _write_classified(
    con: duckdb.DuckDBPyConnection, files: list[Path], layout: Layout, out: Path
) -> Counter[str]:
    """Materialise events_classified: per partition folder of events/, one file under `out`
    (named after the folder's first events file) holding the folder's events files' rows in
    order, their columns followed by the verdict columns.

    DuckDB computes only the narrow verdicts, sorted by file and row; pyarrow writes each
    partition's verdicts with its events files' row groups, and warehouse/column_append.py
    joins them at the Parquet level: the event columns' pages are copied as bytes, never
    decoded and re-encoded (which cost three times the whole classification). Queries then
    read plain Hive-partitioned Parquet, in parallel and with filter pushdown.

    The classification carries each event's rule number; what the rule concludes (name,
    actor, path, confidence, from attribution_rules) is looked up after the sort from lists
    bound as parameters, so the sort moves integers, not names.

    Returns the event count per actor_kind.
    """
    by_actor: Counter[str] = Counter()
    if not files:
        return by_actor
    shapes = _file_shapes(con, files)
    # The ORDER BY is what aligns the rows; order preservation keeps it through the stream.
    con.execute("SET preserve_insertion_order = true")
    sql, params = _verdicts_query(con)
    reader = con.sql(sql, params=params).to_arrow_reader(VERDICT_BATCH_ROWS)
    staging = out / "_verdicts"
    staging.mkdir(parents=True)
    workers = max(1, min(4, os.cpu_count() or 1))
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="classified") as pool:
        rows = _RowStream(reader)
        for index, partition in enumerate(_by_partition(files)):
            groups = [
                # Most events files are one row group; only the others need their footer read.
                [total] if row_groups == 1 else row_group_rows(f)
                for f in partition
                for total, row_groups in [shapes[str(f)]]
            ]
            verdicts = rows.take(sum(sum(g) for g in groups))
            by_actor.update(_value_counts(verdicts.column("actor_kind")))
            dest = out / partition[0].relative_to(layout.events)
            while len(pending) >= 2 * workers:
                pending.popleft().result()
            pending.append(
                pool.submit(
                    _append_verdicts,
                    partition,
                    verdicts,
                    groups,
                    staging / f"{index}.parquet",
                    dest,
                )
            )
        while pending:
            pending.popleft().result()
        if not rows.exhausted():
            raise WarehouseError(
                "classification returned more verdicts than events",
                hint="a classification join matched an event more than once; this is a bug",
            )
    shutil.rmtree(staging)
    return by_actor


def _verdicts_query(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, object]]:
    """The verdict columns of every event, in the order of the pinned events files."""
    rules = con.execute(
        "SELECT rule, classified_by, actor_kind, access_path, confidence"
        " FROM attribution_rules ORDER BY rule"
    ).fetchall()
    if [r[0] for r in rules] != list(range(1, len(rules) + 1)):
        raise WarehouseError("attribution_rules must number its rules 1, 2, 3, ... (a bug)")
    params: dict[str, object] = {
        name: [r[i] for r in rules]
        for i, name in enumerate(("classified_by", "actor_kind", "access_path", "confidence"), 1)
    }
    params["rules_version"] = _text(con, "SELECT rules_version FROM attribution_settings")
    sql = (
        "SELECT $actor_kind[rule] AS actor_kind, $access_path[rule] AS access_path,"
        " client, agent_name, human_id, mcp_tool, session_joined, session_root,"
        " $classified_by[rule] AS classified_by, evidence_detail,"
        " $confidence[rule] AS confidence, $rules_version AS rules_version"
        " FROM (SELECT * FROM classification ORDER BY file_index, file_row_number)"
    )
    return sql, params


def _file_shapes(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, tuple[int, int]]:
    """(rows, row groups) of each file, from one read of all their footers in DuckDB."""
    found = con.execute(
        "SELECT file_name, num_rows, num_row_groups FROM parquet_file_metadata($files)",
        {"files": [str(f) for f in files]},
    ).fetchall()
    return {str(name): (int(rows), int(groups)) for name, rows, groups in found}


class _RowStream:
    """The next n rows of a record batch stream, as one table."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._batches = iter(reader)
        self._schema = reader.schema
        self._held: list[pa.RecordBatch] = []
        self._rows = 0

    def take(self, n: int) -> pa.Table:
        while self._rows < n:
            batch = next(self._batches, None)
            if batch is None:
                raise WarehouseError(
                    f"classification returned {self._rows} verdicts where {n} were expected",
                    hint="an event was lost by a join; this is a bug",
                )
            self._held.append(batch)
            self._rows += batch.num_rows
        table = pa.Table.from_batches(self._held, schema=self._schema)
        rest = table.slice(n)
        self._held, self._rows = rest.to_batches(), rest.num_rows
        return table.slice(0, n)

    def exhausted(self) -> bool:
        """Whether no rows are left (reads ahead at most one batch)."""
        while self._rows == 0:
            batch = next(self._batches, None)
            if batch is None:
                return True
            self._held, self._rows = [batch], batch.num_rows
        return False


def _by_partition(files: list[Path]) -> list[list[Path]]:
    """The pinned files in their order, as runs of files in one partition folder: one
    events_classified file each, so queries open one file per partition, not one per commit."""
    runs: list[list[Path]] = []
    for path in files:
        if runs and runs[-1][0].parent == path.parent:
            runs[-1].append(path)
        else:
            runs.append([path])
    return runs


def _append_verdicts(
    events_files: list[Path],
    verdicts: pa.Table,
    groups: list[list[int]],
    staged: Path,
    dest: Path,
) -> None:
    """Write `verdicts` with the row groups of the events files, then at `dest` the events
    files' row groups one after the other with the verdict columns beside them. Files whose
    schemas differ (written by different versions) cannot share a file: each gets its own."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write_row_groups(verdicts, [rows for g in groups for rows in g], staged)
    try:
        append_columns(events_files, staged, dest)
    except WarehouseError:
        if len(events_files) == 1:
            raise
        start = 0
        for events_file, file_groups in zip(events_files, groups, strict=True):
            rows = sum(file_groups)
            _write_row_groups(verdicts.slice(start, rows), file_groups, staged)
            append_columns(events_file, staged, dest.parent / events_file.name)
            start += rows
    staged.unlink()


# Verdict columns with few distinct values: dictionary-encoded. The others (human_id,
# session_root, evidence_detail) are near-unique per session, where a dictionary only costs.
_DICTIONARY_VERDICTS = [
    "actor_kind",
    "access_path",
    "client",
    "agent_name",
    "mcp_tool",
    "classified_by",
    "confidence",
    "rules_version",
]
# Statistics only where queries filter: they let a reader skip row groups of other verdicts.
_STATISTICS_VERDICTS = ["actor_kind", "access_path", "classified_by"]


def _write_row_groups(table: pa.Table, groups: list[int], path: Path) -> None:
    with pq.ParquetWriter(
        path,
        table.schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=_DICTIONARY_VERDICTS,
        write_statistics=_STATISTICS_VERDICTS,
    ) as writer:
        start = 0
        for rows in groups:
            writer.write_table(table.slice(start, rows), row_group_size=max(rows, 1))
            start += rows


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {str(c["values"]): int(c["counts"]) for c in pc.value_counts(column).to_pylist()}


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single number a statement returns (fetched whole: DuckDB refuses further work on a
    connection whose result is not exhausted)."""
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0


def _text(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    rows = con.execute(sql).fetchall()
    return str(rows[0][0])


def _publish(layout: Layout, generation: str) -> None:
    pointer = layout.derived / "CURRENT"
    tmp = layout.derived / ".CURRENT.tmp"
    tmp.write_text(generation)
    os.replace(tmp, pointer)


def _remove_other_generations(layout: Layout, generation: str) -> None:
    """Once the views read `generation`, the older ones (and any a killed rebuild left) go."""
    for old in layout.derived.glob("gen-*"):
        if old.name != generation:
            shutil.rmtree(old, ignore_errors=True)


def rebuild_attribution(
    con: duckdb.DuckDBPyConnection, layout: Layout, cfg: AttributionSettings
) -> AttributionSummary:
    """Classify every event of the warehouse and publish the derived tables.

    `con` is a read-write connection to the warehouse database whose base views exist; the
    caller holds the writer lock.
    """
    started = time.monotonic()
    # Pinned here: events/ files are never rewritten (warehouse/commit.py), so this list and
    # the verdicts stay aligned whatever later ingests add; they reach events_classified at
    # the next rebuild.
    files = sorted(layout.events.glob(EVENTS_GLOB))
    # The temp tables need no row order; without it DuckDB builds them in parallel.
    con.execute("SET preserve_insertion_order = false")
    _settings_tables(con, cfg)
    _ensure_iam_views(con)
    _events_with_positions(con, files)
    for path in sorted((queries_dir() / "attribute").glob("*.sql")):
        statement = parse_sql_file(path)
        try:
            con.execute(statement.sql)
        except duckdb.Error as exc:
            raise WarehouseError(
                f"{path.name}: attribution SQL failed: {str(exc).splitlines()[0]}",
                file=str(path),
            ) from None

    generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder = layout.derived / generation
    folder.mkdir(parents=True)
    for table in DERIVED_TABLES:
        con.table(table).write_parquet(str(folder / f"{table}.parquet"), compression="zstd")
    by_actor = _write_classified(con, files, layout, folder / CLASSIFIED_FOLDER)
    # events_classified of an empty warehouse: the event columns, then the verdict columns.
    verdicts, params = _verdicts_query(con)
    con.sql(
        f"SELECT * FROM (SELECT * FROM events LIMIT 0) POSITIONAL JOIN ({verdicts} LIMIT 0)",
        params=params,
    ).write_parquet(str(folder / "events_classified_schema.parquet"))
    (folder / "FORMAT").write_text(GENERATION_FORMAT)
    sessions = _count(con, "SELECT count(*) FROM sessions")
    # What an auditor needs to tie a verdict to the rules that gave it (view attribution_run).
    con.sql(
        "SELECT $generation AS generation, rules_version, now() AS classified_at,"
        " $events::BIGINT AS events, $sessions::BIGINT AS sessions FROM attribution_settings",
        params={
            "generation": generation,
            "events": sum(by_actor.values()),
            "sessions": sessions,
        },
    ).write_parquet(str(folder / "attribution_run.parquet"))
    _publish(layout, generation)
    return AttributionSummary(
        generation=generation,
        events=sum(by_actor.values()),
        sessions=sessions,
        by_actor={k: by_actor[k] for k in sorted(by_actor)},
        rules_version=cfg.rules_version(),
        seconds=time.monotonic() - started,
    )


def refresh_attribution(layout: Layout, cfg: AttributionSettings) -> AttributionSummary:
    """Rebuild attribution and the views over it. The caller holds the writer lock."""
    with connect(layout, read_only=False, memory_limit=cfg.duckdb_memory_limit) as con:
        layout.spill.mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory = $t", {"t": str(layout.spill)})
        # A separate cursor keeps the rebuild's temp tables out of the views' connection.
        cursor = con.cursor()
        try:
            summary = rebuild_attribution(cursor, layout, cfg)
        finally:
            cursor.close()
        define_views(con, layout)
    _remove_other_generations(layout, summary.generation)
    return summary


def attribute_warehouse(settings: Settings) -> AttributionSummary:
    """`agenttrail attribute`: re-classify every event, e.g. after editing the rules."""
    layout = Layout.at(settings.warehouse)
    if not layout.database.exists():
        raise WarehouseError(
            f"no warehouse at {layout.root}", hint="run 'agenttrail ingest SOURCE' first"
        )
    with writer_lock(layout.lock, "attribute"):
        return refresh_attribution(layout, settings.attribution)
