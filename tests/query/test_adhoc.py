"""`agenttrail sql`'s read-only guard (EXPLAIN ANALYZE runs what it explains; only the pragmas
that read run), how a refusal reads, and the time zone of every connection."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import OutOfMemoryError, QueryError, UsageError
from pipeline.query.adhoc import run_internal, run_sql, sql_error
from pipeline.warehouse.layout import Layout


@pytest.mark.parametrize(
    ("template", "kind"),
    [
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'", "EXPLAIN ANALYZE COPY"),
        ("explain analyse copy (select 1) to '{out}'", "EXPLAIN ANALYZE COPY"),
        ("-- why\n/* how */ EXPLAIN (ANALYZE) COPY (SELECT 1) TO '{out}'", "EXPLAIN ANALYZE COPY"),
        ("EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", "EXPLAIN ANALYZE CREATE"),
        # A comment may stand between any two words.
        ("EXPLAIN /**/ ANALYZE COPY (SELECT 1) TO '{out}'", "EXPLAIN ANALYZE COPY"),
        ("EXPLAIN -- plan\nANALYZE COPY (SELECT 1) TO '{out}'", "EXPLAIN ANALYZE COPY"),
        ("EXPLAIN ( /* x */ ANALYZE) COPY (SELECT 1) TO '{out}'", "EXPLAIN ANALYZE COPY"),
    ],
)
def test_explain_analyze_of_a_write_is_refused(
    tiny_warehouse: Path, tmp_path: Path, template: str, kind: str
) -> None:
    out = tmp_path / "explained.csv"
    with pytest.raises(UsageError, match=f"refused: an {kind} statement"):
        run_sql(str(tiny_warehouse), template.format(out=out))
    assert not out.exists()


def test_import_database_is_refused(tiny_warehouse: Path, tmp_path: Path) -> None:
    """DuckDB types IMPORT DATABASE as a PRAGMA, yet it runs the folder's schema.sql."""
    out = tmp_path / "imported.csv"
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "schema.sql").write_text(f"COPY (SELECT 42 AS x) TO '{out}';\n")
    (folder / "load.sql").write_text("")
    with pytest.raises(UsageError, match="refused: an IMPORT DATABASE statement"):
        run_sql(str(tiny_warehouse), f"/* restore */ IMPORT DATABASE '{folder}'")
    assert not out.exists()
    assert run_sql(str(tiny_warehouse), "PRAGMA version").num_rows == 1


def test_comment_marks_inside_strings_are_not_comments(tiny_warehouse: Path) -> None:
    table = run_sql(str(tiny_warehouse), "EXPLAIN SELECT '-- not a comment', '/* nor this */'")
    assert table.column_names == ["explain_key", "explain_value"]


def test_explain_and_explain_analyze_of_a_select_are_allowed(tiny_warehouse: Path) -> None:
    for statement in ("EXPLAIN ANALYZE SELECT count(*) FROM events", "EXPLAIN COPY events TO 'x'"):
        table = run_sql(str(tiny_warehouse), statement)
        assert table.column_names == ["explain_key", "explain_value"]


def test_a_view_attribution_has_not_made_yet_is_the_warehouses_gap() -> None:
    """A statement naming events_classified before the first attribution is not a bad
    statement (exit 1, with what to run); an unknown table of the user's own is (exit 2)."""
    missing = duckdb.CatalogException("Catalog Error: Table with name sessions does not exist!")
    gap = sql_error(missing, "SELECT * FROM sessions")
    assert (type(gap), gap.one_line()) == (
        QueryError,
        "SQL error: Catalog Error: Table with name sessions does not exist! (this warehouse has "
        "no attribution yet (or one another version wrote): run 'agenttrail attribute')",
    )
    typo = sql_error(duckdb.CatalogException("Catalog Error: Table with name sesions does not "
                                              "exist!"), "SELECT * FROM sesions")  # fmt: skip
    assert (type(typo), typo.exit_code) == (UsageError, 2)


