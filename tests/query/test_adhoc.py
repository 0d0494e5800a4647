"""`agenttrail sql`'s read-only guard: EXPLAIN ANALYZE runs what it explains."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.errors import QueryError, UsageError
from pipeline.query.adhoc import run_sql, sql_error


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
        "no attribution yet: run 'agenttrail attribute')",
    )
    typo = sql_error(duckdb.CatalogException("Catalog Error: Table with name sesions does not "
                                              "exist!"), "SELECT * FROM sesions")  # fmt: skip
    assert (type(typo), typo.exit_code) == (UsageError, 2)
