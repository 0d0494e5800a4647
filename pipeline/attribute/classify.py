"""Run the attribution SQL and materialise its results.

Configuration reaches the SQL as rows of temp tables filled with bound parameters
(attribution_settings, attribution_patterns, user_agent_markers), never as SQL text. Results
are written to a new generation folder under derived/ and then published by rewriting
derived/CURRENT, so readers never see half a rebuild. A generation holds the derived tables,
the verdicts (one row per event, in the order of the events files it lists in events_files.txt)
and the schema of events_classified for an empty warehouse.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.attribute.markers import USER_AGENT_MARKERS
from pipeline.config import AttributionSettings, Settings
from pipeline.errors import WarehouseError
from pipeline.resources import queries_dir
from pipeline.sqlfile import parse_sql_file
from pipeline.warehouse.connect import (
    EVENTS_FILES_LIST,
    HIVE_TYPES,
    VERDICTS_FILE,
    connect,
    define_views,
    sql_literal,
)
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
# Columns of attribution_events that locate a row in its events/ file (not written out).
POSITION_COLUMNS = ("file_index", "file_row_number")
# Row groups of the verdicts file: the size events/ uses, so both sides of the view's
# POSITIONAL JOIN advance in similar steps.
ROW_GROUP_ROWS = 122_880


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
    """attribution_events: the events of `files` (the generation's pinned list) with each row's
    file_index in that list and its row number in the file, the order of events_classified."""
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


def _write_verdicts(
    con: duckdb.DuckDBPyConnection, files: list[Path], layout: Layout, folder: Path
) -> Counter[str]:
    """Materialise the verdicts: one narrow Parquet file whose rows follow the events of the
    pinned files row for row (file by file, in file order). The events_classified view puts
    them next to the event columns with a POSITIONAL JOIN (warehouse/connect.py), so no event
    column is copied: re-encoding every wide JSON column cost three times the classification.

    The classification carries each event's rule number; what the rule concludes (name, actor,
    path, confidence, from attribution_rules) is looked up after the sort, from lists bound as
    parameters, so the view needs no join (a join above the positional scan let DuckDB build
    its hash table on the events side) and the sort moves integers, not names.

    Returns the event count per actor_kind.
    """
    rules = con.execute(
        "SELECT rule, classified_by, actor_kind, access_path, confidence"
        " FROM attribution_rules ORDER BY rule"
    ).fetchall()
    if [r[0] for r in rules] != list(range(1, len(rules) + 1)):
        raise WarehouseError("attribution_rules must number its rules 1, 2, 3, ... (a bug)")
    lookups = {
        name: [r[i] for r in rules]
        for i, name in enumerate(("classified_by", "actor_kind", "access_path", "confidence"), 1)
    }
    # The ORDER BY is what aligns the rows; order preservation keeps it through the COPY.
    con.execute("SET preserve_insertion_order = true")
    written = _count(
        con,
        "COPY (SELECT $actor_kind[rule] AS actor_kind, $access_path[rule] AS access_path,"
        " client, agent_name, human_id, mcp_tool, session_joined, session_root,"
        " $classified_by[rule] AS classified_by, evidence_detail,"
        " $confidence[rule] AS confidence, $rules_version AS rules_version"
        " FROM (SELECT * FROM classification ORDER BY file_index, file_row_number))"
        f" TO {sql_literal(str(folder / VERDICTS_FILE))}"
        f" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})",
        {
            **lookups,
            "rules_version": _scalar_text(con, "SELECT rules_version FROM attribution_settings"),
        },
    )
    events = _count(con, "SELECT count(*) FROM attribution_events")
    if not files:
        return Counter()
    if written != events:
        raise WarehouseError(
            f"classification wrote {written} verdicts for {events} events",
            hint="a classification join matched an event more than once; this is a bug",
        )
    (folder / EVENTS_FILES_LIST).write_text(
        "".join(f"{f.relative_to(layout.root).as_posix()}\n" for f in files)
    )
    counts = con.execute(
        "SELECT actor_kind, count(*) FROM read_parquet($p) GROUP BY ALL",
        {"p": str(folder / VERDICTS_FILE)},
    ).fetchall()
    return Counter({str(kind): int(n) for kind, n in counts})


def _count(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None
) -> int:
    """The single number a statement returns (fetched whole: DuckDB refuses further work on a
    connection whose result is not exhausted)."""
    rows = con.execute(sql, params or {}).fetchall()
    return int(rows[0][0]) if rows else 0


def _scalar_text(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    rows = con.execute(sql).fetchall()
    return str(rows[0][0])


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
    by_actor = _write_verdicts(con, files, layout, folder)
    # events_verdicts of an empty warehouse: the event columns, then the verdict columns.
    con.sql(
        "SELECT * FROM (SELECT * FROM events LIMIT 0)"
        " POSITIONAL JOIN (SELECT * FROM read_parquet($verdicts) LIMIT 0)",
        params={"verdicts": str(folder / VERDICTS_FILE)},
    ).write_parquet(str(folder / "events_classified_schema.parquet"))
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
