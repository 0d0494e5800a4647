"""The warehouse database: where its views read (a copied or moved warehouse), and another
process holding it open.

The views hold the warehouse's absolute path. A copy of a warehouse (an auditor's snapshot, a
backup restored elsewhere) opened by agenttrail must answer from the copy, never from the folder
it was copied from; a writer makes the stored views read the copy for every client.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_fixtures import copy_cases, held_open, ingest, rows, settings

import pipeline.warehouse.connect
from pipeline.attribute.classify import attribute_warehouse
from pipeline.errors import DatabaseInUseError, WarehouseError
from pipeline.warehouse.connect import (
    NotADatabaseError,
    connect,
    connect_detached,
    define_views,
)
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.lock import writer_lock
from pipeline.warehouse.records import DIGEST_SCHEMA

CASE = "good_cloudtrail.json.gz"
LATER_CASE = "array_of_records.json"


def _count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {view}").fetchone()
    assert row is not None
    return int(row[0])


def _database(con: duckdb.DuckDBPyConnection) -> str:
    """Whose views the connection reads: 'agenttrail' (the file's) or 'memory' (its own)."""
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _listed(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in con.execute("SHOW TABLES").fetchall()]


@pytest.fixture
def original(tmp_path: Path) -> Path:
    warehouse = tmp_path / "original"
    ingest(copy_cases([CASE], tmp_path / "in"), warehouse)
    return warehouse


def test_views_name_the_folder_they_read(original: Path) -> None:
    assert rows(original, "SELECT root FROM warehouse_location") == [{"root": str(original)}]
    with connect(Layout.at(original), read_only=True) as con:
        assert _database(con) == "agenttrail"  # nothing moved: the stored views are used


def test_a_copy_answers_from_itself_while_the_original_changes(
    original: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    with connect(Layout.at(copy), read_only=True) as con:
        before = {v: _count(con, v) for v in ("events", "events_classified", "manifest")}
    ingest(copy_cases([LATER_CASE], tmp_path / "later"), original)
    with connect(Layout.at(original), read_only=True) as con:
        grown = _count(con, "events")
    assert grown > before["events"] > 0

    with connect(Layout.at(copy), read_only=True) as con:
        assert {v: _count(con, v) for v in before} == before
        assert con.execute("SELECT root FROM warehouse_location").fetchall() == [(str(copy),)]
        files = con.execute(
            "SELECT DISTINCT parse_dirpath(filename) LIKE $root || '/%' AS inside"
            " FROM read_parquet($glob, filename = true)",
            {"root": str(copy), "glob": str(copy / "events" / "*" / "*" / "*.parquet")},
        ).fetchall()
        assert files == [(True,)]
        assert _database(con) == "memory"
    # A plain DuckDB client still reads the stored views, which name the original folder ...
    assert rows(copy, "SELECT root FROM warehouse_location") == [{"root": str(original)}]


def test_a_moved_warehouse_reads_its_new_folder_and_a_writer_fixes_the_file(
    original: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    original.rename(moved)
    with connect(Layout.at(moved), read_only=True) as con:
        events = _count(con, "events")
        assert _count(con, "events_classified") == events > 0
    # ... until a writer (any ingest, import or `agenttrail attribute`) re-creates them.
    with connect(Layout.at(moved), read_only=False):
        pass
    assert rows(moved, "SELECT root FROM warehouse_location") == [{"root": str(moved)}]
    assert rows(moved, "SELECT count(*) AS n FROM events") == [{"n": events}]
    with connect(Layout.at(moved), read_only=True) as con:
        assert _database(con) == "agenttrail"


def test_a_reader_of_views_another_version_made_uses_this_versions_views(original: Path) -> None:
    """After an upgrade, the stored views are the previous version's until a writer runs: they
    may lack a column this version's queries read (here events_classified.principal). A reader
    then reads the folder through this version's views; the next writer replaces the file's."""
    layout = Layout.at(original)
    with duckdb.connect(str(layout.database)) as con:
        con.execute(
            "CREATE OR REPLACE VIEW events_classified AS"
            " SELECT * EXCLUDE (evidence_detail) FROM events_verdicts"
        )
        con.execute("COMMENT ON VIEW warehouse_location IS 'agenttrail views of another version'")
    with connect(layout, read_only=True) as con:
        assert _database(con) == "memory"
        events = _count(con, "events")
        assert con.execute("SELECT count(principal) FROM events_classified").fetchall() == [
            (events,)
        ]
    with pytest.raises(duckdb.BinderException, match="principal"):
        rows(original, "SELECT principal FROM events_classified")  # the file is left as it was
    with connect(layout, read_only=False):
        pass
    assert rows(original, "SELECT count(principal) AS n FROM events_classified") == [{"n": events}]
    with connect(layout, read_only=True) as con:
        assert _database(con) == "agenttrail"


def test_a_damaged_file_in_a_copy_is_one_line_naming_it(original: Path, tmp_path: Path) -> None:
    """A copy's reader defines its own views, which binds them over every file: a truncated
    events file fails there, as a WarehouseError naming the view and the file."""
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    damaged = sorted((copy / "events").glob("*/*/*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(WarehouseError) as info, connect(Layout.at(copy), read_only=True):
        pass
    assert info.value.message == (
        f"cannot define the view events over {copy}: Invalid Input Error: No magic bytes found"
        f" at end of file '{damaged}'"
    )
    assert (
        info.value.hint == "a file it reads is damaged or unreadable: restore that file from"
        " a backup of the warehouse"
    )


def test_a_copy_lists_each_view_once_and_keeps_the_files_own_tables(
    original: Path, tmp_path: Path
) -> None:
    """SHOW TABLES on a copy gives what it gives on the original, not every view twice; a
    table an analyst created in the database file is still there, as agenttrail.NAME."""
    with duckdb.connect(str(original / "agenttrail.duckdb")) as con:
        con.execute("CREATE TABLE notes AS SELECT 'checked' AS note")
    with connect(Layout.at(original), read_only=True) as con:
        listed = _listed(con)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    with connect(Layout.at(copy), read_only=True) as con:
        assert _listed(con) == [name for name in listed if name != "notes"]
        assert con.execute("SELECT note FROM agenttrail.notes").fetchall() == [("checked",)]
    assert len(listed) == len(set(listed)) > 10


def test_a_writer_names_the_process_that_holds_the_database(original: Path) -> None:
    layout = Layout.at(original)
    with held_open(layout.database) as holder:
        started = time.monotonic()
        with (
            pytest.raises(DatabaseInUseError) as caught,
            connect(layout, read_only=False, wait_seconds=0.6),
        ):
            pass
        waited = time.monotonic() - started
    assert caught.value.message == (
        f"{layout.database} is open in {Path(sys.executable).resolve().name} (PID {holder.pid})"
    )
    assert caught.value.hint == (
        "close that DuckDB client, or wait for that agenttrail command to end, then run this again"
    )
    assert 0.6 <= waited < 5


def test_a_writer_waits_for_the_holder_to_close(original: Path) -> None:
    layout = Layout.at(original)
    with held_open(layout.database) as holder:
        assert holder.stdin is not None
        # The holder lets go a second after the writer starts waiting.
        closer = threading.Timer(1.0, holder.stdin.close)
        closer.start()
        started = time.monotonic()
        with connect(layout, read_only=False, wait_seconds=20) as con:
            assert _count(con, "events") > 0
        assert 1.0 <= time.monotonic() - started < 15
        closer.join()


class _Recording:
    """A connection that records the statements define_views runs."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.statements: list[str] = []

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        self.statements.append(sql)
        return self.con.execute(sql, *args)


def _created(recording: _Recording) -> list[str]:
    """The views the recorded statements (re)created, in order."""
    prefix = "CREATE OR REPLACE VIEW "
    return [s[len(prefix) :].split()[0] for s in recording.statements if s.startswith(prefix)]


def test_a_writer_re_creates_only_the_views_over_the_new_generation(original: Path) -> None:
    """Views made from the same statements stay (DuckDB binds a view again at each query);
    the views over the published generation are made again, since its paths change."""
    layout = Layout.at(original)
    with duckdb.connect(str(layout.database)) as con:
        recording = _Recording(con)
        define_views(recording, layout)  # type: ignore[arg-type]
    assert _created(recording) == [
        "sessions",
        "mcp_tool_calls",
        "mcp_grants",
        "role_agent_observations",
        "role_agent_intervals",
        "attribution_rules",
        "attribution_run",
        "session_key_conflicts",
        "events_verdicts",
    ]
    # New events reach the views that were left as they were.
    before = rows(original, "SELECT count(*) AS n FROM events")[0]["n"]
    ingest(copy_cases([LATER_CASE], original.parent / "later"), original)
    assert rows(original, "SELECT count(*) AS n FROM events")[0]["n"] > before
    assert rows(original, "SELECT count(*) AS n FROM events_classified") == rows(
        original, "SELECT count(*) AS n FROM events"
    )


def test_a_writer_makes_every_view_again_when_one_is_missing_or_unmarked(original: Path) -> None:
    layout = Layout.at(original)
    with duckdb.connect(str(layout.database)) as con:
        con.execute("DROP VIEW manifest")
        recording = _Recording(con)
        define_views(recording, layout)  # type: ignore[arg-type]
        assert "manifest" in _created(recording)
        assert "events" in _created(recording)
        # A database whose views carry no key (written by an earlier version) is redone too.
        con.execute("CREATE OR REPLACE VIEW warehouse_location AS SELECT 'x' AS root")
        recording = _Recording(con)
        define_views(recording, layout)  # type: ignore[arg-type]
        assert "events" in _created(recording)
    assert rows(original, "SELECT root FROM warehouse_location") == [{"root": str(original)}]
    assert rows(original, "SELECT count(*) AS n FROM manifest")[0]["n"] > 0


def test_no_connection_draws_a_progress_bar(original: Path, tmp_path: Path) -> None:
    """DuckDB draws its progress bar on stdout after 2 s of a query: inside the CSV or JSON
    that `sql` writes there. Every kind of connection turns it off."""
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    opened = [
        connect(Layout.at(original), read_only=True),
        connect(Layout.at(original), read_only=False),
        connect(Layout.at(copy), read_only=True),  # a copy's reader: views of its own
        connect_detached(Layout.at(original)),
    ]
    for opening in opened:
        with opening as con:
            setting = con.execute("SELECT current_setting('enable_progress_bar')").fetchone()
            assert setting == (False,)


# ---- generated files a killed run leaves damaged ------------------------------------------------


def _stale_digest_schema() -> pa.Schema:
    """The digests schema as an earlier version had it: a column fewer."""
    return DIGEST_SCHEMA.remove(DIGEST_SCHEMA.get_field_index("signature_algorithm"))


def _write_stale(path: Path) -> None:
    pq.write_table(_stale_digest_schema().empty_table(), path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b""), id="empty: killed as the file was created"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:40]), id="cut short"),
        pytest.param(_write_stale, id="an earlier version's schema"),
    ],
)
def test_a_damaged_empty_schema_file_is_written_again(
    original: Path, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    """_schema/ holds generated files (no rows, a view's columns, for a folder without files).
    A run killed while writing one left it empty, and every later ingest, attribute and sql
    failed ("cannot define the view digests_history ... too small to be a Parquet file (...
    restore that file from a backup)"). Any command that needs it writes it again."""
    schema_file = original / "_schema" / "digests.parquet"
    assert pq.read_schema(schema_file).equals(DIGEST_SCHEMA, check_metadata=False)
    damage(schema_file)
    later = ingest(copy_cases([LATER_CASE], tmp_path / "later"), original)
    assert (later.events_written, later.attribution.get("error")) == (2, None)
    assert pq.read_schema(schema_file).equals(DIGEST_SCHEMA, check_metadata=False)
    assert rows(original, "SELECT count(*) AS n FROM digests") == [{"n": 0}]
    assert [c["column_name"] for c in rows(original, "DESCRIBE digests")] == DIGEST_SCHEMA.names
    assert list((original / "_schema").glob(".*")) == []
    # A reader finding it damaged writes it again too (readers write _schema/ as well).
    damage(schema_file)
    with connect(Layout.at(original), read_only=True) as con:
        assert _count(con, "digests") == 0
    assert pq.read_schema(schema_file).equals(DIGEST_SCHEMA, check_metadata=False)


def test_an_empty_schema_file_appears_whole_or_not_at_all(
    original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed half-way through writing one leaves no file under its name: it writes
    under a name of its own (its pid's), renamed into place once complete. A writer removes
    what such a process, no longer running, left."""
    schema_file = original / "_schema" / "digests.parquet"
    schema_file.unlink()

    class Killed(BaseException):
        pass

    def half_written(table: pa.Table, where: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1")  # the first bytes, and then the kill
        raise Killed

    monkeypatch.setattr(pipeline.warehouse.connect.pq, "write_table", half_written)
    with pytest.raises(Killed), connect(Layout.at(original), read_only=True):
        pass
    assert not schema_file.exists()
    monkeypatch.undo()
    # What a killed process (a pid no longer running) left; the writer's own cleanup removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    left = original / "_schema" / f".digests.parquet.{int(dead.stdout)}-0badc0de.tmp"
    left.write_bytes(b"PAR1")
    live = original / "_schema" / f".digests.parquet.{os.getpid()}-0badc0de.tmp"
    live.write_bytes(b"PAR1")  # a write of a process still running: not touched
    with (
        writer_lock(Layout.at(original).lock, "test"),
        connect(Layout.at(original), read_only=False) as con,
    ):
        assert _count(con, "digests") == 0
    assert pq.read_schema(schema_file).equals(DIGEST_SCHEMA, check_metadata=False)
    assert sorted(p.name for p in (original / "_schema").glob(".*")) == [live.name]


# ---- a database file a killed run left damaged --------------------------------------------------


def _fresh_database_bytes(tmp_path: Path) -> bytes:
    """The bytes of an empty DuckDB database, as DuckDB writes it when it creates one."""
    made = tmp_path / "fresh.duckdb"
    duckdb.connect(str(made)).close()
    return made.read_bytes()


DAMAGED_DATABASES = [
    pytest.param(lambda fresh: b"", id="empty: killed as DuckDB created it"),
    pytest.param(lambda fresh: fresh[:5000], id="cut short within its headers"),
    pytest.param(lambda fresh: b"not a database " * 1000, id="not DuckDB at all"),
]


def _killed_while_creating_the_database(warehouse: Path, content: bytes) -> None:
    """The state a kill during the first rebuild's re-pointing leaves: the generation published,
    the classification not marked current, the database file as DuckDB had begun it."""
    (warehouse / "derived" / "ATTRIBUTED_WITH").unlink()
    (warehouse / "agenttrail.duckdb").write_bytes(content)
    (warehouse / "agenttrail.duckdb.wal").write_bytes(b"a log of no database")


@pytest.mark.parametrize("damage", DAMAGED_DATABASES)
def test_a_writer_makes_a_damaged_database_file_again(
    original: Path, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    """ingest, sql and attribute all failed with "not a valid DuckDB database file" until the
    file was removed by hand. The file holds only views: a writer holding the warehouse lock
    sets it aside and makes it again; readers get one line saying which command does."""
    content = damage(_fresh_database_bytes(tmp_path))
    _killed_while_creating_the_database(original, content)
    database = original / "agenttrail.duckdb"
    layout = Layout.at(original)
    # A reader (no lock) leaves the file as it is and says what to run.
    with pytest.raises(NotADatabaseError) as caught, connect(layout, read_only=True):
        pass
    assert caught.value.one_line() == (
        f"{database} is not a DuckDB database (empty or cut short, as a run killed while"
        f" creating it leaves it) (it holds only views, which a writer makes again: run"
        f" 'agenttrail attribute --warehouse {original}' (with the ingest's --config, if it had"
        " one))"
    )
    # So does `sql --allow-write`, which opens it for writing without the warehouse lock.
    with pytest.raises(NotADatabaseError), connect(layout, read_only=False):
        pass
    assert database.read_bytes() == content
    # The next ingest (nothing new to read) rebuilds, and makes the database again.
    again = ingest([tmp_path / "in" / CASE], original)
    assert (again.objects_unchanged, again.events_written) == (1, 0)
    assert again.attribution["events"] == 3
    assert rows(original, "SELECT count(*) AS n FROM events_classified") == [{"n": 3}]
    assert not (original / "agenttrail.duckdb.wal").exists()
    aside = original / "agenttrail.duckdb.invalid"
    assert (aside.read_bytes() if aside.exists() else None) == (content or None)


def test_attribute_makes_a_damaged_database_file_again(original: Path) -> None:
    _killed_while_creating_the_database(original, b"")
    summary = attribute_warehouse(settings(original))
    assert summary.events == 3
    assert rows(original, "SELECT count(*) AS n FROM events_classified") == [{"n": 3}]


def test_a_database_duckdb_refuses_for_another_reason_is_left_alone(
    original: Path, tmp_path: Path
) -> None:
    """Only a file DuckDB says is no database at all (or one shorter than its headers) is
    made again: a database with a damaged block (or of a newer DuckDB, or held by another
    process) may be someone's, and is never set aside."""
    database = original / "agenttrail.duckdb"
    content = bytearray(database.read_bytes())
    content[0] ^= 0xFF  # the header's checksum no longer matches
    database.write_bytes(bytes(content))
    with (
        writer_lock(Layout.at(original).lock, "test"),
        pytest.raises(WarehouseError) as caught,
        connect(Layout.at(original), read_only=False),
    ):
        pass
    assert not isinstance(caught.value, NotADatabaseError)
    assert caught.value.message.startswith(f"cannot open {database}: Corrupt database file")
    assert database.read_bytes() == bytes(content)
    assert not (original / "agenttrail.duckdb.invalid").exists()


def test_a_database_held_by_another_process_is_never_set_aside(original: Path) -> None:
    layout = Layout.at(original)
    before = layout.database.read_bytes()
    with (
        held_open(layout.database),
        writer_lock(layout.lock, "test"),
        pytest.raises(DatabaseInUseError),
        connect(layout, read_only=False, wait_seconds=0.2),
    ):
        pass
    assert layout.database.read_bytes() == before
    assert not (original / "agenttrail.duckdb.invalid").exists()


def test_the_first_database_appears_whole(tmp_path: Path) -> None:
    """The first writer creates the database under a hidden name and renames it into place
    once DuckDB has written it: a run killed meanwhile leaves no database (readers say the
    warehouse has no views yet, and name the command that makes them), and the next writer
    starts again from nothing."""
    warehouse = tmp_path / "wh"
    layout = Layout.at(warehouse)
    layout.ensure()
    # What a kill while DuckDB wrote it leaves: its hidden file, half done, and a log.
    (warehouse / ".agenttrail.duckdb.new").write_bytes(b"DUCK" * 100)
    (warehouse / ".agenttrail.duckdb.new.wal").write_bytes(b"log")
    with pytest.raises(WarehouseError) as caught, connect(layout, read_only=True):
        pass
    assert caught.value.message == (
        f"the warehouse {warehouse} has events but no views yet: its first attribution did not"
        " finish"
    )
    with writer_lock(layout.lock, "test"), connect(layout, read_only=False) as con:
        assert _count(con, "events") == 0
    assert sorted(p.name for p in warehouse.iterdir() if "duckdb" in p.name) == [
        "agenttrail.duckdb"
    ]


def test_every_connection_reads_in_utc_whatever_the_machines_zone(
    original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zone (TZ) of the machine decides DuckDB's TimeZone unless the connection sets it:
    at UTC+14 the rebuild's and the readers' days would be a day ahead of `event_date`."""
    layout = Layout.at(original)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        with connect(layout, read_only=True) as reader:
            read = reader.execute("SELECT current_setting('TimeZone')").fetchone()
        with writer_lock(layout.lock, "test"), connect(layout, read_only=False) as writer:
            written = writer.execute("SELECT current_setting('TimeZone')").fetchone()
        with connect_detached(layout) as detached:
            rebuilt = detached.execute("SELECT current_setting('TimeZone')").fetchone()
            day = detached.execute(
                "SELECT TIMESTAMPTZ '2026-10-01 10:00:00+00'::DATE::VARCHAR"
            ).fetchone()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert (read, written, rebuilt, day) == (("UTC",), ("UTC",), ("UTC",), ("2026-10-01",))
