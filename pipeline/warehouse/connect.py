"""DuckDB over the warehouse: the database file and its views.

`agenttrail.duckdb` holds only views (no data), so any DuckDB client can open it from any working
directory while no writer runs. File-backed views need the warehouse's absolute path in their
text (DDL takes no bound parameters); it is quoted here and nowhere else. The view
warehouse_location says which folder the views read. Every writer re-creates the views; a
reader that opens a copied or moved warehouse, whose views still read the old folder, reads it
through an in-memory database with views of its own over the folder it opened, the copy's
database attached read-only beside them, so agenttrail never answers from another warehouse
than the one it was given and the catalogue lists each view once (SHOW TABLES).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import DatabaseInUseError, WarehouseError
from pipeline.iam.schema import BaseView as IamBaseView
from pipeline.iam.schema import base_views as iam_base_views
from pipeline.parse.schema import STAGED_SCHEMA
from pipeline.resources import queries_dir
from pipeline.sqlfile import parse_sql_file
from pipeline.warehouse import manifest
from pipeline.warehouse.files import fsync_files
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.lock import holds_writer_lock, running_writer
from pipeline.warehouse.records import DIGEST_SCHEMA, QUARANTINE_SCHEMA

HIVE_TYPES = "{'recipient_account_id': VARCHAR, 'event_date': DATE}"
# In an attribution generation folder (attribute/classify.py): one file per partition folder of
# events/, its events files' columns followed by the verdict columns.
CLASSIFIED_FOLDER = "events_classified"
# The shape of a generation, written to its FORMAT file. Change it with the shape, so that a
# generation written by another version counts as none (and is rebuilt by the next ingest or
# `agenttrail attribute`) instead of failing the views that read it. 4 adds
# role_agent_intervals.parquet: a generation of 3 has none, so its view could not be defined
# (a writer's connection would fail on it, the named queries on roles would find no such view),
# and the next ingest, finding the classification current, would not rebuild it. 5 adds the
# verdict columns role_account_id_fallback and role_name_fallback, which the events_classified
# view reads (a generation of 4 failed that view as if a file were damaged). 6 adds
# session_key_conflicts.parquet, which the unjoined_sessions query reads.
GENERATION_FORMAT = "6"
# A generation's marker file, present when all its events_classified files have one schema:
# the view then reads them without union_by_name (events files written by different versions
# differ in their columns, and so do their classified copies).
UNIFORM_SCHEMA = "UNIFORM_SCHEMA"
# One Parquet file of the same name per generation (attribute/classify.py), one view each.
DERIVED_VIEWS = (
    "sessions",
    "mcp_tool_calls",
    "mcp_grants",
    "role_agent_observations",
    "role_agent_intervals",
    "attribution_rules",
    "attribution_run",
    "session_key_conflicts",
)


def sql_literal(text: str) -> str:
    """A SQL string literal; only for paths in view DDL, which cannot take parameters."""
    return "'" + text.replace("'", "''") + "'"


def _empty_file(layout: Layout, name: str, schema: pa.Schema) -> Path:
    """_schema/NAME.parquet: no rows, `schema`'s columns, for a view over a folder without files.

    Generated, never the user's data: one that is not exactly that (missing, empty or cut short
    by a run killed while writing it, or of another version's schema) is written again before
    a view reads it, instead of failing every later command. Written under a name of its own
    and renamed into place, whole: readers write it too, without the warehouse lock, and a
    reader that finds it reads it whole or not at all."""
    path = layout.schema_dir / f"{name}.parquet"
    if not _holds_schema(path, schema):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            pq.write_table(schema.empty_table(), tmp)
            fsync_files([tmp])
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def remove_stale_schema_writes(layout: Layout) -> None:
    """Remove what processes killed while writing an empty-schema file left in _schema/ (their
    temporary files, named with their pid): not another process's write in progress."""
    folder = layout.schema_dir
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
        pid = tmp.name.rsplit(".", 2)[-2].split("-", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # running, as another user
    return True


def _holds_schema(path: Path, schema: pa.Schema) -> bool:
    """Whether `path` is a readable Parquet file of exactly `schema`."""
    try:
        found = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return False
    return bool(found.equals(schema, check_metadata=False))


class WarehouseFiles(Protocol):
    """Where the views' files are: a local folder, or an S3 prefix (warehouse/remote.py).

    Paths are those of `layout` (for a remote warehouse, a Layout that only names the folders);
    `location` turns one into the string DuckDB reads. Only the listing differs between the two,
    so the view definitions below stay in one place.
    """

    layout: Layout

    def location(self, path: Path) -> str: ...

    def has_files(self, folder: Path, glob: str) -> bool: ...

    def read_text(self, path: Path) -> str | None: ...

    def empty_file(self, name: str, schema: pa.Schema) -> str: ...


class LocalFiles:
    """The warehouse in a local folder; empty-schema files are kept in its _schema/ folder."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def location(self, path: Path) -> str:
        return str(path)

    def has_files(self, folder: Path, glob: str) -> bool:
        return any(folder.glob(glob))

    def read_text(self, path: Path) -> str | None:
        return path.read_text() if path.is_file() else None

    def empty_file(self, name: str, schema: pa.Schema) -> str:
        return str(_empty_file(self.layout, name, schema))


def _parquet_view(
    files: WarehouseFiles,
    view: str,
    folder: Path,
    glob: str,
    *,
    schema: tuple[str, pa.Schema],
    hive: bool = False,
) -> str:
    """The statement creating a view over a folder's Parquet files (an empty schema file
    while it has none)."""
    has_files = files.has_files(folder, glob)
    source = files.location(folder / glob) if has_files else files.empty_file(*schema)
    options = ", union_by_name = true"
    if hive:
        options += f", hive_partitioning = true, hive_types = {HIVE_TYPES}"
    if not has_files:
        options = ""  # the empty schema file already carries the partition columns
    return (
        f"CREATE OR REPLACE VIEW {view} AS "
        f"SELECT * FROM read_parquet({sql_literal(source)}{options})"
    )


# The side tables whose rows count only once the manifest recorded their object in their run.
# An ingest writes a commit's digests and quarantined records before its manifest entries (the
# manifest last: ingest._commit); a run killed in between left rows that no manifest row
# covers, and its re-run writes them again, so history counted them twice. Each run records an
# object at most once, so (uri, run_id) names the commit; the manifest has a row per object and
# run, far fewer than events.
_RECORDED_ONLY = frozenset({"digests_history", "quarantined_records_history"})
_RECORDED = (
    " AS side SEMI JOIN manifest_history AS recorded"
    " ON side.uri = recorded.uri AND side.run_id = recorded.run_id"
)


def _iam_view(files: WarehouseFiles, view: IamBaseView) -> str:
    """The statement creating an IAM view: over its folder's files, and for the tables of a
    snapshot (roles, users, ...) only the rows of snapshots that iam_snapshots lists, since a
    snapshot is complete exactly when listed there (iam/store.py writes that file last)."""
    statement = _parquet_view(
        files, view.name, view.folder, "*.parquet", schema=(view.name, view.schema)
    )
    listing = view.listing
    if listing is None:
        return statement
    listed = (
        files.location(listing.folder / "*.parquet")
        if files.has_files(listing.folder, "*.parquet")
        else files.empty_file(listing.name, listing.schema)
    )
    return (
        f"{statement} WHERE snapshot_id IN"
        f" (SELECT snapshot_id FROM read_parquet({sql_literal(listed)}))"
    )


@dataclass(frozen=True)
class _ViewPlan:
    """The statements creating a warehouse's views, and the key that names them."""

    statements: list[str]  # everything, in the order to run
    derived: list[str]  # the views over the published generation
    key: str  # names every statement but the derived ones
    names: set[str]  # the views the statements create, but the derived ones


