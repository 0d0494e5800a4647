"""Run the attribution SQL and materialise its results.

Configuration reaches the SQL as rows of tables filled with bound parameters
(attribution_settings, attribution_patterns, user_agent_markers), never as SQL text. Results
are written to a new generation folder under derived/ and then published by rewriting
derived/CURRENT, so readers never see half a rebuild. A generation holds the derived tables,
events_classified/ (per partition folder of events/, its events files' columns and the
verdict columns), the schema of
events_classified for an empty warehouse, and FORMAT (the generation's shape).

The stages of the per-event pass have modules of their own: verdict_stream.py puts DuckDB's
unordered verdicts back into files and partitions, rule_columns.py turns rule numbers into
the rule-decided columns, classified_files.py writes the events_classified files.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.attribute.classified_files import Appends, FooterScans
from pipeline.attribute.freshness import mark_current, mark_stale
from pipeline.attribute.markers import USER_AGENT_MARKERS
from pipeline.attribute.rule_columns import VERDICT_COLUMNS, RuleColumns
from pipeline.attribute.source_cache import SOURCE_SQL, SourceCache
from pipeline.attribute.source_cache import bind as bind_source_cache
from pipeline.attribute.source_cache import cache_hint as source_cache_hint
from pipeline.attribute.source_cache import open_cache as open_source_cache
from pipeline.attribute.source_cache import save as save_source_events
from pipeline.attribute.sql_graph import SqlLanes, SqlStep, out_of_memory, plan
from pipeline.attribute.verdict_stream import PartitionVerdicts, by_partition
from pipeline.config import AttributionSettings, Settings, raise_setting_hint
from pipeline.errors import OutOfMemoryError, WarehouseError
from pipeline.resources import queries_dir
from pipeline.warehouse.column_append import (
    ScannedFooter,
    row_group_rows,
    schema_key,
)
from pipeline.warehouse.connect import (
    CLASSIFIED_FOLDER,
    GENERATION_FORMAT,
    HIVE_TYPES,
    UNIFORM_SCHEMA,
    connect,
    connect_detached,
    published_generation,
    remove_unused_generations,
    removing_unpublished_generation,
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
    "role_agent_intervals",
    "attribution_rules",
    # Keys more than one STS call issued (20_sessions): no session (the unjoined_sessions query).
    "session_key_conflicts",
)
# Verdict rows DuckDB hands over per Arrow batch.
VERDICT_BATCH_ROWS = 122_880
# Verdicts of partitions not yet complete that PartitionVerdicts may hold in memory (~100
# bytes each). DuckDB returns the verdicts in no particular order (its joins reorder rows: each
# thread's batches interleave, and small chunks are held back), but a partition is complete
# soon after its last file is read (the pinned files are in path order, a partition's files
# together): ~60,000 verdicts held at most with 1M events in 180 files, ~212,000 with 10M in
# 361 files (~55,000 events per partition). Where the
# joins spill (their hash tables past verdicts_duckdb_memory_limit), the rows of the spilled
# hash partitions come last and no events partition completes before them: past this bound
# the held verdicts go to disk (the warehouse's spill folder) and come back as their partition
# completes. (Until session 15, the rest of the events was read again in file order with
# DuckDB's sort instead: at 10M events 14-18 s more and ~1,000 MB.)
HELD_VERDICT_ROWS = 500_000


@dataclass(frozen=True)
class AttributionSummary:
    generation: str
    events: int
    sessions: int
    by_actor: dict[str, int]
    rules_version: str
    seconds: float
    # Where the seconds went (`agenttrail attribute --json`): "tables" (the attribution SQL:
    # source events, sessions and chains, MCP links, the classification's tables), "events"
    # (the per-event pass and the events_classified files), "publish" (the rest: opening,
    # the run record, re-pointing the views, removing the old generation). At 1M events the
    # per-event pass dominates; at 10M the tables cost as much (README, Benchmarks).
    phases: dict[str, float] = field(default_factory=dict)
    # Events files whose source events were read from the cache ("kept") and those this
    # rebuild extracted ("extracted"; source_cache.py).
    source_files: dict[str, int] = field(default_factory=dict)
    # Access keys more than one STS call issued (masked by an export, or reused examples): no
    # session, so their calls join none (20_sessions.sql; view session_key_conflicts).
    reused_issued_keys: int = 0


def reused_keys_notice(count: int) -> str:
    """What a rebuild that found keys several STS calls issued says to the analyst."""
    keys = "access key was" if count == 1 else "access keys were"
    return (
        f"{count:,} {keys} issued by more than one STS call (keys masked by an export, or"
        " reused examples): no session is assumed for them and their calls join none; query"
        " run unjoined_sessions lists them (reason reused_issued_key)"
    )


def _settings_tables(con: duckdb.DuckDBPyConnection, cfg: AttributionSettings) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE attribution_settings ("
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
    con.execute("CREATE OR REPLACE TABLE attribution_patterns (kind VARCHAR, pattern VARCHAR)")
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
        "CREATE OR REPLACE TABLE user_agent_markers"
        " (priority INTEGER, client VARCHAR, pattern VARCHAR, source VARCHAR)"
    )
    con.executemany("INSERT INTO user_agent_markers VALUES ($1, $2, $3, $4)", USER_AGENT_MARKERS)


def _ensure_iam_views(con: duckdb.DuckDBPyConnection) -> None:
    """Attribution reads IAM snapshots; a warehouse without any gets empty stand-ins."""
    names = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    if "iam_roles" not in names:
        con.execute(
            "CREATE OR REPLACE VIEW iam_roles AS SELECT NULL::VARCHAR AS snapshot_id,"
            " NULL::VARCHAR AS account_id, NULL::VARCHAR AS role_name,"
            " NULL::TIMESTAMPTZ AS taken_at, NULL::TIMESTAMPTZ AS create_date WHERE false"
        )
    if "iam_role_tags" not in names:
        con.execute(
            "CREATE OR REPLACE VIEW iam_role_tags AS SELECT NULL::VARCHAR AS snapshot_id,"
            " NULL::VARCHAR AS account_id, NULL::VARCHAR AS role_name, NULL::VARCHAR AS role_arn,"
            " NULL::VARCHAR AS tag_key, NULL::VARCHAR AS tag_value, NULL::TIMESTAMPTZ AS taken_at"
            " WHERE false"
        )


def _events_with_positions(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    *,
    view: str = "attribution_events",
    positions: list[int] | None = None,
) -> None:
    """`view` (attribution_events): the events of `files` (listed once per rebuild) with each
    row's file_index in that list and its row number in the file: the order events_classified
    is written in. With `positions`, the events of some of the pinned files: `files` are those
    at `positions` of the pinned list, and file_index is still the index in that list.

    Files written before events had an identity_provider column get it from their
    userIdentity JSON, the wide column the attribution otherwise never reads. Files written
    before the assumed_root column read it as NULL (reading it from that JSON would cost every
    rebuild a read of the wide column, since events files are never rewritten): their
    short-term root sessions whose AssumeRoot is not in the logs read as the root user."""
    if not files:
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT *,"
            " NULL::UBIGINT AS file_index, NULL::BIGINT AS file_row_number FROM events"
            f"{' WHERE false' if positions is not None else ''}"
        )
        return
    index = (
        "file_index"
        if positions is None
        else f"[{', '.join(str(p) for p in positions)}][file_index::BIGINT + 1]::UBIGINT AS file_index"
    )
    listed = [str(f) for f in files]
    # Files of one schema (one version wrote them all) are read without union_by_name, whose
    # column mapping costs each of the rebuild's scans of the events ~0.1 ms per file.
    ((with_column, with_assumed_root, schemas),) = con.execute(
        "SELECT count(*) FILTER (WHERE has_column), count(*) FILTER (WHERE has_assumed_root),"
        " count(DISTINCT signature) FROM ("
        " SELECT file_name, bool_or(name = 'identity_provider') AS has_column,"
        "  bool_or(name = 'assumed_root') AS has_assumed_root,"
        "  string_agg(concat_ws(':', name, duckdb_type, repetition_type, logical_type), ','"
        "   ORDER BY column_id NULLS FIRST, name) AS signature"
        " FROM parquet_schema($files) GROUP BY file_name)",
        {"files": listed},
    ).fetchall()
    from_json = "json_extract_string(user_identity, '$.identityProvider')"
    if with_column == len(files):
        columns = "*"
    elif with_column:
        columns = f"* REPLACE (coalesce(identity_provider, {from_json}) AS identity_provider)"
    else:
        columns = f"*, {from_json} AS identity_provider"
    if not with_assumed_root:
        # (Files with and without it are read by name: those without give NULL.)
        columns += ", NULL::BOOLEAN AS assumed_root"
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS SELECT {columns}, {index}"
        f" FROM read_parquet([{', '.join(sql_literal(f) for f in listed)}],"
        f" hive_partitioning = true, hive_types = {HIVE_TYPES},"
        f"{' union_by_name = true,' if schemas > 1 else ''} file_row_number = true)"
    )


def _write_classified(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    layout: Layout,
    out: Path,
    *,
    cfg: AttributionSettings,
    appends: Appends,
    scans: FooterScans,
    on_schema: Callable[[pa.Schema], None],
) -> tuple[Counter[str], bool]:
    """Materialise events_classified: per partition folder of events/, one file under `out`
    (named after the folder's first events file) holding the folder's events files' rows in
    order, their columns followed by the verdict columns.

    DuckDB computes only the narrow verdicts, with each event's file and row, in no order:
    PartitionVerdicts hands over each partition's files, each file's verdicts in row order, as
    soon as all of them have arrived (DuckDB's sort into file order had cost a fifth of the pass
    at 1M events and a third at 10M). A partition is written once all its files are complete:
    pyarrow writes the
    verdicts with the events files' row groups (Appends, in blocks), and
    warehouse/column_append.py joins them at the Parquet level: the event columns' pages are
    copied as bytes, never decoded and re-encoded (which cost three times the whole
    classification). Queries then read plain Hive-partitioned Parquet, in parallel and with
    filter pushdown.

    The classification carries each event's rule number; what the rule concludes (name,
    actor, path, confidence, from attribution_rules) becomes dictionary columns
    (RuleColumns), so DuckDB hands over integers, not names.

    The appends are left running in the pool (appends.wait() waits for them). `on_schema` is
    given the Arrow schema of what SQL computes per event (for _write_schema) as soon as the
    stream has one. Returns the event count per actor_kind, and whether all events files have
    one schema (so that all events_classified files have one too).
    """
    by_actor: Counter[str] = Counter()
    if not files:
        computed = con.sql(f"SELECT * FROM ({_verdicts_query()}) LIMIT 0").to_arrow_table()
        on_schema(computed.schema)
        return by_actor, False
    schemas: set[bytes] = set()
    shapes = _file_shapes(con, files)
    rule_columns = RuleColumns(con)
    # No row order: PartitionVerdicts puts each file's verdicts back in row order.
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = $m", {"m": cfg.verdicts_duckdb_memory_limit})
    partitions = by_partition(files)
    expected = [shapes[str(f)][0] for f in files]
    reader = con.sql(_verdicts_query()).to_arrow_reader(VERDICT_BATCH_ROWS)
    on_schema(reader.schema)

    def write(partition: int, verdicts: list[pa.Table]) -> None:
        paths = partitions[partition]
        groups = [
            # Most events files are one row group; only the others need their footer read.
            [total] if row_groups == 1 else row_group_rows(f)
            for f in paths
            for total, row_groups in [shapes[str(f)]]
        ]
        computed = pa.concat_tables(verdicts)
        by_actor.update(rule_columns.counts("actor_kind", computed))
        bases = [scans.take(f) for f in paths]
        schemas.update(
            b.schema_key if isinstance(b, ScannedFooter) else schema_key(b) for b in bases
        )
        dest = out / paths[0].relative_to(layout.events)
        appends.add(bases, groups, rule_columns.complete(computed), dest)

    # Runs of verdicts held past HELD_VERDICT_ROWS (PartitionVerdicts); the caller holds the writer
    # lock, so what a killed rebuild left there is no one's.
    spill_dir = layout.spill / "verdicts"
    shutil.rmtree(spill_dir, ignore_errors=True)
    numbers = iter(range(len(files)))
    stream = PartitionVerdicts(
        reader,
        [[next(numbers) for _ in paths] for paths in partitions],
        dict(enumerate(expected)),
        held_limit=HELD_VERDICT_ROWS,
        spill_dir=spill_dir,
    )
    with stream:
        for partition, verdicts in stream.partitions():
            write(partition, verdicts)
    appends.flush(last=True)
    return by_actor, len(schemas) == 1


def _verdicts_query() -> str:
    """Each event's position (its file in the pinned list and its row there), its rule and
    the verdict columns SQL computes, in no particular order."""
    return (
        "SELECT file_index, file_row_number, rule, client, agent_name, human_id, mcp_tool,"
        " session_joined, session_root, role_account_id_fallback, role_name_fallback,"
        " evidence_detail, at_most_medium FROM classification"
    )


def _file_shapes(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, tuple[int, int]]:
    """(rows, row groups) of each file, from one read of all their footers in DuckDB."""
    found = con.execute(
        "SELECT file_name, num_rows, num_row_groups FROM parquet_file_metadata($files)",
        {"files": [str(f) for f in files]},
    ).fetchall()
    return {str(name): (int(rows), int(groups)) for name, rows, groups in found}


def _source_cache(
    con: duckdb.DuckDBPyConnection, layout: Layout, files: list[Path], steps: list[SqlStep]
) -> SourceCache:
    """The source events kept from earlier rebuilds (source_cache.py), bound for
    05_source_events.sql, and attribution_extract_events: the events of the pinned files
    none of them extracted."""
    step = next((s for s in steps if s.name == SOURCE_SQL), None)
    if step is None:
        raise WarehouseError(f"no attribution SQL file named {SOURCE_SQL} (a bug)")
    cache = open_source_cache(layout.source_cache, layout.events, files, step.sql)
    bind_source_cache(con, cache)
    new = cache.new
    if len(new) == len(files):
        con.execute(
            "CREATE OR REPLACE VIEW attribution_extract_events AS SELECT * FROM attribution_events"
        )
    elif not new:
        con.execute(
            "CREATE OR REPLACE VIEW attribution_extract_events AS"
            " SELECT * FROM attribution_events WHERE false"
        )
    else:
        _events_with_positions(
            con, [files[i] for i in new], view="attribution_extract_events", positions=new
        )
    return cache


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single number a statement returns (fetched whole: DuckDB refuses further work on a
    connection whose result is not exhausted)."""
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0