@pytest.mark.parametrize(
    "error",
    [
        duckdb.OutOfMemoryException(
            "Out of Memory Error: failed to allocate data of size 16.0 MiB (32.0 MiB/47.6 MiB used)"
            "\n\nPossible solutions:\n* Increasing the memory limit (SET memory_limit='...GB')"
        ),
        # How Arrow hands it on when a later batch of a streamed result runs out.
        OSError(
            "Out of Memory Error: failed to pin block of size 256.0 KiB (47.5 MiB/47.6 MiB used)"
        ),
    ],
    ids=["planning", "streaming"],
)
def test_out_of_memory_names_the_setting_to_raise(error: Exception) -> None:
    """It said DuckDB's words alone, whose advice (SET memory_limit) no command takes."""
    failed = sql_error(error, "SELECT 1")
    detail = str(error).splitlines()[0]
    assert (type(failed), failed.exit_code, failed.one_line()) == (
        OutOfMemoryError,
        1,
        f"SQL error: {detail} (raise [query] duckdb_memory_limit in agenttrail.toml or with"
        " AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT)",
    )


# ---- pragmas: only those that read, in any form ------------------------------------------------


@pytest.fixture
def import_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder IMPORT DATABASE / import_database would run, and the file its schema.sql writes."""
    out = tmp_path / "written_by_import.csv"
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "schema.sql").write_text(f"COPY (SELECT 42 AS x) TO '{out}';\n")
    (folder / "load.sql").write_text("")
    return folder, out


@pytest.mark.parametrize(
    ("template", "line"),
    [
        (
            "PRAGMA import_database('{folder}')",
            "refused: PRAGMA import_database is not one of the pragmas that only read",
        ),
        (
            "pragma /* x */ \"IMPORT_DATABASE\"('{folder}');",
            "refused: PRAGMA import_database is not one of the pragmas that only read",
        ),
        (  # DuckDB types this one a SET
            "PRAGMA import_database = '{folder}'",
            "refused: a PRAGMA statement can change the warehouse or write files",
        ),
        (
            "CALL pragma_import_database('{folder}')",
            "refused: a CALL statement can change the warehouse or write files",
        ),
        ("IMPORT DATABASE '{folder}'", "refused: an IMPORT DATABASE statement can change the"),
        (
            "SELECT * FROM pragma_import_database('{folder}')",  # no such table function
            "SQL error: Catalog Error: Table Function with name pragma_import_database does "
            "not exist!",
        ),
    ],
)
def test_import_database_is_refused_in_every_form(
    tiny_warehouse: Path, import_folder: tuple[Path, Path], template: str, line: str
) -> None:
    """It runs the folder's schema.sql and load.sql: any COPY ... TO, into the warehouse too."""
    folder, out = import_folder
    with pytest.raises(UsageError) as caught:
        run_sql(str(tiny_warehouse), template.format(folder=folder))
    assert caught.value.one_line().startswith(line)
    assert not out.exists()


@pytest.mark.parametrize(
    ("statement", "line"),
    [
        ("PRAGMA copy_database(memory, other)", "refused: PRAGMA copy_database is not one"),
        (
            "PRAGMA json_execute_serialized_sql('{}')",
            "refused: PRAGMA json_execute_serialized_sql is not one",
        ),
        ("PRAGMA enable_profiling", "refused: PRAGMA enable_profiling is not one"),
        ("PRAGMA force_checkpoint", "refused: PRAGMA force_checkpoint is not one"),
        ("PRAGMA table_info = 'events'", "refused: PRAGMA table_info = ... is not one"),
        ("PRAGMA threads = 4", "refused: a PRAGMA statement can change"),  # DuckDB: a SET
        ("CALL checkpoint()", "refused: a CALL statement can change"),
    ],
)
def test_every_other_pragma_is_a_write(tiny_warehouse: Path, statement: str, line: str) -> None:
    with pytest.raises(UsageError) as caught:
        run_sql(str(tiny_warehouse), statement)
    assert caught.value.one_line().startswith(line)
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("pass --allow-write if that is what you want")


