"""The warehouse database: where its views read (a copied or moved warehouse), and another
process holding it open.

The views hold the warehouse's absolute path. A copy of a warehouse (an auditor's snapshot, a
backup restored elsewhere) opened by agenttrail must answer from the copy, never from the folder
it was copied from; a writer makes the stored views read the copy for every client.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from ingest_fixtures import copy_cases, held_open, ingest, rows

from pipeline.errors import DatabaseInUseError, WarehouseError
from pipeline.warehouse.connect import connect, connect_detached, define_views
from pipeline.warehouse.layout import Layout

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
        assert con.execute(
            "SELECT count(principal) FROM events_classified"
        ).fetchall() == [(events,)]
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
    assert info.value.hint == "a file it reads is damaged or unreadable: restore that file from" \
        " a backup of the warehouse"


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
        "attribution_rules",
        "attribution_run",
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