def _write_schema(cursor: duckdb.DuckDBPyConnection, computed: pa.Schema, path: Path) -> None:
    """events_classified of an empty warehouse: the event columns, then the verdict columns
    with the types the per-partition files give them (`computed`: what SQL gives per event,
    as _write_classified read it). Runs in the pool while the events are classified, on a
    cursor of its own, which it closes."""
    with cursor:
        # From the pinned files (their footers are cached), not the events view's glob.
        events = (
            cursor.sql(
                "SELECT * EXCLUDE (file_index, file_row_number) FROM attribution_events LIMIT 0"
            )
            .to_arrow_table()
            .schema
        )
    verdicts = [
        computed.field(name) if name in computed.names else pa.field(name, pa.string())
        for name in VERDICT_COLUMNS
    ]
    # client is an ENUM in SQL (a dictionary in Arrow); readers of the files see strings.
    fields = [f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f for f in verdicts]
    schema = pa.schema([*events, *fields])
    pq.write_table(schema.empty_table(), path, store_schema=False)


def _publish(layout: Layout, generation: str | None) -> None:
    """Point derived/CURRENT at `generation` (None: no generation, the file goes)."""
    pointer = layout.derived / "CURRENT"
    if generation is None:
        pointer.unlink(missing_ok=True)
        return
    tmp = layout.derived / ".CURRENT.tmp"
    tmp.write_text(generation)
    os.replace(tmp, pointer)