def test_the_refusal_of_a_pragma_lists_those_that_only_read(tiny_warehouse: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run_sql(str(tiny_warehouse), "PRAGMA enable_profiling")
    assert caught.value.one_line() == (
        "refused: PRAGMA enable_profiling is not one of the pragmas that only read (pass "
        "--allow-write if that is what you want; these only read: collations, database_list, "
        "database_size, extension_versions, functions, metadata_info, platform, show, "
        "show_databases, show_tables, show_tables_expanded, storage_info, table_info, "
        "user_agent, version)"
    )


@pytest.mark.parametrize(
    ("statement", "first_column"),
    [
        ("PRAGMA version", "library_version"),
        ("pragma VERSION;", "library_version"),
        ("PRAGMA \"table_info\"('events')", "cid"),
        ("PRAGMA show_tables", "name"),
        ("PRAGMA database_size", "database_name"),
        ("CALL pragma_table_info('events')", "cid"),
        ("SELECT * FROM pragma_version()", "library_version"),
    ],
)
def test_the_pragmas_that_only_read_run(
    tiny_warehouse: Path, statement: str, first_column: str
) -> None:
    table = run_sql(str(tiny_warehouse), statement)
    assert table.column_names[0] == first_column
    assert table.num_rows >= 1


def test_with_allow_write_import_database_runs(
    tiny_warehouse: Path, import_folder: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "warehouse"
    shutil.copytree(tiny_warehouse, copy)
    folder, out = import_folder
    run_sql(str(copy), f"PRAGMA import_database('{folder}')", allow_write=True)
    assert out.read_text() == "x\n42\n"


# ---- wording --------------------------------------------------------------------------------


def test_a_pivot_without_in_is_named_for_what_it_is(tiny_warehouse: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run_sql(str(tiny_warehouse), "PIVOT events ON event_name USING count(*)")
    assert caught.value.one_line() == (
        "refused: a PIVOT without IN expands to several statements, the first creating a type "
        "of the values it finds (list the values to pivot on with IN: PIVOT ... ON col IN "
        "('a', 'b') USING ...; or pass --allow-write if that is what you want)"
    )
    table = run_sql(
        str(tiny_warehouse),
        "PIVOT (SELECT event_name FROM events) ON event_name IN ('GetObject', 'DeleteBucket') "
        "USING count(*)",
    )
    assert table.to_pylist() == [{"GetObject": 1, "DeleteBucket": 1}]


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("USE memory", "refused: a USE statement"),
        ("UPDATE events SET event_name = 'x'", "refused: an UPDATE statement"),
        ("INSTALL httpfs", "refused: an INSTALL statement"),
        ("SET threads = 1", "refused: a SET statement"),
    ],
)
def test_a_refusal_reads_as_english(tiny_warehouse: Path, statement: str, words: str) -> None:
    with pytest.raises(UsageError, match=f"^{words} can change the warehouse or write files$"):
        run_sql(str(tiny_warehouse), statement)


# ---- every connection reads in UTC ------------------------------------------------------------


@pytest.fixture
def far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's zone UTC+14, where 10:00Z on 2026-10-01 is already 2026-10-02."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


LAST_DAY = "SELECT max(event_time)::DATE AS d, strftime(max(event_time), '%H:%M') AS t FROM events"


@pytest.mark.usefixtures("far_east")
def test_sql_is_in_utc_with_allow_write_too(tiny_warehouse: Path, tmp_path: Path) -> None:
    copy = tmp_path / "warehouse"
    shutil.copytree(tiny_warehouse, copy)
    expected = [{"d": date(2026, 10, 1), "t": "17:00"}]  # tiny's last event: 2026-10-01T17:00Z
    assert run_sql(str(copy), LAST_DAY).to_pylist() == expected
    assert run_sql(str(copy), LAST_DAY, allow_write=True).to_pylist() == expected


def test_the_demo_summary_is_in_utc(
    sample_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = Layout.at(sample_warehouse)
    in_utc = run_internal(layout, "summary/agents_seen").to_pylist()
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        far_east = run_internal(layout, "summary/agents_seen").to_pylist()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert far_east == in_utc
    # The days are those of the UTC instants: each agent's last event, read in UTC.
    last = run_sql(
        str(sample_warehouse),
        "SELECT agent_name, access_path, max(event_time) AS t FROM events_classified "
        "WHERE actor_kind = 'agent' GROUP BY ALL",
    ).to_pylist()
    assert {(r["agent_name"], r["access_path"], r["last_seen"]) for r in far_east} == {
        (r["agent_name"], r["access_path"], r["t"].astimezone(UTC).date()) for r in last
    }
