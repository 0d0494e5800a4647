"""--quarter, --since/--until, --account, --principal -> the bound scope parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline.errors import UsageError
from pipeline.query.scope import MAX_INSTANT, Scope, accepted_flags, quarter_days, scope_values


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026Q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026Q2", date(2026, 4, 1), date(2026, 7, 1)),
        ("2026Q3", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-q3", date(2026, 7, 1), date(2026, 10, 1)),
        ("FY2026Q3", date(2026, 7, 1), date(2026, 10, 1)),
    ],
)
def test_calendar_quarters(text: str, start: date, end: date) -> None:
    assert quarter_days(text) == (start, end - timedelta(days=1))


@pytest.mark.parametrize(
    ("month", "text", "start", "end"),
    [
        # US federal convention: FY2027 runs 2026-10-01 .. 2027-09-30.
        (10, "2027Q1", date(2026, 10, 1), date(2027, 1, 1)),
        (10, "FY2027Q2", date(2027, 1, 1), date(2027, 4, 1)),
        (10, "2027Q4", date(2027, 7, 1), date(2027, 10, 1)),
        # April fiscal years (UK, India, Japan): FY2027 runs 2026-04-01 .. 2027-03-31.
        (4, "2027Q1", date(2026, 4, 1), date(2026, 7, 1)),
        (4, "2027Q4", date(2027, 1, 1), date(2027, 4, 1)),
        # February: a quarter that straddles the calendar year.
        (2, "2027Q4", date(2026, 11, 1), date(2027, 2, 1)),
        (1, "2027Q1", date(2027, 1, 1), date(2027, 4, 1)),
    ],
)
def test_fiscal_quarters_are_named_after_the_year_they_end_in(
    month: int, text: str, start: date, end: date
) -> None:
    assert quarter_days(text, month) == (start, end - timedelta(days=1))


@pytest.mark.parametrize("text", ["2026Q5", "2026", "Q3 2026", "26Q1", "2026Q3x"])
def test_a_bad_quarter_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="is not a quarter"):
        quarter_days(text)


def test_a_fiscal_month_out_of_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="fiscal_year_start_month 13 is not a month"):
        quarter_days("2026Q1", 13)


def test_quarter_binds_since_and_the_first_instant_after_it() -> None:
    assert scope_values(Scope(quarter="2026Q3")) == {
        "since": utc(2026, 7, 1),
        "until": utc(2026, 10, 1),
    }
    assert scope_values(Scope(quarter="2027Q1"), 10) == {
        "since": utc(2026, 10, 1),
        "until": utc(2027, 1, 1),
    }


def test_until_is_inclusive_on_the_command_line_and_excluded_when_bound() -> None:
    values = scope_values(Scope(since=date(2026, 7, 1), until=date(2026, 9, 30)))
    assert values == {"since": utc(2026, 7, 1), "until": utc(2026, 10, 1)}
    assert values["until"].isoformat() == "2026-10-01T00:00:00+00:00"
    one_day = scope_values(Scope(since=date(2026, 9, 30), until=date(2026, 9, 30)))
    assert one_day == {"since": utc(2026, 9, 30), "until": utc(2026, 10, 1)}


def test_account_and_principal() -> None:
    values = scope_values(Scope(account="111111111111", principal=" arn:aws:iam::1:role/x "))
    assert values == {"account": "111111111111", "principal": "arn:aws:iam::1:role/x"}


@pytest.mark.parametrize(
    ("scope", "words"),
    [
        (Scope(quarter="2026Q3", since=date(2026, 7, 1)), "cannot be combined"),
        (Scope(since=date(2026, 8, 1), until=date(2026, 7, 1)), "is after --until"),
        (Scope(account="1234"), "is not an account id"),
        (Scope(principal="  "), "--principal is empty"),
    ],
)
def test_bad_scope_flags(scope: Scope, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        scope_values(scope)


def test_accepted_flags_follow_the_declared_parameters() -> None:
    assert accepted_flags({"since", "until", "account", "principal", "x"}) == [
        "--quarter",
        "--since",
        "--until",
        "--account",
        "--principal",
    ]
    assert accepted_flags({"since"}) == ["--since"]  # no --quarter without $until
    assert accepted_flags(set()) == []
    assert Scope(quarter="2026Q3", account="1").flags() == ["--quarter", "--account"]


def test_the_last_day_there_is_ends_at_the_last_instant_there_is() -> None:
    """--until 9999-12-31 has no midnight after it that Python holds (year 10000): an open end,
    MAX_INSTANT, and so does the quarter it ends."""
    assert datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) == MAX_INSTANT
    assert scope_values(Scope(until=date(9999, 12, 31))) == {"until": MAX_INSTANT}
    assert scope_values(Scope(since=date(9999, 12, 31), until=date(9999, 12, 31))) == {
        "since": utc(9999, 12, 31),
        "until": MAX_INSTANT,
    }
    assert quarter_days("9999Q4") == (date(9999, 10, 1), date(9999, 12, 31))
    assert scope_values(Scope(quarter="9999Q4")) == {
        "since": utc(9999, 10, 1),
        "until": MAX_INSTANT,
    }
    # A fiscal FY9999 ends before the calendar year does.
    assert scope_values(Scope(quarter="9999Q4"), 10) == {
        "since": utc(9999, 7, 1),
        "until": utc(9999, 10, 1),
    }
    assert scope_values(Scope(quarter="0001Q1")) == {"since": utc(1, 1, 1), "until": utc(1, 4, 1)}


@pytest.mark.parametrize(
    ("text", "month", "line"),
    [
        ("0000Q4", 1, "--quarter 0000Q4 would begin before the year 1 (choose a later quarter)"),
        (
            "0001Q1",
            10,
            "--quarter 0001Q1 would begin before the year 1 (fiscal years starting in month 10) "
            "(choose a later quarter)",
        ),
    ],
)
def test_a_quarter_before_the_year_1_is_a_usage_error(text: str, month: int, line: str) -> None:
    with pytest.raises(UsageError) as caught:
        scope_values(Scope(quarter=text), month)
    assert caught.value.one_line() == line
    assert scope_values(Scope(quarter="0001Q2"), 10)["since"] == utc(1, 1, 1)