def _remove_other_generations(layout: Layout, generation: str) -> None:
    """Once the views read `generation`, the older ones (and any a killed rebuild left) go."""
    for old in layout.derived.glob("gen-*"):
        if old.name != generation:
            shutil.rmtree(old, ignore_errors=True)


def _derived_writes(lanes: SqlLanes, steps: list[SqlStep], folder: Path) -> None:
    """Each derived table is written to Parquet as soon as the step that creates it has run,
    on a cursor of its own, beside the SQL that follows. (Handed to pyarrow instead, the tables
    were whole in memory at once: 1M sessions at 10M events took the process tree from 0.9 to
    1.5 GB; DuckDB's writer streams them.)"""
    for table in DERIVED_TABLES:
        creator = next((s.name for s in steps if table in s.creates), None)
        if creator is None:
            raise WarehouseError(f"no attribution SQL file creates {table} (a bug)")
        lanes.after_step(creator, functools.partial(_write_table, table, folder))


# zstd level of the derived tables: level 1 writes `sessions` (lists and maps of tags) a
# quarter faster than DuckDB's default 3 for the same size (0.076 s against 0.100 s for 47,000
# sessions; 3.9 s at 10M events was on the rebuild's critical path).
DERIVED_ZSTD_LEVEL = 1


def _write_table(table: str, folder: Path, cursor: duckdb.DuckDBPyConnection) -> None:
    path = sql_literal(str(folder / f"{table}.parquet"))
    try:
        cursor.execute(
            f"COPY {table} TO {path}"
            f" (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {DERIVED_ZSTD_LEVEL})"
        )
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemoryError(f"writing {table}: {out_of_memory(exc)}") from None


