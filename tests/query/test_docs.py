"""docs/queries.md is generated from the query headers and must not be stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.query.docs import REGENERATE, built_in_queries, docs_path, main, render_docs


def test_docs_queries_md_is_up_to_date() -> None:
    path = docs_path()
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current != render_docs():
        pytest.fail(f"docs/queries.md is stale: run `{REGENERATE}` and commit the result")


def test_the_docs_describe_every_built_in_query() -> None:
    text = render_docs()
    for query in built_in_queries():
        assert f"\n### {query.name}\n\n{query.description}\n" in text
        assert f"| [{query.name}](#{query.name}) |" in text
        for param in query.query_params:
            assert f"| `{param.name}` | `{param.type}` |" in text


def test_the_docs_give_each_parameter_its_range() -> None:
    text = render_docs()
    assert "  | name | type | default | allowed |\n" in text
    assert "  | `burst_minutes` | `INTEGER` | `10` | 1 or more |\n" in text
    assert "  | `limit_rows` | `INTEGER` | `20` | 1 or more |\n" in text


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "queries.md"
    target.write_text("old\n", encoding="utf-8")
    assert main(["--check", "--out", str(target)]) == 1
    assert f"{target} is stale: run {REGENERATE}" in capsys.readouterr().err
    assert main(["--out", str(target)]) == 0
    assert main(["--check", "--out", str(target)]) == 0
