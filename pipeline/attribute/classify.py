"""Run the attribution SQL and materialise its results.

Configuration reaches the SQL as rows of tables filled with bound parameters
(attribution_settings, attribution_patterns, user_agent_markers), never as SQL text. Results
are written to a new generation folder under derived/ and then published by rewriting
derived/CURRENT, so readers never see half a rebuild. A generation holds the derived tables,
events_classified/ (per partition folder of events/, its events files' columns and the
verdict columns), the schema of
events_classified for an empty warehouse, and FORMAT (the generation's shape).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.attribute.freshness import mark_current
from pipeline.attribute.markers import USER_AGENT_MARKERS
from pipeline.attribute.sql_graph import SqlLanes, SqlStep, out_of_memory, plan
from pipeline.config import AttributionSettings, Settings, environment_variable
from pipeline.errors import OutOfMemoryError, WarehouseError
from pipeline.resources import queries_dir
from pipeline.warehouse.column_append import (
    ScannedFooter,
    append_columns,
    row_group_rows,
    scan_footer,
    schema_key,
)
from pipeline.warehouse.connect import (
    CLASSIFIED_FOLDER,
    GENERATION_FORMAT,
    HIVE_TYPES,
    UNIFORM_SCHEMA,
    connect,
    connect_detached,
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
# Rows per verdict file (_Appends): partitions' appends start once their verdict file is
# complete, so smaller files overlap more of the appends with the verdict stream; each costs a
# Parquet writer's fixed overhead (~1 ms).
VERDICT_FILE_ROWS = 100_000
# Verdict rows DuckDB hands over per Arrow batch.
VERDICT_BATCH_ROWS = 122_880
# Verdicts of events files not yet complete that _FileVerdicts may hold. DuckDB returns the
# verdicts in no particular order (its joins reorder rows: each thread's batches interleave,
# and small chunks are held back), but a file is complete soon after its last rows are read:
# ~65,000 rows held at most with 1M events. Past this bound the rest is read again in file
# order (DuckDB's sort), so memory stays bounded whatever DuckDB does.
HELD_VERDICT_ROWS = 1_000_000
# Events files whose footers _FooterScans holds scanned ahead of the appends (~115 KB each,
# measured): all of them up to ~250 partitions (1M events in the classification benchmark
# make 180); at 10M events (~1,250 files) the window bounds the scans to ~30 MB.
FOOTER_LOOKAHEAD = 256


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
            " NULL::TIMESTAMPTZ AS taken_at WHERE false"
        )
    if "iam_role_tags" not in names:
        con.execute(
            "CREATE OR REPLACE VIEW iam_role_tags AS SELECT NULL::VARCHAR AS snapshot_id,"
            " NULL::VARCHAR AS account_id, NULL::VARCHAR AS role_name, NULL::VARCHAR AS role_arn,"
            " NULL::VARCHAR AS tag_key, NULL::VARCHAR AS tag_value, NULL::TIMESTAMPTZ AS taken_at"
            " WHERE false"
        )


def _events_with_positions(con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """attribution_events: the events of `files` (listed once per rebuild) with each row's
    file_index in that list and its row number in the file: the order events_classified is
    written in.

    Files written before events had an identity_provider column get it from their
    userIdentity JSON, the wide column the attribution otherwise never reads."""
    if not files:
        con.execute(
            "CREATE OR REPLACE VIEW attribution_events AS SELECT *,"
            " NULL::UBIGINT AS file_index, NULL::BIGINT AS file_row_number FROM events"
        )
        return
    listed = [str(f) for f in files]
    # Files of one schema (one version wrote them all) are read without union_by_name, whose
    # column mapping costs each of the rebuild's scans of the events ~0.1 ms per file.
    ((with_column, schemas),) = con.execute(
        "SELECT count(*) FILTER (WHERE has_column), count(DISTINCT signature) FROM ("
        " SELECT file_name, bool_or(name = 'identity_provider') AS has_column,"
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
    con.execute(
        f"CREATE OR REPLACE VIEW attribution_events AS SELECT {columns}, file_index"
        f" FROM read_parquet([{', '.join(sql_literal(f) for f in listed)}],"
        f" hive_partitioning = true, hive_types = {HIVE_TYPES},"
        f"{' union_by_name = true,' if schemas > 1 else ''} file_row_number = true)"
    )


class _FooterScans:
    """The events files' footers, scanned ahead in the thread pool (scan_footer): the next
    FOOTER_LOOKAHEAD files in the order _write_classified appends them. Started once the
    first attribution statement has read the events (start(): that scan keeps both cores busy,
    the statements after it mostly one), the scans use the CPU the SQL leaves idle; the window
    bounds the memory the scans hold."""

    def __init__(self, pool: ThreadPoolExecutor, files: list[Path]) -> None:
        self._pool = pool
        self._files = files
        self._next = 0
        self._futures: dict[Path, Future[ScannedFooter]] = {}
        # start() is called from a SQL lane's thread, take() from the rebuild's.
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._fill()

    def _fill(self) -> None:
        while self._next < len(self._files) and len(self._futures) < FOOTER_LOOKAHEAD:
            path = self._files[self._next]
            self._futures[path] = self._pool.submit(scan_footer, path)
            self._next += 1

    def take(self, path: Path) -> ScannedFooter | Path:
        """The scanned footer of `path` (waiting for it), or the path when it was not scanned."""
        with self._lock:
            self._fill()  # starts the scans if start() has not
            future = self._futures.pop(path, None)
            self._fill()
        return path if future is None else future.result()

    def cancel(self) -> None:
        with self._lock:
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()
            self._next = len(self._files)


def _write_classified(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    layout: Layout,
    out: Path,
    *,
    cfg: AttributionSettings,
    appends: _Appends,
    scans: _FooterScans,
    on_schema: Callable[[pa.Schema], None],
) -> tuple[Counter[str], bool]:
    """Materialise events_classified: per partition folder of events/, one file under `out`
    (named after the folder's first events file) holding the folder's events files' rows in
    order, their columns followed by the verdict columns.

    DuckDB computes only the narrow verdicts, with each event's file and row, in no order:
    _FileVerdicts hands over each file's verdicts in row order as soon as all of them have
    arrived (DuckDB's sort into file order had cost a fifth of the pass at 1M events and a third
    at 10M). A partition is written once all its files are complete: pyarrow writes the
    verdicts with the events files' row groups (_Appends, in blocks), and
    warehouse/column_append.py joins them at the Parquet level: the event columns' pages are
    copied as bytes, never decoded and re-encoded (which cost three times the whole
    classification). Queries then read plain Hive-partitioned Parquet, in parallel and with
    filter pushdown.

    The classification carries each event's rule number; what the rule concludes (name,
    actor, path, confidence, from attribution_rules) becomes dictionary columns
    (_RuleColumns), so DuckDB hands over integers, not names.

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
    rule_columns = _RuleColumns(con)
    # No row order: _FileVerdicts puts each file's verdicts back in row order.
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = $m", {"m": cfg.verdicts_duckdb_memory_limit})
    partitions = _by_partition(files)
    expected = [shapes[str(f)][0] for f in files]
    reader = con.sql(_verdicts_query()).to_arrow_reader(VERDICT_BATCH_ROWS)
    on_schema(reader.schema)
    written: set[int] = set()  # partitions handed to the appends

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
        written.add(partition)

    try:
        stream = _FileVerdicts(reader, dict(enumerate(expected)), held_limit=HELD_VERDICT_ROWS)
        _by_complete_partition(stream, partitions, write)
    except _HeldTooMany:
        # The rest in file order: each file is then complete before the next one starts.
        reader.close()  # DuckDB runs no other query while a result is open
        owner = _owners(partitions)
        left = [i for i in range(len(files)) if owner[i] not in written]
        sorted_reader = con.sql(
            f"SELECT * FROM ({_verdicts_query()}) WHERE list_contains($left, file_index)"
            " ORDER BY file_index, file_row_number",
            params={"left": left},
        ).to_arrow_reader(VERDICT_BATCH_ROWS)
        _by_complete_partition(
            _FileVerdicts(sorted_reader, {i: expected[i] for i in left}, held_limit=None),
            partitions,
            write,
            skip=written,
        )
    appends.flush(last=True)
    return by_actor, len(schemas) == 1