def _plan_views(files: WarehouseFiles, *, attribution: bool) -> _ViewPlan:
    where = files.layout
    generation = _current_generation(files) if attribution else None
    location = (
        f"CREATE OR REPLACE VIEW {LOCATION_VIEW} AS"
        f" SELECT {sql_literal(files.location(where.root))} AS root"
    )
    base = [
        ("events", where.events, EVENTS_GLOB, ("events", STAGED_SCHEMA), True),
        ("manifest_history", where.manifest, "*.parquet", ("manifest", manifest.SCHEMA), False),
        # *_history hold the rows of every run that recorded their object in the manifest
        # (_RECORDED); the views of the same name without the suffix keep one row each.
        ("digests_history", where.digests, "*.parquet", ("digests", DIGEST_SCHEMA), False),
        (
            "quarantined_records_history",
            where.quarantine,
            "*.parquet",
            ("quarantine", QUARANTINE_SCHEMA),
            False,
        ),
    ]
    base_views = [
        _parquet_view(files, view, folder, glob, schema=schema, hive=hive)
        + (_RECORDED if view in _RECORDED_ONLY else "")
        for view, folder, glob, schema, hive in base
    ]
    iam = iam_base_views(where)
    base_views += [_iam_view(files, i) for i in iam]
    # Views numbered 50 and above read the attribution outputs, which exist after the first
    # rebuild only.
    numbered = [
        parse_sql_file(path).sql
        for path in sorted((queries_dir() / "views").glob("*.sql"))
        if generation is not None or int(path.name.split("_", 1)[0]) < ATTRIBUTION_VIEWS_FROM
    ]
    derived = [] if generation is None else _derived_views(files, generation)
    key = (
        "agenttrail views "
        + hashlib.sha256("\n;\n".join([location, *base_views, *numbered]).encode()).hexdigest()
    )
    names = {LOCATION_VIEW, *(b[0] for b in base), *(i.name for i in iam)}
    names.update(m.lower() for sql in numbered for m in _CREATED_VIEW.findall(sql))
    return _ViewPlan([location, *base_views, *derived, *numbered], derived, key, names)


