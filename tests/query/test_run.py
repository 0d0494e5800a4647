"""run_query: binding the scope flags and --param values, and what goes wrong, said in one line."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.errors import QueryError, UsageError
from pipeline.iam.store import import_snapshots
from pipeline.ingest import run_ingest
from pipeline.query.library import Scope, list_queries, open_query, run_query, show_query
from pipeline.query.scope import MAX_INSTANT
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.remote import connect_reader

from .conftest import (
    ROOT,
    SAMPLE,
    SAMPLE_SNAPSHOT_TAKEN_AT,
    TINY_EVENTS,
    USER_QUERIES,
    make_settings,
)

INJECTION = "'; drop view events; --"


def run(warehouse: Path, name: str, **kwargs: object) -> list[dict[str, object]]:
    result = run_query(make_settings(warehouse), name, extra_dirs=[USER_QUERIES], **kwargs)  # type: ignore[arg-type]
    return result.table.to_pylist()


def test_the_period_is_inclusive_of_until_and_bound_as_utc_instants(tiny_warehouse: Path) -> None:
    # tiny: 2026-09-29 x1, 2026-09-30 x3 (two accounts), 2026-10-01 x3.
    rows = run(tiny_warehouse, "calls_per_day", scope=Scope(until=date(2026, 9, 30)))
    assert rows == [
        {"day": date(2026, 9, 29), "calls": 1},
        {"day": date(2026, 9, 30), "calls": 3},
    ]
    result = run_query(
        make_settings(tiny_warehouse),
        "calls_per_day",
        scope=Scope(quarter="2026Q3", account="111111111111"),
        params={"min_calls": "2"},
        extra_dirs=[USER_QUERIES],
    )
    assert result.table.to_pylist() == [{"day": date(2026, 9, 30), "calls": 2}]
    assert result.bound_params == {
        "since": datetime(2026, 7, 1, tzinfo=UTC),
        "until": datetime(2026, 10, 1, tzinfo=UTC),
        "account": "111111111111",
        "min_calls": 2,
    }
    assert result.notices == ()


def test_defaults_are_bound_when_not_given(tiny_warehouse: Path) -> None:
    rows = run(tiny_warehouse, "calls_per_day")
    assert sum(int(r["calls"]) for r in rows) == TINY_EVENTS  # type: ignore[call-overload]
    [row] = run(tiny_warehouse, "typed_params")
    assert row == {
        "v": "it's",
        "i": -3,
        "b": 5_000_000_000,
        "d": 2.5,
        "flag": True,
        "day": date(2026, 7, 1),
        "moment": None,
        "names": ["a", "b,c"],
    }


def test_every_type_is_bound_as_declared(tiny_warehouse: Path) -> None:
    params = {
        "v": "x",
        "i": "7",
        "b": "-1",
        "d": "1e3",
        "flag": "no",
        "day": "2026-01-02",
        "moment": "2026-01-02T03:04:05+02:00",
        "names": "p, q",
    }
    [row] = run(tiny_warehouse, "typed_params", params=params)
    assert row == {
        "v": "x",
        "i": 7,
        "b": -1,
        "d": 1000.0,
        "flag": False,
        "day": date(2026, 1, 2),
        "moment": datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC),
        "names": ["p", "q"],
    }


def test_a_fiscal_quarter_comes_with_a_notice_of_its_dates(tiny_warehouse: Path) -> None:
    settings = make_settings(tiny_warehouse, **{"query.fiscal_year_start_month": 10})
    result = run_query(
        settings, "calls_per_day", scope=Scope(quarter="2027Q1"), extra_dirs=[USER_QUERIES]
    )
    assert result.bound_params["since"] == datetime(2026, 10, 1, tzinfo=UTC)
    assert result.bound_params["until"] == datetime(2027, 1, 1, tzinfo=UTC)
    assert result.table.to_pylist() == [{"day": date(2026, 10, 1), "calls": 3}]
    assert result.notices == (
        "--quarter 2027Q1 is 2026-10-01 to 2026-12-31 (both included), fiscal years starting "
        "in month 10 and named after the calendar year they end in",
    )


def test_a_scope_flag_the_query_does_not_take_is_refused_with_what_it_takes(
    tiny_warehouse: Path,
) -> None:
    with pytest.raises(UsageError) as caught:
        run(tiny_warehouse, "calls_per_day", scope=Scope(principal="arn:aws:iam::1:user/x"))
    assert caught.value.one_line() == (
        "tests/cases/queries/user/calls_per_day.sql:4: query 'calls_per_day' does not take "
        "--principal (it accepts --quarter, --since, --until, --account)"
    )
    with pytest.raises(UsageError) as caught:
        run(tiny_warehouse, "typed_params", scope=Scope(quarter="2026Q3"))
    assert caught.value.one_line().endswith(
        "query 'typed_params' does not take --quarter (it takes no scope flags)"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"min_calls": "ten"},
            "calls_per_day.sql:4: --param min_calls='ten': expected a whole number "
            "(min_calls is INTEGER)",
        ),
        (
            {"limit": "3"},
            "calls_per_day.sql:4: query 'calls_per_day' has no parameter 'limit' "
            "(its parameters: min_calls INTEGER)",
        ),
        ({"since": "2026-01-01"}, "--param since=...: since is a scope parameter (use --since"),
    ],
)
def test_bad_params(tiny_warehouse: Path, params: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(tiny_warehouse, "calls_per_day", params=params)
    assert message in caught.value.one_line()


def test_a_missing_required_param_names_it_and_its_form(tiny_warehouse: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run(tiny_warehouse, "echo_value")
    assert caught.value.one_line() == (
        "tests/cases/queries/user/echo_value.sql:4: query 'echo_value' needs --param value=<text>"
    )


def test_a_parameter_holding_sql_is_data(tiny_warehouse: Path) -> None:
    # Through the library, on the warehouse: the value comes back as it was given.
    assert run(tiny_warehouse, "echo_value", params={"value": INJECTION}) == [
        {"value": INJECTION, "matching_events": 0}
    ]
    # On a writable connection, where a DROP would succeed if the text were ever spliced in.
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'arn:aws:iam::1:user/x' AS principal_arn")
    con.execute("CREATE VIEW events AS SELECT * FROM t")
    for value in (INJECTION, "x' OR '1'='1", "$value", "arn:aws:iam::1:user/x"):
        result = run_query(
            make_settings(tiny_warehouse),
            "echo_value",
            params={"value": value},
            extra_dirs=[USER_QUERIES],
            con=con,
        )
        expected = 1 if value == "arn:aws:iam::1:user/x" else 0
        assert result.table.to_pylist() == [{"value": value, "matching_events": expected}]
    assert con.execute("SELECT count(*) FROM events").fetchone() == (1,)
    with connect_reader(str(tiny_warehouse)) as reader:
        assert reader.execute("SELECT count(*) FROM events").fetchone() == (TINY_EVENTS,)


def test_a_sql_error_names_the_file_and_line(tiny_warehouse: Path) -> None:
    with pytest.raises(QueryError) as caught:
        run(tiny_warehouse, "bad_column")
    assert caught.value.one_line() == (
        "tests/cases/queries/user/bad_column.sql:11: Binder Error: Referenced column "
        '"no_such_column" not found in FROM clause!'
    )


def test_a_runtime_error_names_the_file(tmp_path: Path, tiny_warehouse: Path) -> None:
    (tmp_path / "cast_fails.sql").write_text(
        "-- name: cast_fails\n-- description: d\n-- params: none\n-- grain: g\n-- used_by: u\n"
        "SELECT CAST(event_name AS INTEGER) AS n FROM events\n",
        encoding="utf-8",
    )
    with pytest.raises(QueryError) as caught:
        run_query(make_settings(tiny_warehouse), "cast_fails", extra_dirs=[tmp_path])
    message = caught.value.one_line()
    assert message.startswith(f"{tmp_path / 'cast_fails.sql'}")
    assert "Conversion Error" in message
    assert "\n" not in message


def _user_query(folder: Path, name: str, sql: str) -> None:
    (folder / f"{name}.sql").write_text(
        f"-- name: {name}\n-- description: d\n-- params: none\n-- grain: g\n-- used_by: u\n{sql}\n",
        encoding="utf-8",
    )


def test_open_query_streams_the_result_in_batches(tmp_path: Path, tiny_warehouse: Path) -> None:
    """`agenttrail query run` writes what open_query streams: batches of RESULT_BATCH_ROWS, never
    the whole result at once (10M rows to CSV took 1 GB as one table and one string)."""
    _user_query(tmp_path, "numbers", "SELECT i FROM range(120000) t(i)")
    settings = make_settings(tiny_warehouse)
    with open_query(settings, "numbers", extra_dirs=[tmp_path]) as result:
        sizes = [batch.num_rows for batch in result.reader]
    assert sizes == [50_000, 50_000, 20_000]
    with open_query(settings, "calls_per_day", extra_dirs=[USER_QUERIES]) as result:
        streamed = result.reader.read_all()
        notices = result.notices
    whole = run_query(settings, "calls_per_day", extra_dirs=[USER_QUERIES])
    assert (streamed.equals(whole.table), notices) == (True, whole.notices)


def test_an_error_in_a_later_batch_names_the_file_in_one_line(
    tmp_path: Path, tiny_warehouse: Path
) -> None:
    """A failed cast at row 100,000 arrives while the result is read, as Arrow's error: it is
    the same QueryError as run_query's, naming the file's line (DuckDB's relation API counts
    lines from the statement's first character, past the header's blank lines: this said :2)."""
    _user_query(
        tmp_path,
        "late_failure",
        "SELECT 1 AS one,\n"
        "    CAST(CASE WHEN i < 100000 THEN '1' ELSE 'x' END AS INTEGER) AS n\n"
        "FROM range(120000) t(i)",
    )
    settings = make_settings(tiny_warehouse)
    with (
        open_query(settings, "late_failure", extra_dirs=[tmp_path]) as result,
        pytest.raises(QueryError) as streamed,
    ):
        result.reader.read_all()
    with pytest.raises(QueryError) as whole:
        run_query(settings, "late_failure", extra_dirs=[tmp_path])
    line = (
        f"{tmp_path / 'late_failure.sql'}:7: Conversion Error: Could not convert string 'x' to "
        "INT32"
    )
    assert (streamed.value.one_line(), whole.value.one_line()) == (line, line)


def test_a_warehouse_without_attribution_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "needs_attribution.sql").write_text(
        "-- name: needs_attribution\n-- description: d\n-- params: none\n-- grain: g\n"
        "-- used_by: u\nSELECT count(*) AS n\nFROM events_classified\n",
        encoding="utf-8",
    )
    con = duckdb.connect()
    with pytest.raises(QueryError) as caught:
        run_query(make_settings("unused"), "needs_attribution", extra_dirs=[tmp_path], con=con)
    assert caught.value.one_line().endswith(
        "needs_attribution.sql:7: Catalog Error: Table with name events_classified does not "
        "exist! (this warehouse has no attribution yet (or one another version wrote): run "
        "'agenttrail attribute')"
    )


def test_one_connection_serves_several_queries(tiny_warehouse: Path) -> None:
    settings = make_settings(tiny_warehouse)
    with connect_reader(str(tiny_warehouse)) as con:
        first = run_query(settings, "calls_per_day", extra_dirs=[USER_QUERIES], con=con)
        second = run_query(settings, "calls_per_day", extra_dirs=[USER_QUERIES], con=con)
    assert first.table.equals(second.table)


def test_a_missing_warehouse_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"no warehouse at .*nowhere") as caught:
        run(tmp_path / "nowhere", "calls_per_day")
    assert "\n" not in str(caught.value)


def test_every_built_in_query_binds_every_flag_it_declares(sample_warehouse: Path) -> None:
    """Engine-level check on real data (the result tests of each query are elsewhere): with
    all its flags bound a query still plans, runs and keeps its columns."""
    settings = make_settings(sample_warehouse)
    principal = "arn:aws:iam::111111111111:role/no-such-role"
    with connect_reader(str(sample_warehouse)) as con:
        for query in list_queries(settings):
            unscoped = run_query(settings, query.name, con=con).table
            flags = query.scope_flags
            scope = Scope(
                quarter="2026Q3" if "--quarter" in flags else None,
                account="111111111111" if "--account" in flags else None,
                principal=principal if "--principal" in flags else None,
            )
            scoped = run_query(settings, query.name, scope=scope, con=con)
            assert scoped.table.schema.names == unscoped.schema.names, query.name
            assert set(scoped.bound_params) == {p.name for p in query.params}, query.name


# ---- declared ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "param", "value", "line"),
    [
        # DuckDB's "Out of Range Error" (exit 1), naming no parameter.
        ("access_denied", "burst_minutes", "-1", 19),
        # Accepted silently: an empty result, every denial a burst, every action.
        ("top_talkers", "limit_rows", "-1", 10),
        ("access_denied", "burst_min", "0", 19),
        ("agent_actions", "min_calls", "0", 10),
    ],
)
def test_a_param_outside_its_declared_range_is_refused(
    tiny_warehouse: Path, name: str, param: str, value: str, line: int
) -> None:
    with pytest.raises(UsageError) as caught:
        run(tiny_warehouse, name, params={param: value})
    assert caught.value.one_line() == (
        f"queries/{name}.sql:{line}: --param {param}='{value}' is out of range: {param} must "
        "be 1 or more"
    )
    assert run(tiny_warehouse, name, params={param: "1"}) is not None  # the end is included


def test_every_numeric_param_of_the_library_declares_its_range() -> None:
    for query in list_queries(make_settings("unused")):
        for param in query.query_params:
            if param.type in ("INTEGER", "BIGINT", "DOUBLE"):
                assert param.name in query.bounds, (query.name, param.name)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("n INTEGER = 5 (min x)", "parameter 'n': min 'x' is not a number"),
        ("n INTEGER = 0 (min 1)", "parameter 'n': default 0 is outside 1 or more"),
        ("n VARCHAR = 'x' (min 1)", "parameter 'n': min applies to INTEGER, BIGINT, DOUBLE only"),
    ],
)
def test_a_bad_range_names_the_file_and_line(tmp_path: Path, params: str, message: str) -> None:
    (tmp_path / "ranged.sql").write_text(
        f"-- name: ranged\n-- description: d\n-- params: {params}\n-- grain: g\n"
        "-- used_by: u\nSELECT $n AS n\n"
    )
    with pytest.raises(QueryError) as caught:
        run_query(make_settings("unused"), "ranged", extra_dirs=[tmp_path], con=duckdb.connect())
    assert caught.value.one_line().startswith(f"{tmp_path / 'ranged.sql'}:3: ")
    assert message in caught.value.one_line()


def test_a_free_text_note_is_a_description(tmp_path: Path) -> None:
    """`n INTEGER = 5 (rows to show)` loaded before ranges existed; it failed with "unknown
    note 'rows to show'" after."""
    (tmp_path / "noted.sql").write_text(
        "-- name: noted\n-- description: d\n"
        "-- params: a INTEGER = 1; n INTEGER = 5 (rows to show)\n"
        "-- grain: g\n-- used_by: u\nSELECT $a AS a, $n AS n\n"
    )
    settings, folder, con = make_settings("unused"), [tmp_path], duckdb.connect()
    result = run_query(settings, "noted", params={"n": "-3"}, extra_dirs=folder, con=con)
    assert result.table.to_pylist() == [{"a": 1, "n": -3}]