def _memory_hint(cfg: AttributionSettings, setting: str) -> str:
    """How to give the rebuild more memory: its needs grow with the number of STS sessions
    (README, Configuration), and the defaults fit ~10M events with 1M sessions."""
    return raise_setting_hint("attribution", setting, getattr(cfg, setting))


def _with_memory_hint(
    exc: OutOfMemoryError, cfg: AttributionSettings, setting: str
) -> OutOfMemoryError:
    return OutOfMemoryError(exc.message, hint=_memory_hint(cfg, setting), **exc.inputs)


def rebuild_attribution(
    con: duckdb.DuckDBPyConnection, layout: Layout, cfg: AttributionSettings
) -> AttributionSummary:
    """Classify every event of the warehouse and publish the derived tables.

    `con` is a connection with the warehouse's base views (connect_detached); the caller holds
    the writer lock.
    """
    started = time.monotonic()
    # Pinned here: events/ files are never rewritten (warehouse/commit.py), so this list and
    # the verdicts stay aligned whatever later ingests add; they reach events_classified at
    # the next rebuild.
    files = sorted(layout.events.glob(EVENTS_GLOB))
    # The attribution tables need no row order; without it DuckDB builds them in parallel.
    con.execute("SET preserve_insertion_order = false")
    # Several statements scan the same events files: their footers are read once (also set by
    # connect_detached, before it binds the views).
    con.execute("SET parquet_metadata_cache = true")
    _settings_tables(con, cfg)
    _ensure_iam_views(con)
    _events_with_positions(con, files)
    workers = max(1, min(4, os.cpu_count() or 1))
    generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder = layout.derived / generation
    out = folder / CLASSIFIED_FOLDER
    steps = plan((queries_dir() / "attribute").glob("*.sql"))
    cache = _source_cache(con, layout, files, steps)
    kept = len(cache.owner)
    lanes = SqlLanes(con)
    _derived_writes(lanes, steps, folder)
    with ThreadPoolExecutor(workers, thread_name_prefix="attribution") as pool:
        scans = FooterScans(pool, files)
        lanes.after_step(SOURCE_SQL, lambda _cursor: scans.start())
        appends = Appends(pool, workers, out / "_verdicts")
        try:
            try:
                lanes.run(steps)
            except WarehouseError as exc:
                # Kept rows DuckDB could not read (their footers read, a page did not; DuckDB
                # need not name the file).
                failed = str(exc.inputs.get("file", ""))
                if (
                    isinstance(exc, OutOfMemoryError)
                    or exc.hint
                    or not cache.owner
                    or not failed.endswith(SOURCE_SQL)
                ):
                    raise
                raise WarehouseError(
                    exc.message,
                    hint=f"if the kept source events are damaged, {source_cache_hint(cache.folder)}",
                    **exc.inputs,
                ) from None
            # The derived tables' writes finish before the per-event pass lowers DuckDB's
            # memory limit (one limit for the whole database): a write of 1M sessions still
            # running beside the pass's joins ran out of the pass's 500MB, 1 run in ~20 at 10M
            # events.
            lanes.finish()
            # After the SQL, not beside it: at 10M events, writing ~890,000 source rows beside
            # 20_sessions competed for its memory and both cores (35 s for the rebuild against
            # 32.5-35 s after it; ~0.2 s per million events either way).
            save_source_events(cache, con)
            tables_done = time.monotonic()
            schema: list[Future[None]] = []

            def write_schema(computed: pa.Schema) -> None:
                path = folder / "events_classified_schema.parquet"
                schema.append(pool.submit(_write_schema, con.cursor(), computed, path))

            try:
                by_actor, uniform = _write_classified(
                    con,
                    files,
                    layout,
                    out,
                    cfg=cfg,
                    appends=appends,
                    scans=scans,
                    on_schema=write_schema,
                )
            except duckdb.OutOfMemoryException as exc:
                raise OutOfMemoryError(
                    f"classifying each event: {out_of_memory(exc)}",
                    hint=_memory_hint(cfg, "verdicts_duckdb_memory_limit"),
                ) from None
            appends.wait()
            for future in schema:
                future.result()
            events_done = time.monotonic()
        finally:
            lanes.close()
            scans.cancel()
            appends.cancel()
    if uniform:
        # The views read the generation's files without union_by_name, which reads every
        # file's footer to bind (~30 ms at 1M events, per view and per query that binds it).
        (folder / UNIFORM_SCHEMA).write_text(
            "every events_classified file of this generation has the same schema\n"
        )
    (folder / "FORMAT").write_text(GENERATION_FORMAT)
    sessions = _count(con, "SELECT count(*) FROM sessions")
    reused_keys = _count(con, "SELECT count(*) FROM session_key_conflicts")
    # What an auditor needs to tie a verdict to the rules that gave it (view attribution_run).
    con.sql(
        "SELECT $generation AS generation, rules_version, now() AS classified_at,"
        " $events::BIGINT AS events, $sessions::BIGINT AS sessions,"
        " $version AS agenttrail_version FROM attribution_settings",
        params={
            "generation": generation,
            "events": sum(by_actor.values()),
            "sessions": sessions,
            "version": __version__,
        },
    ).write_parquet(str(folder / "attribution_run.parquet"))
    # Stale until the views read this generation (refresh_attribution marks it current then):
    # a run that publishes but cannot re-point them, or is killed in between, leaves readers a
    # notice and the next ingest or import a rebuild to do.
    mark_stale(layout)
    _publish(layout, generation)
    return AttributionSummary(
        generation=generation,
        events=sum(by_actor.values()),
        sessions=sessions,
        source_files={"kept": kept, "extracted": len(files) - kept},
        reused_issued_keys=reused_keys,
        by_actor={k: by_actor[k] for k in sorted(by_actor)},
        rules_version=cfg.rules_version(),
        seconds=time.monotonic() - started,
        phases={"tables": tables_done - started, "events": events_done - tables_done},
    )