def define_views(
    con: duckdb.DuckDBPyConnection,
    layout: Layout | WarehouseFiles,
    *,
    attribution: bool = True,
) -> None:
    """(Re)create every view: the file-backed base views, then queries/views/*.sql in order.
    Without `attribution`, not the views over the published attribution (its derived tables,
    events_classified and the views numbered 50 and above), which the rebuild that replaces
    them does not read: binding them reads every classified file's footer.

    A database whose views were made from the same statements (the key in the comment of
    warehouse_location) gets only the views over the published generation again: DuckDB binds
    a view anew at each query, so the others need not be re-created, and re-creating the
    events view binds it over every events file (~40 ms at 1M events, per writer)."""
    files = LocalFiles(layout) if isinstance(layout, Layout) else layout
    plan = _plan_views(files, attribution=attribution)
    # One transaction: a writer killed or interrupted between two views must not leave some
    # reading the new generation and the rest the old one (readers would mix two rules'
    # verdicts); DuckDB's DDL is transactional, so the file keeps all or none of them.
    con.execute("BEGIN TRANSACTION")
    try:
        if _views_key(con) == plan.key and plan.names <= _view_names(con):
            for statement in plan.derived:
                _create_view(con, statement, files)
        else:
            for statement in plan.statements:
                _create_view(con, statement, files)
            con.execute(f"COMMENT ON VIEW {LOCATION_VIEW} IS {sql_literal(plan.key)}")
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _create_view(con: duckdb.DuckDBPyConnection, statement: str, files: WarehouseFiles) -> None:
    """Run one CREATE VIEW; DuckDB binds it at once, reading the footers of the files it names,
    so a damaged file (truncated, not Parquet) fails here: one line naming the view and the file."""
    try:
        con.execute(statement)
    except duckdb.Error as exc:
        found = _CREATED_VIEW.search(statement)
        view = found[1] if found else "?"
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WarehouseError(
            f"cannot define the view {view} over {files.location(files.layout.root)}: {text}",
            hint="a file it reads is damaged or unreadable: restore that file from a backup of"
            " the warehouse",
            view=view,
        ) from exc


def _stored_views_current(con: duckdb.DuckDBPyConnection, layout: Layout) -> bool:
    """Whether a reader can use the database's stored views as they are: made for this folder
    from the statements this version would run (not by another version of agenttrail, whose
    views may lack a column the queries read, until its next writer re-creates them)."""
    if views_location(con) != str(layout.root):
        return False
    plan = _plan_views(LocalFiles(layout), attribution=True)
    return _views_key(con) == plan.key and plan.names <= _view_names(con)


_CREATED_VIEW = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)", re.IGNORECASE)


