"""Parameter values: command-line text and header defaults -> typed values."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.query.params import Bounds, convert, parse_default, parse_note


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("it's", "VARCHAR", "it's"),
        (" 42 ", "INTEGER", 42),
        ("-7", "BIGINT", -7),
        ("5000000000", "BIGINT", 5_000_000_000),
        ("2.5", "DOUBLE", 2.5),
        ("1e3", "DOUBLE", 1000.0),
        ("yes", "BOOLEAN", True),
        ("FALSE", "BOOLEAN", False),
        ("0", "BOOLEAN", False),
        ("2026-09-30", "DATE", date(2026, 9, 30)),
        ("2026-09-30", "TIMESTAMPTZ", datetime(2026, 9, 30, tzinfo=UTC)),
        ("2026-09-30T12:30", "TIMESTAMPTZ", datetime(2026, 9, 30, 12, 30, tzinfo=UTC)),
        ("2026-09-30T12:30Z", "TIMESTAMPTZ", datetime(2026, 9, 30, 12, 30, tzinfo=UTC)),
        ("2026-09-30T14:30+02:00", "TIMESTAMPTZ", datetime(2026, 9, 30, 12, 30, tzinfo=UTC)),
        ("a, b,,c", "VARCHAR[]", ["a", "b", "c"]),
        ("", "VARCHAR[]", []),
    ],
)
def test_convert(text: str, type_: str, value: Any) -> None:
    converted = convert(text, type_)
    assert converted == value
    assert type(converted) is type(value)
    if isinstance(value, datetime):
        assert converted.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "type_", "reason"),
    [
        ("ten", "INTEGER", "expected a whole number"),
        ("1.5", "INTEGER", "expected a whole number"),
        ("2147483648", "INTEGER", "out of range for INTEGER"),
        ("9223372036854775808", "BIGINT", "out of range for BIGINT"),
        ("abc", "DOUBLE", "expected a number"),
        ("nan", "DOUBLE", "expected a finite number"),
        ("maybe", "BOOLEAN", "expected true or false"),
        ("2026-13-01", "DATE", "expected a date YYYY-MM-DD"),
        ("yesterday", "TIMESTAMPTZ", "expected a time"),
        # In UTC, the year 10000 (and 0): datetime raised OverflowError, an "internal error".
        ("9999-12-31T23:59:59-01:00", "TIMESTAMPTZ", "^outside the years 1 to 9999 in UTC$"),
        ("0001-01-01T00:00:00+01:00", "TIMESTAMPTZ", "^outside the years 1 to 9999 in UTC$"),
    ],
)
def test_convert_errors_say_what_was_expected(text: str, type_: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        convert(text, type_)


@pytest.mark.parametrize(
    ("literal", "type_", "value"),
    [
        ("NULL", "TIMESTAMPTZ", None),
        ("null", "VARCHAR[]", None),
        ("'it''s'", "VARCHAR", "it's"),
        ("10", "INTEGER", 10),
        ("-1", "BIGINT", -1),
        ("0.25", "DOUBLE", 0.25),
        ("TRUE", "BOOLEAN", True),
        ("false", "BOOLEAN", False),
        ("'2026-07-01'", "DATE", date(2026, 7, 1)),
        ("'2026-07-01T00:00:00+02:00'", "TIMESTAMPTZ", datetime(2026, 6, 30, 22, tzinfo=UTC)),
        ("[]", "VARCHAR[]", []),
        ("['a', 'b,c', 'd''e']", "VARCHAR[]", ["a", "b,c", "d'e"]),
    ],
)
def test_parse_default(literal: str, type_: str, value: Any) -> None:
    assert parse_default(literal, type_) == value


@pytest.mark.parametrize(
    ("literal", "type_", "reason"),
    [
        ("'many'", "INTEGER", "a INTEGER default is a number or NULL"),
        ("ten", "INTEGER", "a INTEGER default is a number or NULL"),
        ("yes", "BOOLEAN", "a BOOLEAN default is TRUE, FALSE or NULL"),
        ("unquoted", "VARCHAR", "a VARCHAR default is a 'quoted string' or NULL"),
        ("'2026-02-30'", "DATE", "expected a date YYYY-MM-DD"),
        ("['a', b]", "VARCHAR[]", "list items must be 'quoted strings'"),
        ("'a'", "VARCHAR[]", r"a VARCHAR\[\] default is NULL, \[\] or \['a', 'b'\]"),
    ],
)
def test_bad_defaults(literal: str, type_: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_default(literal, type_)


def test_a_fixed_offset_time_is_converted_to_utc() -> None:
    moment = convert("2026-01-01T00:00:00-05:00", "TIMESTAMPTZ")
    assert moment == datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert moment.tzinfo == timezone.utc  # noqa: UP017 - the same object as UTC


@pytest.mark.parametrize(
    ("note", "type_", "bounds", "text"),
    [
        ("min 1", "INTEGER", Bounds(1, None), "1 or more"),
        ("MAX 100", "BIGINT", Bounds(None, 100), "100 or less"),
        ("required, min 0, max 1", "DOUBLE", Bounds(0.0, 1.0), "0.0 to 1.0"),
        ("min -5, max -5", "INTEGER", Bounds(-5, -5), "-5 to -5"),
        ("required", "VARCHAR", Bounds(), "any"),
        # Free text is a description, ignored as before bounds existed.
        ("rows to show", "INTEGER", Bounds(), "any"),
        ("at least 1", "INTEGER", Bounds(), "any"),
        ("required, the account to read", "VARCHAR", Bounds(), "any"),
        ("min 1, rows to show", "INTEGER", Bounds(1, None), "1 or more"),
        ("maximum rows", "INTEGER", Bounds(), "any"),
    ],
)
def test_parse_note(note: str, type_: str, bounds: Bounds, text: str) -> None:
    assert parse_note(note, type_) == bounds
    assert str(bounds) == text


def test_bounds_include_both_ends() -> None:
    bounds = Bounds(1, 10)
    assert [bounds.allows(v) for v in (0, 1, 10, 11, None)] == [False, True, True, False, True]


@pytest.mark.parametrize(
    ("note", "type_", "reason"),
    [
        ("min x", "INTEGER", "min 'x' is not a number"),
        ("rows to show, max y", "INTEGER", "max 'y' is not a number"),
        ("min 1", "VARCHAR", "min applies to INTEGER, BIGINT, DOUBLE only"),
        ("min one", "INTEGER", "min 'one' is not a number"),
        ("min 1.5", "INTEGER", "expected a whole number"),
        ("min 1, min 2", "INTEGER", "min is given twice"),
        ("min 5, max 1", "INTEGER", "min 5 is above max 1"),
    ],
)
def test_bad_notes(note: str, type_: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_note(note, type_)