def refresh_attribution(layout: Layout, cfg: AttributionSettings) -> AttributionSummary:
    """Rebuild attribution and the views over it. The caller holds the writer lock.

    The rebuild runs on an in-memory connection: the database file is opened only at the end,
    for the moment it takes to point its views at the new generation, so analysts' readers are
    kept waiting for that moment, not for the whole rebuild.

    The summary's seconds are those of all of it: opening, rebuilding, publishing the views.

    Generations no reader can be reading go first (of rebuilds that failed or were killed), and
    a rebuild that fails removes its own (connect.remove_unused_generations and
    removing_unpublished_generation): each is about the size of events/, and a full disk must
    not stay full of them."""
    started = time.monotonic()
    remove_unused_generations(layout)
    try:
        with removing_unpublished_generation(layout):
            summary = _rebuild_and_repoint(layout, cfg)
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemoryError(
            f"attribution: {out_of_memory(exc)}", hint=_memory_hint(cfg, "duckdb_memory_limit")
        ) from None
    except OutOfMemoryError as exc:
        if exc.hint:
            raise
        # Everything but the per-event pass runs under duckdb_memory_limit.
        raise _with_memory_hint(exc, cfg, "duckdb_memory_limit") from None
    mark_current(layout, summary.rules_version)
    _remove_other_generations(layout, summary.generation)
    seconds = time.monotonic() - started
    phases = {**summary.phases, "publish": seconds - sum(summary.phases.values())}
    return replace(summary, seconds=seconds, phases={k: round(v, 3) for k, v in phases.items()})