def _view_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The views of the connection's own database (not those of a copy's file attached to
    it: _read_copy)."""
    found = con.execute(
        "SELECT view_name FROM duckdb_views()"
        " WHERE NOT temporary AND database_name = current_database()"
    ).fetchall()
    return {str(row[0]).lower() for row in found}


def _views_key(con: duckdb.DuckDBPyConnection) -> str | None:
    """The key define_views left on the database's views, None where it left none."""
    found = con.execute(
        "SELECT comment FROM duckdb_views() WHERE view_name = $name AND NOT temporary"
        " AND database_name = current_database()",
        {"name": LOCATION_VIEW},
    ).fetchall()
    return str(found[0][0]) if found and found[0][0] is not None else None


def views_location(con: duckdb.DuckDBPyConnection) -> str | None:
    """The folder the connection's views read (warehouse_location), or None where the
    database predates that view."""
    try:
        # Fetched whole: DuckDB refuses further work on a connection with a result left open.
        found = con.execute(f"SELECT root FROM {LOCATION_VIEW}").fetchall()
    except duckdb.CatalogException:
        return None
    return str(found[0][0]) if found else None


# The one-row view naming the folder the views read: a reader compares it with the folder it
# opened (connect), an analyst can check it from any DuckDB client.
LOCATION_VIEW = "warehouse_location"
ATTRIBUTION_VIEWS_FROM = 50


def _published(files: WarehouseFiles) -> tuple[Path, str | None] | None:
    """The generation derived/CURRENT names and its FORMAT (None where it has none), or None."""
    name = files.read_text(files.layout.derived / "CURRENT")
    if name is None or not name.strip():
        return None
    folder = files.layout.derived / name.strip()
    return folder, files.read_text(folder / "FORMAT")


def _current_generation(files: WarehouseFiles) -> Path | None:
    """The published attribution generation, or None. A generation of another FORMAT (written
    by another version) counts as none: its views might not be definable, and the next ingest
    or `agenttrail attribute` rebuilds it."""
    published = _published(files)
    return published[0] if published and published[1] == GENERATION_FORMAT else None


def published_format(layout: Layout) -> str | None:
    """The FORMAT of the generation derived/CURRENT names (None: none is named, or it has no
    FORMAT), whichever version wrote it: a reader can then say why it has no views."""
    published = _published(LocalFiles(layout))
    return published[1].strip() if published and published[1] is not None else None


def has_attribution(layout: Layout) -> bool:
    """Whether the warehouse has a published attribution generation that the views can read."""
    return _current_generation(LocalFiles(layout)) is not None


_VIEWED_GENERATION = re.compile(r"[\\/]derived[\\/](gen-[^\\/'\"]+)[\\/]")


def _current_name(layout: Layout) -> str | None:
    """The generation derived/CURRENT names, if any."""
    current = layout.derived / "CURRENT"
    return current.read_text().strip() or None if current.is_file() else None


def repair_damaged_database(layout: Layout) -> None:
    """For a writer holding the lock that has nothing to rebuild: a database that is missing or
    no DuckDB database (emptied, cut short) is made again with its views, as any writer's
    connection does, rather than left for every reader to fail on until new events come. A
    database another process holds, or one DuckDB refuses for another reason, is left as it is
    (opening it read-only is all this costs)."""
    path = layout.database
    if path.exists():
        try:
            duckdb.connect(str(path), read_only=True).close()
            return
        except duckdb.Error as exc:
            if not _not_a_database(path, exc):
                return
    with connect(layout, read_only=False):
        pass


def published_generation(layout: Layout) -> str | None:
    """The generation derived/CURRENT names, if any."""
    return _current_name(layout)


def _viewed_generations(layout: Layout) -> set[str] | None:
    """The generations the database's views read: CURRENT's, unless a rebuild published its
    generation but could not re-point the views (the database held open, a run killed in
    between); the database's readers, an analyst's DuckDB client among them, then still read
    the previous one. None when the database cannot be looked at (held by a client that writes
    to it, not a database)."""
    if not layout.database.exists():
        return set()
    try:
        # Read-only: beside readers, while the caller (holding the writer lock) is the only
        # writer; never waiting.
        with duckdb.connect(str(layout.database), read_only=True) as con:
            found = con.execute(
                "SELECT sql FROM duckdb_views() WHERE NOT internal"
                " AND database_name = current_database()"
            ).fetchall()
    except duckdb.Error:
        return None
    return {m for (sql,) in found for m in _VIEWED_GENERATION.findall(str(sql or ""))}


