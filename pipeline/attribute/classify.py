"""Run the attribution SQL and materialise its results.

Configuration reaches the SQL as rows of temp tables filled with bound parameters
(attribution_settings, attribution_patterns, user_agent_markers), never as SQL text. Results
are written to a new generation folder under derived/ and then published by rewriting
derived/CURRENT, so readers never see half a rebuild.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.attribute.markers import USER_AGENT_MARKERS
from pipeline.config import AttributionSettings, Settings
from pipeline.errors import WarehouseError
from pipeline.resources import queries_dir
from pipeline.sqlfile import parse_sql_file
from pipeline.warehouse.connect import HIVE_TYPES, connect, define_views, sql_literal
from pipeline.warehouse.files import ZSTD_LEVEL
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.lock import writer_lock

# Derived tables written per rebuild; events_classified is partitioned like events/.
DERIVED_TABLES = ("sessions", "mcp_tool_calls", "mcp_grants", "role_agent_observations")
# Columns of attribution_events that locate a row in its events/ file (not written out).
POSITION_COLUMNS = ("filename", "file_index", "file_row_number")
ROW_GROUP_ROWS = 122_880
VERDICT_BATCH_ROWS = 65_536
# Rows per events_classified file at most: bounds the memory of each writer thread.
MAX_FILE_ROWS = 2 * ROW_GROUP_ROWS


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


def _events_with_positions(con: duckdb.DuckDBPyConnection, layout: Layout) -> None:
    """attribution_events: the events view plus each row's file and row number in it, so the
    verdicts can be written next to the event columns file by file (see _write_classified)."""
    if any(layout.events.glob(EVENTS_GLOB)):
        source = sql_literal(str(layout.events / EVENTS_GLOB))
        con.execute(
            "CREATE OR REPLACE TEMP VIEW attribution_events AS SELECT *, file_index"
            f" FROM read_parquet({source}, hive_partitioning = true, hive_types = {HIVE_TYPES},"
            " union_by_name = true, filename = true, file_row_number = true)"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW attribution_events AS SELECT *,"
            " NULL::VARCHAR AS filename, NULL::UBIGINT AS file_index,"
            " NULL::BIGINT AS file_row_number FROM events"
        )


def _write_classified(con: duckdb.DuckDBPyConnection, layout: Layout, out: Path) -> Counter[str]:
    """Materialise events_classified: per partition folder of events/, its rows (file by file,
    in file order) with the verdict columns appended, in one file named after its first
    events file. Returns the event count per actor_kind.

    DuckDB computes only the verdicts, sorted by file and row: a narrow pass, since the rules
    read few of the wide JSON columns. pyarrow then copies the event columns and appends the
    verdicts. A partitioned COPY of the whole wide view through DuckDB cost several times
    more: it re-encodes every column through per-partition buffers.
    """
    event_columns = set(con.table("events").columns)
    verdict_columns = [
        c
        for c in con.table("classification").columns
        if c not in event_columns and c not in POSITION_COLUMNS
    ]
    by_actor: Counter[str] = Counter()
    files = sorted(layout.events.glob(EVENTS_GLOB))
    if not files:
        return by_actor
    # The union of the files' columns, as the events view reads them (union_by_name).
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    # Sorted on integers; the file name rides along on each file's first row only.
    selected = ", ".join(f'"{c}"' for c in verdict_columns)
    reader = con.sql(
        "SELECT CASE WHEN file_row_number = 0 THEN filename END AS filename, file_index,"
        f" file_row_number, {selected} FROM classification ORDER BY file_index, file_row_number"
    ).to_arrow_reader(VERDICT_BATCH_ROWS)

    workers = max(1, min(4, os.cpu_count() or 1))
    pending: deque[Future[None]] = deque()
    group: list[tuple[Path, Any]] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="classified") as pool:

        def flush() -> None:
            while len(pending) >= 2 * workers:
                pending.popleft().result()
            pending.append(pool.submit(_merge_partition, list(group), schema, layout, out))
            group.clear()

        for path, verdicts in _verdicts_by_file(reader, by_actor):
            rows = sum(v.num_rows for _, v in group)
            if group and (path.parent != group[0][0].parent or rows >= MAX_FILE_ROWS):
                flush()
            group.append((path, verdicts))
        if group:
            flush()
        while pending:
            pending.popleft().result()
    return by_actor


def _verdicts_by_file(reader: Any, by_actor: Counter[str]) -> Iterator[tuple[Path, Any]]:
    """(events file, its verdict rows) from the sorted verdict batches."""
    current: Any = None
    name: str | None = None
    parts: list[Any] = []
    for batch in reader:
        if batch.num_rows == 0:
            continue
        by_actor.update(_value_counts(batch.column("actor_kind")))
        runs = pc.run_end_encode(batch.column("file_index"))
        start = 0
        for index, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
            if index != current:
                if current is not None:
                    yield _named(name), pa.concat_tables(parts)
                current, parts = index, []
                name = batch.column("filename")[start].as_py()
            parts.append(pa.Table.from_batches([batch.slice(start, end - start)]))
            start = end
    if current is not None:
        yield _named(name), pa.concat_tables(parts)


def _named(name: str | None) -> Path:
    if not name:  # a file's verdicts start at its row 0, which carries the file name
        raise WarehouseError("classification lost the first row of an events file (a bug)")
    return Path(name)


def _value_counts(column: Any) -> dict[str, int]:
    return {str(c["values"]): int(c["counts"]) for c in pc.value_counts(column).to_pylist()}


def _merge_partition(group: list[tuple[Path, Any]], schema: Any, layout: Layout, out: Path) -> None:
    """Events files of one partition folder plus their verdicts -> one events_classified file."""
    tables = []
    for path, verdicts in group:
        table = pq.ParquetFile(path).read()
        rows = verdicts.column("file_row_number")
        expected = pa.array(range(table.num_rows), type=rows.type)
        if verdicts.num_rows != table.num_rows or not pc.all(pc.equal(rows, expected)).as_py():
            raise WarehouseError(
                f"{path.name}: {verdicts.num_rows} verdicts for {table.num_rows} events",
                hint="a classification join matched an event more than once; this is a bug",
            )
        if not table.schema.equals(schema):  # an older file: missing columns are nulls
            present = set(table.column_names)
            table = pa.Table.from_arrays(
                [
                    table.column(f.name).cast(f.type)
                    if f.name in present
                    else pa.nulls(len(table), f.type)
                    for f in schema
                ],
                schema=schema,
            )
        columns = table.columns
        fields = list(schema)
        for name in verdicts.column_names:
            if name not in POSITION_COLUMNS:
                columns.append(verdicts.column(name))
                fields.append(verdicts.schema.field(name))
        tables.append(pa.Table.from_arrays(columns, schema=pa.schema(fields)))
    first = group[0][0]
    dest = out / first.relative_to(layout.events)
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.concat_tables(tables),
        dest,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
    )


def _publish(layout: Layout, generation: str) -> None:
    pointer = layout.derived / "CURRENT"
    tmp = layout.derived / ".CURRENT.tmp"
    tmp.write_text(generation)
    os.replace(tmp, pointer)
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
    _settings_tables(con, cfg)
    _ensure_iam_views(con)
    _events_with_positions(con, layout)
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
    positions = ", ".join(POSITION_COLUMNS)
    con.sql(f"SELECT * EXCLUDE ({positions}) FROM classification LIMIT 0").write_parquet(
        str(folder / "events_classified_schema.parquet")
    )
    by_actor = _write_classified(con, layout, folder / "events_classified")
    sessions = con.execute("SELECT count(*) FROM sessions").fetchone()
    _publish(layout, generation)
    return AttributionSummary(
        generation=generation,
        events=sum(by_actor.values()),
        sessions=int(sessions[0]) if sessions else 0,
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
