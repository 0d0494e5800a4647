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
from pipeline.warehouse.connect import _as_temporary, connect
from pipeline.warehouse.layout import Layout

CASE = "good_cloudtrail.json.gz"
LATER_CASE = "array_of_records.json"


def _count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {view}").fetchone()
    assert row is not None
    return int(row[0])


def _temp_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    found = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE database_name = 'temp' ORDER BY 1"
    ).fetchall()
    return [name for (name,) in found]


@pytest.fixture
def original(tmp_path: Path) -> Path:
    warehouse = tmp_path / "original"
    ingest(copy_cases([CASE], tmp_path / "in"), warehouse)
    return warehouse


def test_views_name_the_folder_they_read(original: Path) -> None:
    assert rows(original, "SELECT root FROM warehouse_location") == [{"root": str(original)}]
    with connect(Layout.at(original), read_only=True) as con:
        assert _temp_views(con) == []  # nothing moved: the stored views are used as they are


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
        assert "events" in _temp_views(con)
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
        assert _temp_views(con) == []


def test_a_view_file_without_its_statement_is_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "99_broken.sql"
    with pytest.raises(WarehouseError, match=r"99_broken\.sql: expected one"):
        _as_temporary("SELECT 1", path)
    assert _as_temporary("CREATE OR REPLACE VIEW v AS SELECT 1", path) == (
        "CREATE OR REPLACE TEMP VIEW v AS SELECT 1"
    )


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