def remove_unused_generations(layout: Layout) -> None:
    """Remove the attribution generations no reader can be reading (a caller holding the writer
    lock, before a rebuild writes, or finding the classification current): those of rebuilds
    that failed or were killed, and older ones a killed rebuild did not get to remove, which
    would otherwise take the disk the next rebuild needs (each is about the size of events/).
    Kept: CURRENT's (readers that define views of their own read it: _read_copy) and the one the
    database's views read; where the database cannot be looked at, every published generation
    (one with FORMAT: a rebuild writes it just before publishing)."""
    if not layout.derived.is_dir():
        return
    current = _current_name(layout)
    others = sorted(g for g in layout.derived.glob("gen-*") if g.name != current)
    if not others:
        return  # the usual case: the database need not be opened
    viewed = _viewed_generations(layout)
    for folder in others:
        if viewed is None and (folder / "FORMAT").is_file():
            continue
        if viewed is not None and folder.name in viewed:
            continue
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def removing_unpublished_generation(layout: Layout) -> Iterator[None]:
    """Around a rebuild (the caller holds the writer lock): if it fails (a full disk, the
    database held open, out of memory, an interrupt), the generation it was writing goes on
    the way out, so that making room is enough for the next one to succeed. Not once CURRENT
    names it (published, but the views could not be re-pointed): readers may be reading it."""
    before = {g.name for g in layout.derived.glob("gen-*")} if layout.derived.is_dir() else set()
    try:
        yield
    except BaseException:
        try:
            published = _current_name(layout)
            for folder in layout.derived.glob("gen-*"):
                if folder.name not in before and folder.name != published:
                    shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # the rebuild's own error is the one to report; the next rebuild tidies up
        raise


def _derived_views(files: WarehouseFiles, generation: Path) -> list[str]:
    """The statements creating the views over a published generation."""
    create = "CREATE OR REPLACE VIEW"
    statements = [
        f"{create} {table} AS SELECT * FROM read_parquet("
        f"{sql_literal(files.location(generation / f'{table}.parquet'))})"
        for table in DERIVED_VIEWS
    ]
    classified = generation / CLASSIFIED_FOLDER
    if files.has_files(classified, EVENTS_GLOB):
        uniform = files.read_text(generation / UNIFORM_SCHEMA) is not None
        source = (
            f"{sql_literal(files.location(classified / EVENTS_GLOB))}, hive_partitioning = true"
            f", hive_types = {HIVE_TYPES}{'' if uniform else ', union_by_name = true'}"
        )
    else:
        source = sql_literal(files.location(generation / "events_classified_schema.parquet"))
    statements.append(f"{create} events_verdicts AS SELECT * FROM read_parquet({source})")
    return statements


def session_defaults(con: duckdb.DuckDBPyConnection) -> None:
    """What every connection of agenttrail's sets (not settings DuckDB takes at connect time,
    nor globally):
    - no progress bar, which DuckDB draws on stdout once a query has run for 2 s: inside the
      CSV or JSON that `sql`, `query run` and `ingest --json` write there;
    - times shown, and truncated to days, in UTC (`TimeZone`) whatever the machine's zone
      (TZ): a day in a result, in the attribution or in a commit is the UTC day of
      `event_date`, the same on an analyst's laptop in Kiritimati as on the server."""
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")


def _configure(con: duckdb.DuckDBPyConnection, memory_limit: str | None) -> None:
    session_defaults(con)
    if memory_limit:
        con.execute("SET memory_limit = $m", {"m": memory_limit})


