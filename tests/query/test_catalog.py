"""Finding and validating named queries: every header problem names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import QueryError, UsageError
from pipeline.query.catalog import BUILT_IN, USER, discover, load_query
from pipeline.query.library import list_queries, show_query, survey_queries
from pipeline.resources import queries_dir

from .conftest import CASES, USER_QUERIES, make_settings

# case file -> (line, words the one-line error must contain)
BAD_HEADERS = {
    "missing_key.sql": (1, "header lacks grain"),
    "name_mismatch.sql": (1, "name 'some_other_name' differs from the file name 'name_mismatch'"),
    "undeclared_param.sql": (9, "$since is used but not declared in the params line (line 3)"),
    "unused_param.sql": (3, "parameter 'account' is declared but the SQL never uses $account"),
    "bad_type.sql": (3, "parameter 'limit' has unknown type INT4"),
    "bad_default.sql": (3, "parameter 'min_calls': bad default \"'many'\""),
    "bad_params_entry.sql": (3, "bad params entry 'limit'"),
    "scope_wrong_type.sql": (3, "parameter 'since' is set by --since and must be TIMESTAMPTZ"),
    "empty_grain.sql": (4, "grain is empty"),
    "two_statements.sql": (6, "expected one SQL statement, found 2"),
    "writes.sql": (7, "a named query is one SELECT statement, not DROP"),
    "syntax_error.sql": (9, 'Parser Error: syntax error at or near "WHERE"'),
}


def test_every_bad_case_file_is_covered() -> None:
    assert {p.name for p in CASES.glob("*.sql")} == set(BAD_HEADERS)


@pytest.mark.parametrize("name", sorted(BAD_HEADERS))
def test_a_bad_header_names_the_file_and_line(name: str) -> None:
    line, words = BAD_HEADERS[name]
    with pytest.raises(QueryError) as caught:
        load_query(CASES / name)
    message = caught.value.one_line()
    assert message.startswith(f"tests/cases/queries/{name}:{line}: "), message
    assert words in message
    assert "\n" not in message


def test_every_built_in_query_has_a_valid_header() -> None:
    queries = list_queries(make_settings("unused"))
    assert queries, "no built-in queries found"
    for query in queries:
        assert query.origin == BUILT_IN
        assert query.path.parent == queries_dir()
        assert query.summary
        assert query.grain
        assert query.used_by


def test_internal_statements_are_not_named_queries() -> None:
    names = set(discover(make_settings("unused")))
    internal = {p.stem for p in queries_dir().glob("*/*.sql")}
    assert internal, "queries/ has subfolders of internal statements"
    assert not names & internal


def test_a_user_query_replaces_the_built_in_one_with_a_notice() -> None:
    settings = make_settings("unused")
    override = CASES / "override"
    query = show_query(settings, "activity_by_actor", [override])
    assert query.origin == USER
    assert query.path == override / "activity_by_actor.sql"
    assert query.replaces == (queries_dir() / "activity_by_actor.sql",)
    notice = query.notice()
    assert notice is not None
    assert "tests/cases/queries/override/activity_by_actor.sql (user) instead of" in notice
    assert "activity_by_actor.sql" in notice.rsplit("instead of", 1)[1]
    listed = {q.name: q for q in list_queries(settings, [override])}
    assert listed["activity_by_actor"].origin == USER
    assert all(q.origin == BUILT_IN for n, q in listed.items() if n != "activity_by_actor")
    # Without the folder the built-in one is back.
    assert show_query(settings, "activity_by_actor").origin == BUILT_IN


def test_configured_folders_come_before_the_command_line_ones(tmp_path: Path) -> None:
    later = tmp_path / "later"
    later.mkdir()
    (later / "echo_value.sql").write_text(
        (USER_QUERIES / "echo_value.sql").read_text(), encoding="utf-8"
    )
    settings = make_settings("unused", **{"query.queries_dirs": [str(USER_QUERIES)]})
    query = show_query(settings, "echo_value", [later])
    assert query.path == later / "echo_value.sql"
    assert query.replaces == (USER_QUERIES / "echo_value.sql",)


def test_a_relative_configured_folder_is_found_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf" / "my-queries").mkdir(parents=True)
    (tmp_path / "conf" / "my-queries" / "echo_value.sql").write_text(
        (USER_QUERIES / "echo_value.sql").read_text(), encoding="utf-8"
    )
    config = tmp_path / "conf" / "agenttrail.toml"
    config.write_text('[query]\nqueries_dirs = ["my-queries"]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    from pipeline.config import load_settings

    settings = load_settings(config_file=config, environ={})
    assert show_query(settings, "echo_value").origin == USER


def test_a_missing_user_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"queries folder '.*nope' does not exist \(from --queries-dir\)"
    ):
        list_queries(make_settings("unused"), [tmp_path / "nope"])


@pytest.mark.parametrize("where", ["file", "environment"])
def test_a_missing_configured_folder_names_where_it_was_configured(
    tmp_path: Path, where: str
) -> None:
    """A folder from AGENTTRAIL_QUERY_QUERIES_DIRS was said to come from [query] queries_dirs,
    whichever agenttrail.toml the user then looked in."""
    from pipeline.config import load_settings

    config = tmp_path / "agenttrail.toml"
    config.write_text('[query]\nqueries_dirs = ["in-file"]\n' if where == "file" else "")
    environ = {"AGENTTRAIL_QUERY_QUERIES_DIRS": "in-env"} if where == "environment" else {}
    settings = load_settings(config_file=config, environ=environ)
    with pytest.raises(UsageError) as caught:
        list_queries(settings)
    origin = {
        "file": f"[query] queries_dirs in {config}",
        "environment": "environment variable AGENTTRAIL_QUERY_QUERIES_DIRS",
    }[where]
    folder = tmp_path / "in-file" if where == "file" else "in-env"
    assert caught.value.one_line() == (
        f"queries folder '{folder}' does not exist (from {origin}) (create it or fix the path)"
    )


def test_an_unknown_name_suggests_the_closest_one() -> None:
    with pytest.raises(UsageError) as caught:
        show_query(make_settings("unused"), "calls_per_dya", [USER_QUERIES])
    assert caught.value.one_line() == (
        "unknown query 'calls_per_dya'; did you mean 'calls_per_day'? "
        "('agenttrail query list' shows them all)"
    )


def test_a_broken_file_does_not_stop_another_query(tmp_path: Path) -> None:
    (tmp_path / "broken.sql").write_text("SELECT 1\n", encoding="utf-8")
    settings = make_settings("unused")
    assert show_query(settings, "echo_value", [USER_QUERIES, tmp_path]).name == "echo_value"
    with pytest.raises(QueryError, match=r"broken\.sql:1: header lacks name"):
        list_queries(settings, [tmp_path])
    # The survey keeps the others, and says which files are invalid.
    survey = survey_queries(settings, [USER_QUERIES, tmp_path])
    assert [q.name for q in survey.queries] == [
        q.name for q in list_queries(settings, [USER_QUERIES])
    ]
    assert [e.inputs["file"] for e in survey.invalid] == [str(tmp_path / "broken.sql")]
    problem = survey.problem()
    assert problem is not None
    assert problem.one_line() == (
        "1 query file invalid, not listed: broken.sql (fix or move out of the queries folder; "
        "the other queries are listed)"
    )
    assert survey_queries(settings, [USER_QUERIES]).problem() is None


def test_show_gives_the_whole_file_and_the_accepted_flags() -> None:
    query = show_query(make_settings("unused"), "calls_per_day", [USER_QUERIES])
    assert query.text == (USER_QUERIES / "calls_per_day.sql").read_text()
    assert query.scope_flags == ["--quarter", "--since", "--until", "--account"]
    assert [p.name for p in query.query_params] == ["min_calls"]
    assert query.summary == "Calls per UTC day in the period."
    assert query.body_line == 8