def _owners(partitions: list[list[Path]]) -> list[int]:
    """For each pinned file, in order, the index of its partition (a run of _by_partition)."""
    return [number for number, paths in enumerate(partitions) for _ in paths]


def _by_complete_partition(
    stream: _FileVerdicts,
    partitions: list[list[Path]],
    write: Callable[[int, list[pa.Table]], None],
    *,
    skip: set[int] | None = None,
) -> None:
    """Call `write(partition, its files' verdicts in order)` for each partition as soon as the
    verdicts of all its files have arrived; every partition but those in `skip` must be."""
    owner = _owners(partitions)
    firsts = [0]
    for paths in partitions:
        firsts.append(firsts[-1] + len(paths))
    done: dict[int, pa.Table] = {}
    emitted: set[int] = set(skip or ())
    for file_index, verdicts in stream.files():
        partition = owner[file_index]
        done[file_index] = verdicts
        members = range(firsts[partition], firsts[partition + 1])
        if all(i in done for i in members):
            write(partition, [done.pop(i) for i in members])
            emitted.add(partition)
    if len(emitted) != len(partitions):
        raise WarehouseError(
            "classification returned no verdicts for some events",
            hint="a classification join dropped an event; this is a bug",
        )


class _HeldTooMany(Exception):
    """_FileVerdicts held more than its bound of verdicts of incomplete files."""