def test_a_range_on_a_continued_params_line(tmp_path: Path) -> None:
    (tmp_path / "ranged.sql").write_text(
        "-- name: ranged\n-- description: d\n-- params: a INTEGER = 1;\n"
        "--   n DOUBLE (required, min 0, max 1)\n-- grain: g\n-- used_by: u\n"
        "SELECT $a AS a, $n AS n\n"
    )
    settings, folder = make_settings("unused"), [tmp_path]
    con = duckdb.connect()
    result = run_query(settings, "ranged", params={"n": "0.5"}, extra_dirs=folder, con=con)
    assert result.table.to_pylist() == [{"a": 1, "n": 0.5}]
    with pytest.raises(UsageError) as caught:
        run_query(settings, "ranged", params={"n": "1.5"}, extra_dirs=folder, con=con)
    assert caught.value.one_line().endswith(
        "ranged.sql:3: --param n='1.5' is out of range: n must be 0.0 to 1.0"
    )


# ---- the ends of time ---------------------------------------------------------------------------


def test_until_the_last_day_there_is_is_an_open_end(tiny_warehouse: Path) -> None:
    """--until 9999-12-31 and --quarter 9999Q4 ended in "internal error: OverflowError"."""
    everything = run(tiny_warehouse, "top_talkers")
    for scope in (Scope(until=date(9999, 12, 31)), Scope(quarter="9999Q4")):
        result = run_query(make_settings(tiny_warehouse), "top_talkers", scope=scope)
        assert result.bound_params["until"] == MAX_INSTANT
    assert run(tiny_warehouse, "top_talkers", scope=Scope(until=date(9999, 12, 31))) == everything
    assert run(tiny_warehouse, "top_talkers", scope=Scope(quarter="9999Q4")) == []
    # A query that reads IAM snapshots chooses with $until too.
    principals = run(tiny_warehouse, "principals", scope=Scope(until=date(9999, 12, 31)))
    assert principals == run(tiny_warehouse, "principals")


