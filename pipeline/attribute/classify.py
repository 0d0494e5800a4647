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
from dataclasses import dataclass

import duckdb

from pipeline.attribute.markers import USER_AGENT_MARKERS
from pipeline.config import AttributionSettings, Settings
from pipeline.errors import WarehouseError
from pipeline.resources import queries_dir
from pipeline.sqlfile import parse_sql_file
from pipeline.warehouse.connect import connect, define_views
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.lock import writer_lock

# Derived tables written per rebuild; events_classified is partitioned like events/.
DERIVED_TABLES = ("sessions", "mcp_tool_calls", "mcp_grants", "role_agent_observations")


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
    classified = con.table("classification")
    out = folder / "events_classified"
    classified.limit(0).write_parquet(str(folder / "events_classified_schema.parquet"))
    classified.write_parquet(
        str(out),
        compression="zstd",
        partition_by=["recipient_account_id", "event_date"],
        row_group_size=122_880,
    )
    by_actor = (
        dict(
            con.execute(
                "SELECT actor_kind, count(*) FROM read_parquet($p, hive_partitioning = true)"
                " GROUP BY ALL ORDER BY ALL",
                {"p": str(out / EVENTS_GLOB)},
            ).fetchall()
        )
        if any(out.glob(EVENTS_GLOB))
        else {}
    )
    sessions = con.execute("SELECT count(*) FROM sessions").fetchone()
    _publish(layout, generation)
    return AttributionSummary(
        generation=generation,
        events=sum(by_actor.values()),
        sessions=int(sessions[0]) if sessions else 0,
        by_actor={str(k): int(v) for k, v in by_actor.items()},
        rules_version=cfg.rules_version(),
        seconds=time.monotonic() - started,
    )


def refresh_attribution(layout: Layout, cfg: AttributionSettings) -> AttributionSummary:
    """Rebuild attribution and the views over it. The caller holds the writer lock."""
    with connect(layout, read_only=False) as con:
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