class _FileVerdicts:
    """The verdict stream, in whatever order DuckDB returns it, as whole events files: each
    file's verdicts in row order once all of them have arrived. Each file's rows are checked
    to be exactly its row numbers 0..n-1: a verdict lost or doubled by a join is an error,
    never a misaligned column."""

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        expected: dict[int, int],
        *,
        held_limit: int | None,
    ) -> None:
        """`expected`: the rows of each file the stream must deliver, by file index;
        `held_limit`: the verdicts of incomplete files it may hold (None: no bound)."""
        self._reader = reader
        self._expected = expected
        self._received = dict.fromkeys(expected, 0)
        self._pieces: dict[int, list[pa.RecordBatch]] = {}
        self._held = 0
        self._held_limit = held_limit

    def files(self) -> Iterator[tuple[int, pa.Table]]:
        for file_index, rows in self._expected.items():
            if not rows:  # nothing will arrive for it
                yield file_index, self._reader.schema.empty_table()
        for batch in self._reader:
            for file_index, piece in _split_by_file(batch):
                received = self._received.get(file_index)
                if received is None:
                    raise WarehouseError(
                        f"classification returned verdicts for events file {file_index},"
                        " which it was not asked for",
                        hint="this is a bug",
                    )
                self._received[file_index] = received + piece.num_rows
                self._held += piece.num_rows
                if self._received[file_index] > self._expected[file_index]:
                    raise WarehouseError(
                        "classification returned more verdicts than events",
                        hint="a classification join matched an event more than once; this is a bug",
                    )
                self._pieces.setdefault(file_index, []).append(piece)
                if self._received[file_index] == self._expected[file_index]:
                    yield file_index, self._finish(file_index)
            if self._held_limit is not None and self._held > self._held_limit:
                raise _HeldTooMany()

    def _finish(self, file_index: int) -> pa.Table:
        pieces = self._pieces.pop(file_index)
        self._held -= self._expected[file_index]
        table = pa.Table.from_batches(pieces)
        rows = table.column("file_row_number")
        if not _exactly_in_order(rows):
            table = table.take(pc.sort_indices(rows))
            if not _exactly_in_order(table.column("file_row_number")):
                raise WarehouseError(
                    f"classification returned verdicts for rows that events file {file_index}"
                    " does not have",
                    hint="a classification join matched an event more than once; this is a bug",
                )
        return table


