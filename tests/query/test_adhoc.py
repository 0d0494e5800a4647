"""`agenttrail sql`'s read-only guard: EXPLAIN ANALYZE runs what it explains."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.query.adhoc import run_sql


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
    with pytest.raises(UsageError, match=f"refused: a {kind} statement"):
        run_sql(str(tiny_warehouse), template.format(out=out))
    assert not out.exists()


def test_explain_and_explain_analyze_of_a_select_are_allowed(tiny_warehouse: Path) -> None:
    for statement in ("EXPLAIN ANALYZE SELECT count(*) FROM events", "EXPLAIN COPY events TO 'x'"):
        table = run_sql(str(tiny_warehouse), statement)
        assert table.column_names == ["explain_key", "explain_value"]