# How long opening the warehouse database waits for another process to let go of it. Users:
# a writer (an ingest re-pointing the views after its rebuild, an IAM import) while an
# analyst's `agenttrail sql` finishes, and a reader during a writer's moment with the file. A
# DuckDB client left open holds it for good: after this long the command names that process.
DATABASE_WAIT_SECONDS = 30.0
# Pause between attempts while waiting.
DATABASE_RETRY_SECONDS = 0.5
_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def _in_use(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _holder(exc: duckdb.Error) -> str:
    """The process DuckDB names as holding the database, as 'python3.11 (PID 8469)'."""
    found = _HOLDER.search(str(exc))
    if found is None:
        return "another process"
    return f"{Path(found['program']).name} (PID {found['pid']})"


Opened = TypeVar("Opened")


def _waiting(path: Path, wait_seconds: float, attempt: Callable[[], Opened]) -> Opened:
    """`attempt` (opening or attaching the database at `path`), again while another process has
    the file open in a way that excludes it, for up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return attempt()
        except duckdb.Error as exc:  # an IOException, or "Corrupt database file" (an Error)
            if _in_use(exc) and time.monotonic() < deadline:
                time.sleep(DATABASE_RETRY_SECONDS)
                continue
            if _in_use(exc):
                raise DatabaseInUseError(
                    f"{path} is open in {_holder(exc)}",
                    hint="close that DuckDB client, or wait for that agenttrail command to end,"
                    " then run this again",
                    database=str(path),
                    waited_seconds=wait_seconds,
                ) from None
            if _not_a_database(path, exc):
                raise NotADatabaseError(
                    f"{path} is not a DuckDB database (empty or cut short, as a run killed"
                    " while creating it leaves it)",
                    hint="it holds only views, which a writer makes again: run 'agenttrail"
                    f" attribute --warehouse {path.parent}' (with the ingest's --config, if it"
                    " had one)",
                    database=str(path),
                    error=str(exc).splitlines()[0],
                ) from None
            raise WarehouseError(
                f"cannot open {path}: {str(exc).splitlines()[0]}",
                hint="check that the file is a DuckDB database this version can read",
                database=str(path),
            ) from None


class NotADatabaseError(WarehouseError):
    """The warehouse's database file is no DuckDB database at all (empty, or cut short by a
    run killed while creating it): a writer holding the lock makes it again."""


# DuckDB's three header blocks: an empty database is this long, and any database longer.
DATABASE_HEADER_BYTES = 3 * 4096


def _not_a_database(path: Path, exc: duckdb.Error) -> bool:
    """Whether DuckDB refused `path` for not being a database: its own verdict ("not a valid
    DuckDB database file", as for an empty file), or a file too short to hold the headers every
    database starts with, as a run killed while creating it leaves. Never a database another
    process holds, one of a newer format or one with a damaged block: DuckDB says those in
    other words."""
    text = str(exc)
    if "is not a valid DuckDB database file" in text:
        return True
    if "Could not read enough bytes" not in text:
        return False
    try:
        return path.stat().st_size < DATABASE_HEADER_BYTES
    except OSError:
        return False


def _open(
    path: Path, *, read_only: bool, wait_seconds: float, repair: bool = False
) -> duckdb.DuckDBPyConnection:
    """The database at `path`. With `repair` (a writer holding the warehouse lock, so that no
    other writer is at work), a missing database is created whole (_create_database), and a
    file that is not a database is set aside and created anew: it holds only views, which the
    caller defines again."""
    if repair and not path.exists():
        _create_database(path)

    def attempt() -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(path), read_only=read_only)

    try:
        return _waiting(path, wait_seconds, attempt)
    except NotADatabaseError:
        if not repair:
            raise
    _set_aside(path)
    _create_database(path)
    return _waiting(path, wait_seconds, attempt)


def _create_database(path: Path) -> None:
    """A new, empty database at `path`, created under a hidden name beside it and renamed into
    place once DuckDB has written it: a run killed while DuckDB creates it leaves no database
    (its first writer creates it again), never a file that every command fails to open."""
    building = path.with_name(f".{path.name}.new")
    for leftover in (building, building.with_name(f"{building.name}.wal")):
        leftover.unlink(missing_ok=True)  # of a run killed here
    duckdb.connect(str(building)).close()
    fsync_files([building])
    os.replace(building, path)


def _set_aside(path: Path) -> None:
    """Out of the way of a new database: an empty file goes, anything else is kept as
    NAME.invalid (replacing an earlier one), in case it was someone's; a write-ahead log beside
    it belongs to no database any more and goes too."""
    if path.stat().st_size == 0:
        path.unlink()
    else:
        os.replace(path, path.with_name(f"{path.name}.invalid"))
    path.with_name(f"{path.name}.wal").unlink(missing_ok=True)


# The name of a copy's database attached beside a reader's own views (the name DuckDB gives a
# file called agenttrail.duckdb): tables an analyst created in it are agenttrail.NAME.
ATTACHED_COPY = "agenttrail"


def _read_copy(layout: Layout, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """A reader of a copied or moved warehouse, whose stored views read another folder, or of
    one whose stored views another version of agenttrail made: views of this version's own over
    `layout` in an in-memory database, the copy's file attached read-only (so a
    writer of the copy waits for this reader as for any other). TEMP views over the file's
    stored ones would answer the same but be listed twice (SHOW TABLES)."""
    con = duckdb.connect()
    try:
        # Spill where a reader of the file would (beside it), not into the working folder.
        con.execute("SET temp_directory = $t", {"t": f"{layout.database}.tmp"})
        attach = f"ATTACH {sql_literal(str(layout.database))} AS {ATTACHED_COPY} (READ_ONLY)"
        _waiting(layout.database, wait_seconds, lambda: con.execute(attach))
        define_views(con, layout)
    except BaseException:
        con.close()
        raise
    return con


def _no_database(layout: Layout) -> WarehouseError:
    """Why a reader finds no database: no warehouse at all, or one whose first writer is still
    running (the database and its views come at the end of the first ingest), or one whose
    first attribution did not finish (events committed, no views yet)."""
    root = layout.root
    if not layout.events.is_dir():
        return WarehouseError(
            f"no warehouse at {root}",
            hint="run 'agenttrail ingest SOURCE --warehouse DIR' first, or pass --warehouse",
            warehouse=str(root),
        )
    writer = running_writer(layout.lock)
    if writer is not None:
        return WarehouseError(
            f"the warehouse {root} is still being created ({writer}): its views appear when "
            "that run ends",
            hint="wait for it, then run this again",
            warehouse=str(root),
        )
    return WarehouseError(
        f"the warehouse {root} has events but no views yet: its first attribution did not finish",
        hint=f"run 'agenttrail attribute --warehouse {root}' (with the ingest's --config, if it "
        "had one)",
        warehouse=str(root),
    )


@contextmanager
def connect(
    layout: Layout,
    *,
    read_only: bool,
    memory_limit: str | None = None,
    wait_seconds: float | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse database. Writers re-create the views first. While
    another process has the database open in a way that excludes this one, waits up to
    `wait_seconds` (default DATABASE_WAIT_SECONDS), then raises DatabaseInUseError naming that
    process."""
    if read_only and not layout.database.exists():
        raise _no_database(layout)
    wait = DATABASE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    # Only a writer holding the warehouse lock (ingest, iam import, attribute) creates or
    # repairs the database: not `sql --allow-write`, which takes no lock.
    repair = not read_only and holds_writer_lock(layout.lock)
    if repair:
        remove_stale_schema_writes(layout)
    con = _open(layout.database, read_only=read_only, wait_seconds=wait, repair=repair)
    try:
        _configure(con, memory_limit)
        if not read_only:
            define_views(con, layout)
        elif not _stored_views_current(con, layout):
            # A copy (or a moved warehouse) whose stored views read the old folder, or views
            # another version made: this connection reads the folder it was given with the
            # views of this version; the next writer fixes the file.
            con.close()
            con = _read_copy(layout, wait)
            _configure(con, memory_limit)
        yield con
    finally:
        con.close()


@contextmanager
def connect_detached(
    layout: Layout, *, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection with the warehouse's views but those over the published
    attribution, for the attribution rebuild: long work that must not keep the database file
    from other processes (readers wait for a writer of the file, and the rebuild takes tens of
    seconds at 10M events). Spills go to the warehouse's spill folder."""
    con = duckdb.connect()
    try:
        _configure(con, memory_limit)
        layout.spill.mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory = $t", {"t": str(layout.spill)})
        # The rebuild reads the events files' footers several times (binding the views, the
        # schema check, each statement's scan): once from disk, then from memory.
        con.execute("SET parquet_metadata_cache = true")
        define_views(con, layout, attribution=False)
        yield con
    finally:
        con.close()