def _exactly_in_order(rows: pa.ChunkedArray) -> bool:
    """Whether `rows` is 0, 1, ..., n-1."""
    n = len(rows)
    if n == 0:
        return True
    values = rows.combine_chunks()
    if values.null_count or values[0].as_py() != 0 or values[n - 1].as_py() != n - 1:
        return False
    if n == 1:
        return True
    steps = pc.subtract(values.slice(1), values.slice(0, n - 1))
    return bool(pc.all(pc.equal(steps, 1)).as_py())


def _split_by_file(batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The batch's rows by events file, as (file index, rows of that file, in batch order)."""
    if not batch.num_rows:
        return
    index = batch.column("file_index")
    n = batch.num_rows
    if n > 1 and not pc.all(pc.less_equal(index.slice(0, n - 1), index.slice(1))).as_py():
        batch = batch.take(pc.sort_indices(index))  # stable: rows of a file keep their order
        index = batch.column("file_index")
    if n > 1:
        changes = pc.indices_nonzero(pc.not_equal(index.slice(0, n - 1), index.slice(1)))
        ends = [int(i) + 1 for i in changes.to_pylist()] + [n]
    else:
        ends = [n]
    start = 0
    for end in ends:
        yield int(index[start].as_py()), batch.slice(start, end - start)
        start = end


@dataclass(frozen=True)
class _Append:
    """One partition: its events files with the row groups of each, its verdicts, and the
    events_classified file to write."""

    bases: list[ScannedFooter | Path]
    groups: list[list[int]]
    verdicts: pa.Table
    dest: Path


class _Appends:
    """Partitions gathered into blocks of about VERDICT_FILE_ROWS verdict rows; each block is
    one task in the pool, which writes the block's verdicts into one file (a row group per
    events row group) and then appends each partition's row groups of it to its events files
    (column_append). The main thread only slices the verdict stream, so two blocks are written
    and appended at once while it reads on; a file per partition cost a Parquet writer's fixed
    overhead 180 times for 1M events."""

    def __init__(self, pool: ThreadPoolExecutor, workers: int, staging: Path) -> None:
        staging.mkdir(parents=True)
        self._pool = pool
        self._workers = workers
        # Blocks waiting for the pool hold their verdicts in memory (~6 MB each): bounded.
        self._in_flight = 2 * workers
        self._staging = staging
        self._blocks = 0
        self._block: list[_Append] = []
        self._rows = 0
        self._pending: deque[Future[None]] = deque()

    def add(
        self,
        bases: list[ScannedFooter | Path],
        groups: list[list[int]],
        verdicts: pa.Table,
        dest: Path,
    ) -> None:
        self._block.append(_Append(bases, groups, verdicts, dest))
        self._rows += verdicts.num_rows
        if self._rows >= VERDICT_FILE_ROWS:
            self.flush()

    def flush(self, *, last: bool = False) -> None:
        """Submit the block gathered so far. The last block is what everything else waits
        for: it is split into one block per worker, written at once."""
        parts = _split(self._block, self._workers if last else 1)
        for part in parts:
            while len(self._pending) >= self._in_flight:
                self._pending.popleft().result()
            path = self._staging / f"{self._blocks}.parquet"
            self._blocks += 1
            self._pending.append(self._pool.submit(_write_block, part, path))
        self._block, self._rows = [], 0

    def wait(self) -> None:
        """Wait for every submitted block, then remove the verdict files."""
        while self._pending:
            self._pending.popleft().result()
        shutil.rmtree(self._staging)

    def cancel(self) -> None:
        for future in self._pending:
            future.cancel()


def _split(block: list[_Append], parts: int) -> list[list[_Append]]:
    """`block`'s partitions in order, as at most `parts` runs of about equal rows."""
    total = sum(a.verdicts.num_rows for a in block)
    runs: list[list[_Append]] = []
    rows = 0
    for append in block:
        # A new run starts where the rows so far pass the next share of the total.
        if not runs or rows >= total * len(runs) / parts:
            runs.append([])
        runs[-1].append(append)
        rows += append.verdicts.num_rows
    return runs


def _write_block(block: list[_Append], path: Path) -> None:
    """Write the block's verdicts into `path`, then each partition's events_classified file."""
    chosen: list[range] = []
    with _verdict_writer(path, block[0].verdicts.schema) as writer:
        written = 0
        for append in block:
            start = 0
            for rows in (rows for file_groups in append.groups for rows in file_groups):
                writer.write_table(append.verdicts.slice(start, rows), row_group_size=max(rows, 1))
                start += rows
            groups = sum(len(file_groups) for file_groups in append.groups)
            chosen.append(range(written, written + groups))
            written += groups
    verdicts = scan_footer(path)
    for append, verdict_groups in zip(block, chosen, strict=True):
        _append_verdicts(append, verdicts, verdict_groups)
    path.unlink()


def _append_verdicts(append: _Append, verdicts: ScannedFooter, verdict_groups: range) -> None:
    """At append.dest, the events files' row groups one after the other with their verdict
    columns beside them. Files whose schemas differ (written by different versions) cannot
    share a file: each gets its own, beside it."""
    append.dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        append_columns(append.bases, verdicts, append.dest, verdict_groups)
    except WarehouseError:
        if len(append.bases) == 1:
            raise
        first = verdict_groups.start
        for base, file_groups in zip(append.bases, append.groups, strict=True):
            path = base.path if isinstance(base, ScannedFooter) else base
            chosen = range(first, first + len(file_groups))
            append_columns(base, verdicts, append.dest.parent / path.name, chosen)
            first = chosen.stop


# The verdict columns of events_classified, in order. Those a rule decides alone
# (attribution_rules: classified_by, actor_kind, access_path, confidence) and rules_version
# are not computed per event in SQL: DuckDB hands over each event's rule number and
# _RuleColumns turns it into dictionary arrays (a map per column from rule number to
# dictionary index), so the Arrow hand-over moves one byte per event instead of five strings,
# and the Parquet writer takes the dictionaries as they are. The one exception: a verdict that read a
# role chain cut at chain_max_depth (SQL's chain_truncated) has its confidence lowered to
# medium, since the chain's root and its marks beyond the cut are unknown.
VERDICT_COLUMNS = (
    "actor_kind",
    "access_path",
    "client",
    "agent_name",
    "human_id",
    "mcp_tool",
    "session_joined",
    "session_root",
    "classified_by",
    "evidence_detail",
    "confidence",
    "rules_version",
)
_RULE_DECIDED = ("classified_by", "actor_kind", "access_path", "confidence")


class _RuleColumns:
    """What each rule concludes (attribution_rules), as the dictionaries of the rule-decided
    verdict columns.

    Each dictionary holds a column's distinct values once, and a map per column turns a rule
    number into the index of its value: the Parquet writer then takes the dictionary as it is
    (a dictionary with repeated values, as a rule-indexed one would be, costs it a re-encoding
    per row group: ~0.03 s per column at 1M events)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        rules = con.execute(
            "SELECT rule, classified_by, actor_kind, access_path, confidence"
            " FROM attribution_rules ORDER BY rule"
        ).fetchall()
        if [r[0] for r in rules] != list(range(1, len(rules) + 1)):
            raise WarehouseError("attribution_rules must number its rules 1, 2, 3, ... (a bug)")
        self._dictionaries: dict[str, pa.Array] = {}
        self._indices: dict[str, pa.Array] = {}
        for i, name in enumerate(_RULE_DECIDED, 1):
            # A truncated chain's verdict lowers its confidence to medium: always a value.
            extra = ["medium"] if name == "confidence" else []
            values = sorted({str(r[i]) for r in rules} | set(extra))
            self._dictionaries[name] = pa.array(values, pa.string())
            # Index 0 is never used: rules are numbered from 1, so the rule number is the index.
            self._indices[name] = pa.array(
                [0, *(values.index(str(r[i])) for r in rules)], pa.int8()
            )
        # For each rule, the index of its confidence at most medium.
        medium = self._dictionaries["confidence"].to_pylist().index("medium")
        confidences = [str(r[4]) for r in rules]
        by_rule = self._indices["confidence"].to_pylist()
        self._at_most_medium = pa.array(
            [0, *(medium if c == "high" else by_rule[n] for n, c in enumerate(confidences, 1))],
            pa.int8(),
        )
        version = _text(con, "SELECT rules_version FROM attribution_settings")
        self._version = pa.array([version], pa.string())

    def complete(self, table: pa.Table) -> pa.Table:
        """`table` (rule, then the verdict columns SQL computes) with every verdict column."""
        rule = table.column("rule").combine_chunks().cast(pa.int8())
        zeros = pc.multiply(rule, pa.scalar(0, pa.int8()))
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for name in VERDICT_COLUMNS:
            if name == "confidence":
                columns[name] = pa.DictionaryArray.from_arrays(
                    self._confidence_indices(rule, table), self._dictionaries[name]
                )
            elif name in self._dictionaries:
                columns[name] = pa.DictionaryArray.from_arrays(
                    pc.take(self._indices[name], rule), self._dictionaries[name]
                )
            elif name == "rules_version":
                columns[name] = pa.DictionaryArray.from_arrays(zeros, self._version)
            else:
                columns[name] = table.column(name)
        return pa.table(columns)

    def _confidence_indices(self, rule: pa.Array, table: pa.Table) -> pa.Array:
        """The rule's confidence, at most medium where the verdict read a truncated chain."""
        own = pc.take(self._indices["confidence"], rule)
        truncated = table.column("chain_truncated").combine_chunks().fill_null(False)
        if not pc.any(truncated).as_py():
            return own
        return pc.if_else(truncated, pc.take(self._at_most_medium, rule), own)

    def counts(self, name: str, table: pa.Table) -> dict[str, int]:
        """Events per value of a rule-decided column."""
        found: Counter[str] = Counter()
        names = self._dictionaries[name].to_pylist()
        indices = self._indices[name].to_pylist()
        for item in pc.value_counts(table.column("rule")).to_pylist():
            found[names[indices[item["values"]]]] += int(item["counts"])
        return dict(found)


def _verdicts_query() -> str:
    """Each event's position (its file in the pinned list and its row there), its rule and
    the verdict columns SQL computes, in no particular order."""
    return (
        "SELECT file_index, file_row_number, rule, client, agent_name, human_id, mcp_tool,"
        " session_joined, session_root, evidence_detail, chain_truncated FROM classification"
    )


def _file_shapes(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, tuple[int, int]]:
    """(rows, row groups) of each file, from one read of all their footers in DuckDB."""
    found = con.execute(
        "SELECT file_name, num_rows, num_row_groups FROM parquet_file_metadata($files)",
        {"files": [str(f) for f in files]},
    ).fetchall()
    return {str(name): (int(rows), int(groups)) for name, rows, groups in found}


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


def _verdict_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=_DICTIONARY_VERDICTS,
        write_statistics=_STATISTICS_VERDICTS,
    )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single number a statement returns (fetched whole: DuckDB refuses further work on a
    connection whose result is not exhausted)."""
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0


def _text(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    rows = con.execute(sql).fetchall()
    return str(rows[0][0])


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
    value = getattr(cfg, setting)
    variable = environment_variable("attribution", setting)
    return f"raise [attribution] {setting} (now {value}) in agenttrail.toml or with {variable}"


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
    lanes = SqlLanes(con)
    _derived_writes(lanes, steps, folder)
    with ThreadPoolExecutor(workers, thread_name_prefix="attribution") as pool:
        scans = _FooterScans(pool, files)
        lanes.after_step(steps[0].name, lambda _cursor: scans.start())
        appends = _Appends(pool, workers, out / "_verdicts")
        try:
            lanes.run(steps)
            # The derived tables' writes finish before the per-event pass lowers DuckDB's
            # memory limit (one limit for the whole database): a write of 1M sessions still
            # running beside the pass's joins ran out of the pass's 500MB, 1 run in ~20 at 10M
            # events.
            lanes.finish()
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
    _publish(layout, generation)
    return AttributionSummary(
        generation=generation,
        events=sum(by_actor.values()),
        sessions=sessions,
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

    The summary's seconds are those of all of it: opening, rebuilding, publishing the views."""
    started = time.monotonic()
    try:
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
