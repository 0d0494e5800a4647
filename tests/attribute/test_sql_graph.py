"""The attribution SQL as a graph (pipeline/attribute/sql_graph.py): who waits for whom, and
the two-connection runner."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.attribute.sql_graph import SqlLanes, plan
from pipeline.errors import OutOfMemoryError, WarehouseError
from pipeline.resources import queries_dir


def _sql_file(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.sql"
    path.write_text(
        f"-- name: {name}\n-- description: test step\n-- params: none\n-- grain: test\n"
        f"-- used_by: tests\n{body}\n"
    )
    return path


def _run_failing(
    con: duckdb.DuckDBPyConnection, folder: Path, expected: type[WarehouseError]
) -> WarehouseError:
    """The error of type `expected` that running the folder's steps raises (lanes closed)."""
    lanes = SqlLanes(con)
    try:
        with pytest.raises(expected) as caught:
            lanes.run(plan(folder.glob("*.sql")))
    finally:
        lanes.close()
    return caught.value


def test_shipped_files_wait_only_for_what_they_read() -> None:
    steps = plan((queries_dir() / "attribute").glob("*.sql"))
    assert {s.name: sorted(s.after) for s in steps} == {
        "05_source_events.sql": [],
        "10_role_agent_timeline.sql": ["05_source_events.sql"],
        "20_sessions.sql": ["05_source_events.sql"],
        "30_mcp_links.sql": ["05_source_events.sql"],
        "40_user_agents.sql": ["05_source_events.sql"],
        "50_classification.sql": [
            "05_source_events.sql",
            "10_role_agent_timeline.sql",
            "20_sessions.sql",
            "30_mcp_links.sql",
            "40_user_agents.sql",
        ],
    }
    created = {name for s in steps for name in s.creates}
    # Every derived table the rebuild publishes comes from one of them.
    assert {
        "sessions",
        "mcp_tool_calls",
        "mcp_grants",
        "role_agent_observations",
        "role_agent_intervals",
    } <= created
    assert "attribution_rules" in created


def test_names_in_comments_and_strings_are_no_dependency(tmp_path: Path) -> None:
    _sql_file(tmp_path, "01_a", "CREATE OR REPLACE TABLE alpha AS SELECT 1 AS x;")
    _sql_file(
        tmp_path,
        "02_b",
        "-- alpha is mentioned here only\nCREATE OR REPLACE TABLE beta AS SELECT 'alpha' AS x;",
    )
    _sql_file(tmp_path, "03_c", "CREATE OR REPLACE VIEW gamma AS SELECT * FROM Alpha, beta;")
    steps = plan(tmp_path.glob("*.sql"))
    assert [(s.name, sorted(s.creates), sorted(s.after)) for s in steps] == [
        ("01_a.sql", ["alpha"], []),
        ("02_b.sql", ["beta"], []),
        ("03_c.sql", ["gamma"], ["01_a.sql", "02_b.sql"]),
    ]


def test_lanes_run_every_step_after_what_it_reads(tmp_path: Path) -> None:
    _sql_file(tmp_path, "01_a", "CREATE OR REPLACE TABLE a AS SELECT range AS x FROM range(5);")
    _sql_file(tmp_path, "02_b", "CREATE OR REPLACE TABLE b AS SELECT sum(x) AS s FROM a;")
    _sql_file(tmp_path, "03_c", "CREATE OR REPLACE TABLE c AS SELECT count(*) AS n FROM a;")
    _sql_file(tmp_path, "04_d", "CREATE OR REPLACE TABLE d AS SELECT s + n AS t FROM b, c;")
    con = duckdb.connect()
    lanes = SqlLanes(con)
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def after_b(cursor: duckdb.DuckDBPyConnection) -> None:
        rows = cursor.execute("SELECT s FROM b").fetchall()
        with lock:
            seen.append(("b", int(rows[0][0])))

    lanes.after_step("02_b.sql", after_b)
    try:
        lanes.run(plan(tmp_path.glob("*.sql")))
        lanes.finish()
    finally:
        lanes.close()
    assert con.execute("SELECT t FROM d").fetchall() == [(15,)]
    assert seen == [("b", 10)]


def test_a_failing_step_names_its_file_and_stops_the_rest(tmp_path: Path) -> None:
    _sql_file(tmp_path, "01_a", "CREATE OR REPLACE TABLE a AS SELECT 1 AS x;")
    _sql_file(tmp_path, "02_bad", "CREATE OR REPLACE TABLE bad AS SELECT no_such_column FROM a;")
    _sql_file(tmp_path, "03_c", "CREATE OR REPLACE TABLE c AS SELECT * FROM bad;")
    con = duckdb.connect()
    error = _run_failing(con, tmp_path, WarehouseError)
    assert str(error).startswith("02_bad.sql: attribution SQL failed: Binder Error")
    assert error.inputs["file"] == str(tmp_path / "02_bad.sql")
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"a"}


def test_a_step_out_of_memory_says_so_in_one_line(tmp_path: Path) -> None:
    """Its own error class (the rebuild adds which limit to raise), and DuckDB's first line
    only: the rest is DuckDB's advice about its own settings."""
    _sql_file(
        tmp_path,
        "01_big",
        "CREATE OR REPLACE TABLE big AS SELECT i % 50000 AS g, list(i::VARCHAR || 'x') AS l"
        " FROM range(400000) AS r(i) GROUP BY g;",
    )
    con = duckdb.connect()
    con.execute("SET memory_limit = '1MB'")
    error = _run_failing(con, tmp_path, OutOfMemoryError)
    message = str(error)
    assert message.startswith("01_big.sql: DuckDB ran out of memory (")
    assert "\n" not in message
    assert "Out of Memory Error" not in message
    assert error.hint is None
    assert error.inputs == {"file": str(tmp_path / "01_big.sql")}


def test_a_failing_follower_is_raised_by_finish(tmp_path: Path) -> None:
    _sql_file(tmp_path, "01_a", "CREATE OR REPLACE TABLE a AS SELECT 1 AS x;")
    con = duckdb.connect()
    lanes = SqlLanes(con)

    def broken(cursor: duckdb.DuckDBPyConnection) -> None:
        raise WarehouseError("follower failed")

    lanes.after_step("01_a.sql", broken)
    try:
        lanes.run(plan(tmp_path.glob("*.sql")))
        with pytest.raises(WarehouseError, match="follower failed"):
            lanes.finish()
    finally:
        lanes.close()


def test_an_interrupted_run_stops_the_statements_still_running(tmp_path: Path) -> None:
    """A signal in the rebuild (here a real SIGINT; the CLI turns SIGTERM into an exception in
    the main thread the same way) must not wait for the statements that run for minutes:
    close() interrupts both."""
    _sql_file(
        tmp_path,
        "01_long",
        "CREATE OR REPLACE TABLE long AS SELECT count(*) AS n FROM range(100000000000) t(i)"
        " WHERE i % 7 = 3;",
    )
    _sql_file(
        tmp_path,
        "02_longer",
        "CREATE OR REPLACE TABLE longer AS SELECT count(*) AS n FROM range(100000000000) t(i)"
        " WHERE i % 11 = 3;",
    )
    con = duckdb.connect()
    lanes = SqlLanes(con)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            lanes.run(plan(tmp_path.glob("*.sql")))
    finally:
        timer.cancel()
        lanes.close()
    assert time.monotonic() - started < 10
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == set()
