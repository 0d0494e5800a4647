"""run_query: binding the scope flags and --param values, and what goes wrong, said in one line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import QueryError, UsageError
from pipeline.query.library import Scope, list_queries, run_query
from pipeline.warehouse.remote import connect_reader

from .conftest import TINY_EVENTS, USER_QUERIES, make_settings

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
        "--quarter 2027Q1 is 2026-10-01 to 2027-01-01 (excluded), fiscal years starting in "
        "month 10 and named after the calendar year they end in",
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
        "exist! (this warehouse has no attribution yet: run 'agenttrail attribute')"
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