def test_a_time_beyond_the_year_9999_in_utc_is_a_usage_error(tiny_warehouse: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run(tiny_warehouse, "typed_params", params={"moment": "9999-12-31T23:59:59-01:00"})
    assert caught.value.one_line() == (
        "tests/cases/queries/user/typed_params.sql:3: --param "
        "moment='9999-12-31T23:59:59-01:00': outside the years 1 to 9999 in UTC (moment is "
        "TIMESTAMPTZ)"
    )


# ---- principals and coverage say what they know ----------------------------------------------


def test_in_iam_snapshot_is_null_where_no_snapshot_could_list_the_principal(
    tiny_warehouse: Path, tmp_path: Path
) -> None:
    """Without any IAM snapshot it was false for everyone; it is NULL, as agent_role is. With a
    snapshot of one account only, false there (not listed), NULL in the other account."""
    rows = run(tiny_warehouse, "principals")
    assert [(r["principal"], r["in_iam_snapshot"]) for r in rows] == [
        ("arn:aws:iam::111111111111:user/alice", None),
        ("arn:aws:iam::222222222222:user/alice", None),
    ]
    copy = tmp_path / "warehouse"
    shutil.copytree(tiny_warehouse, copy)
    snapshot = SAMPLE / "iam" / "111111111111.json"  # lists carol, not alice
    import_snapshots([snapshot], Layout.at(copy), SAMPLE_SNAPSHOT_TAKEN_AT)
    rows = run(copy, "principals")
    assert [(r["principal"], r["in_iam_snapshot"]) for r in rows] == [
        ("arn:aws:iam::111111111111:user/alice", False),
        ("arn:aws:iam::222222222222:user/alice", None),
    ]
    assert (
        "NULL when no snapshot of the account in its ARN"
        in show_query(make_settings(copy), "principals").description
    )


def _export_of(path: Path, keep: str | None = None, **tags: str) -> Path:
    """The sample's snapshot of 111111111111 written to `path`: with only `keep`'s list filled
    (as `aws iam get-account-authorization-details --filter Role` or `User` prints it: the
    other lists empty), and carol tagged with `tags`."""
    document = json.loads((SAMPLE / "iam" / "111111111111.json").read_text(encoding="utf-8"))
    for user in document["UserDetailList"]:
        if user["UserName"] == "carol" and tags:
            user["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    if keep is not None:
        for key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
            if key != keep:
                document[key] = []
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_an_export_without_users_or_without_roles_says_nothing_of_them(
    sample_warehouse: Path, tmp_path: Path
) -> None:
    """A `--filter Role` export taken after a full one made every IAM user read as absent
    (in_iam_snapshot false, no tags): the newest snapshot of the account applied to users too.
    Each kind is now described by the newest snapshot that lists any of it, as the role
    timeline reads a snapshot without roles; a `--filter User` export likewise leaves roles."""
    copy = tmp_path / "warehouse"
    shutil.copytree(sample_warehouse, copy)
    layout = Layout.at(copy)
    full = _export_of(tmp_path / "full.json", Team="Platform")
    import_snapshots([full], layout, datetime(2026, 7, 1, tzinfo=UTC))
    carol = "arn:aws:iam::111111111111:user/carol"
    harness = "arn:aws:iam::111111111111:role/agents/AgentHarnessRole"

    def rows() -> dict[object, tuple[object, object]]:
        result = run_query(make_settings(copy), "principals", scope=Scope(quarter="2026Q3"))
        # Every snapshot applies from at or before the period's end (the attribution lags: these
        # imports do not rebuild it, and in_iam_snapshot does not read it).
        assert [n for n in result.notices if "IAM snapshot" in n] == []
        return {
            r["principal"]: (r["in_iam_snapshot"], r["iam_tags"])
            for r in result.table.to_pylist()
            if r["principal"] in (carol, harness)
        }

    expected = {carol: (True, "Team=Platform"), harness: (True, "Usage=Agent")}
    assert rows() == expected
    roles_only = _export_of(tmp_path / "roles.json", "RoleDetailList")
    import_snapshots([roles_only], layout, datetime(2026, 7, 15, tzinfo=UTC))
    assert rows() == expected
    users_only = _export_of(tmp_path / "users.json", "UserDetailList", Team="Data")
    import_snapshots([users_only], layout, datetime(2026, 7, 16, tzinfo=UTC))
    assert rows() == {carol: (True, "Team=Data"), harness: (True, "Usage=Agent")}


def test_in_iam_snapshot_is_null_for_users_where_no_snapshot_lists_a_user(
    tiny_warehouse: Path, tmp_path: Path
) -> None:
    """An account's only snapshot lists roles and no user: an export with `--filter Role`, or an
    account without IAM users (Identity Center only). It says nothing of alice, who was false."""
    copy = tmp_path / "warehouse"
    shutil.copytree(tiny_warehouse, copy)
    roles_only = _export_of(tmp_path / "roles.json", "RoleDetailList")
    import_snapshots([roles_only], Layout.at(copy), SAMPLE_SNAPSHOT_TAKEN_AT)
    rows = run(copy, "principals")
    assert [(r["principal"], r["in_iam_snapshot"]) for r in rows] == [
        ("arn:aws:iam::111111111111:user/alice", None),
        ("arn:aws:iam::222222222222:user/alice", None),
    ]


def test_coverage_counts_an_event_without_recipient_account_id_under_unknown(
    tmp_path: Path,
) -> None:
    """Its header said the column would be NULL: ingest gives it the key's account, else the
    text 'unknown' (a file outside the AWSLogs layout has no account in its key)."""
    record = {
        "eventVersion": "1.09",
        "eventID": "no-account-1",
        "eventTime": "2026-09-30T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/a"},
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "export.json").write_text(json.dumps({"Records": [record]}))
    warehouse = tmp_path / "warehouse"
    run_ingest([str(logs)], make_settings(warehouse))
    [row] = run(warehouse, "coverage")
    assert (row["recipient_account_id"], row["aws_region"], row["events"]) == (
        "unknown",
        "us-east-1",
        1,
    )
    description = show_query(make_settings(warehouse), "coverage").description
    assert "else the text 'unknown'" in description
    assert "(or recipientAccountId)" not in description


def _coverage_over(days: list[date], since: datetime | None, until: datetime | None) -> list[Any]:
    """coverage.sql over an events table holding one event on each of `days` (one stream)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (recipient_account_id VARCHAR, aws_region VARCHAR,"
        " event_time TIMESTAMPTZ, event_date DATE, source_uri VARCHAR)"
    )
    for day in days:
        when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        con.execute(
            "INSERT INTO events VALUES ('111111111111', 'us-east-1', $t, $d, 's3://b/k')",
            {"t": when, "d": day},
        )
    sql = (ROOT / "queries" / "coverage.sql").read_text(encoding="utf-8")
    params = {"since": since, "until": until, "account": None}
    return con.execute(
        f"SELECT span_start, span_end, span_days, gap_days FROM ({sql.rstrip().rstrip(';')})",
        params,
    ).fetchall()


def test_coverage_open_end_stops_at_today_or_the_last_event() -> None:
    """--until 9999-12-31 made coverage list ~2.9M missing days per stream (37 s, 175 MB of
    csv for 4 rows): days that have not come yet are not gaps."""
    today = datetime.now(UTC).date()
    week_ago, since = today - timedelta(days=7), today - timedelta(days=9)
    at = datetime(since.year, since.month, since.day, tzinfo=UTC)
    # Events up to a week ago: the days since then, to today, are missing.
    assert _coverage_over([week_ago], at, MAX_INSTANT) == [(since, today, 10, 9)]
    # Events dated in the future (a clock ahead): the span reaches them.
    ahead = today + timedelta(days=3)
    assert _coverage_over([week_ago, ahead], at, MAX_INSTANT) == [(since, ahead, 13, 11)]
    # An end before today is the end given, events or not (days past the data are gaps).
    end = today - timedelta(days=2)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC)
    assert _coverage_over([week_ago], at, until) == [(since, end - timedelta(days=1), 7, 6)]


def _coverage_rows(
    events: list[tuple[str, date]], **params: datetime | str | None
) -> list[tuple[Any, ...]]:
    """coverage.sql over one event per (account, day) of `events` (region us-east-1): per
    account, (account, span_start, span_end, span_days, days_with_events, gap_days)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (recipient_account_id VARCHAR, aws_region VARCHAR,"
        " event_time TIMESTAMPTZ, event_date DATE, source_uri VARCHAR)"
    )
    for account, day in events:
        when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        con.execute(
            "INSERT INTO events VALUES ($acct, 'us-east-1', $t, $d, 's3://b/k')",
            {"acct": account, "t": when, "d": day},
        )
    sql = (ROOT / "queries" / "coverage.sql").read_text(encoding="utf-8")
    bound = {"since": None, "until": None, "account": None, **params}
    return con.execute(
        "SELECT recipient_account_id, span_start, span_end, span_days, days_with_events,"
        f" gap_days FROM ({sql.rstrip().rstrip(';')})",
        bound,
    ).fetchall()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_coverage_without_until_is_an_open_end() -> None:
    """--since alone (and no period at all) ended on the last day with events in scope: NULL
    when the period was silent (0 gap days for a stream that logged nothing), else hiding that
    logging stopped. It ends as --until 9999-12-31 does: today, or the last day with events in
    the warehouse when that is later."""
    today = datetime.now(UTC).date()
    a, b = "111111111111", "222222222222"
    events = [(a, today - timedelta(days=20)), (a, today - timedelta(days=10)), (b, today)]
    since = today - timedelta(days=5)
    silent = _coverage_rows(events[:2], since=_midnight(since))  # nothing since the 5th day ago
    assert silent == [(a, since, today, 6, 0, 6)]
    assert silent == _coverage_rows(events[:2], since=_midnight(since), until=MAX_INSTANT)
    # No period at all: from the first day in the warehouse to today, the same.
    first = today - timedelta(days=20)
    everything = _coverage_rows(events[:2])
    assert everything == [(a, first, today, 21, 2, 19)]
    assert everything == _coverage_rows(events[:2], until=MAX_INSTANT)
    # Events dated after today (a clock ahead): the span reaches them.
    ahead = [*events[:2], (b, today + timedelta(days=2))]
    assert _coverage_rows(ahead, since=_midnight(since)) == [
        (a, since, today + timedelta(days=2), 8, 0, 8),
        (b, since, today + timedelta(days=2), 8, 1, 7),
    ]


def test_coverage_with_account_or_until_alone_spans_the_warehouse() -> None:
    """--account cut the span to the account's own first and last events, and --until alone
    started it on the first event in scope (NULL when none was): an account that started late
    or stopped logging showed no gap. Both ends come from the whole warehouse."""
    today = datetime.now(UTC).date()
    a, b = "111111111111", "222222222222"
    first = today - timedelta(days=30)
    events = [(a, first), (a, today), (b, today - timedelta(days=20))]  # b stopped 20 days ago
    assert _coverage_rows(events, account=b) == [(b, first, today, 31, 1, 30)]
    assert _coverage_rows(events, account=b) == _coverage_rows(events, account=b, until=MAX_INSTANT)
    # --until alone: from the first day in the warehouse, whatever is in scope.
    end = today - timedelta(days=10)
    until = _midnight(end + timedelta(days=1))
    assert _coverage_rows(events, account=b, until=until) == [(b, first, end, 21, 1, 20)]
    assert _coverage_rows(events, until=_midnight(first - timedelta(days=5))) == [
        # Before the first day with events: an empty span, starting on that day.
        (a, first, first - timedelta(days=1), 0, 0, 0),
        (b, first, first - timedelta(days=1), 0, 0, 0),
    ]


def test_coverage_of_a_period_still_to_come_is_an_empty_span() -> None:
    """span_start after span_end (2027Q1 on 2026-11-29 gave 2027-01-01 to 2026-11-29): a span
    ends at the earliest the day before it starts, with no day and no gap."""
    today = datetime.now(UTC).date()
    a = "111111111111"
    events = [(a, today - timedelta(days=3))]
    start = today + timedelta(days=30)
    rows = _coverage_rows(
        events, since=_midnight(start), until=_midnight(today + timedelta(days=60))
    )
    assert rows == [(a, start, start - timedelta(days=1), 0, 0, 0)]
    assert _coverage_rows(events, since=_midnight(start)) == rows
    # A period that has begun ends today.
    since = today - timedelta(days=2)
    rows = _coverage_rows(events, since=_midnight(since), until=_midnight(start))
    assert rows == [(a, since, today, 3, 0, 3)]


def test_coverage_spans_through_the_scope_flags(tiny_warehouse: Path) -> None:
    """The reviewer's cases through run_query: the flags bound as $since/$until/$account."""
    # tiny: 111111111111 on 2026-09-29, 09-30, 10-01; 222222222222 on 09-30 and 10-01.
    today = datetime.now(UTC).date()

    def spans(**scope: Any) -> list[tuple[Any, ...]]:
        rows = run(tiny_warehouse, "coverage", scope=Scope(**scope))
        return [
            (r["recipient_account_id"], r["span_start"], r["span_end"], r["span_days"],
             r["days_with_events"], r["gap_days"], r["missing_days"])
            for r in rows
        ]  # fmt: skip

    # --since alone after the last event: every day since is missing, as with --until 9999-12-31.
    since = date(2026, 10, 2)
    n = (today - since).days + 1
    missing = [since + timedelta(days=k) for k in range(n)]
    silent = spans(since=since)
    assert silent == [
        ("111111111111", since, today, n, 0, n, missing),
        ("222222222222", since, today, n, 0, n, missing),
    ]
    assert silent == spans(since=since, until=date(9999, 12, 31))
    # --until alone with --account: from the warehouse's first day, not the account's.
    d29, d30 = date(2026, 9, 29), date(2026, 9, 30)
    assert spans(until=d30, account="222222222222") == [
        ("222222222222", d29, d30, 2, 1, 1, [d29]),
    ]
    # --until alone before any event: empty, never NULL.
    assert spans(until=date(2026, 9, 1)) == [
        ("111111111111", d29, date(2026, 9, 28), 0, 0, 0, []),
        ("222222222222", d29, date(2026, 9, 28), 0, 0, 0, []),
    ]
    # A quarter still to come: empty, ending the day before it starts.
    assert spans(quarter="9999Q4", account="111111111111") == [
        ("111111111111", date(9999, 10, 1), date(9999, 9, 30), 0, 0, 0, []),
    ]