def _rebuild_and_repoint(layout: Layout, cfg: AttributionSettings) -> AttributionSummary:
    previous = published_generation(layout)
    with connect_detached(layout, memory_limit=cfg.duckdb_memory_limit) as con:
        summary = rebuild_attribution(con, layout, cfg)
        # Closing frees the rebuild's tables (~50 ms at 1M events): beside the re-pointing.
        closing = threading.Thread(target=con.close, name="attribution-close")
        closing.start()
        try:
            # Opened for writing, the database re-points its views at the new generation
            # (connect).
            with connect(layout, read_only=False):
                pass
        except BaseException:
            # The views still read the previous generation (the database held open by a
            # client, an interrupt): CURRENT names it again, so that readers of copies read
            # what the database's readers read, and the new generation, published to no one,
            # goes (removing_unpublished_generation) instead of staying a whole events/-sized
            # folder per failed run. The warehouse stays marked stale (rebuild_attribution).
            _publish(layout, previous)
            raise
        finally:
            closing.join()
    return summary


def attribute_warehouse(settings: Settings) -> AttributionSummary:
    """`agenttrail attribute`: re-classify every event, e.g. after editing the rules."""
    layout = Layout.at(settings.warehouse)
    # Events without a database: a first ingest whose attribution failed, which this repairs.
    if not layout.is_warehouse():
        raise WarehouseError(
            f"no warehouse at {layout.root}", hint="run 'agenttrail ingest SOURCE' first"
        )
    with writer_lock(layout.lock, "attribute"):
        return refresh_attribution(layout, settings.attribution)
