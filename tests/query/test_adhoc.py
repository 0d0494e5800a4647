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
    ],
)
def test_explain_analyze_of_a_write_is_refused(
    tiny_warehouse: Path, tmp_path: Path, template: str, kind: str
) -> None:
    out = tmp_path / "explained.csv"
    with pytest.raises(UsageError, match=f"refused: an {kind} statement"):
        run_sql(str(tiny_warehouse), template.format(out=out))
    assert not out.exists()


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
