"""Parameter values of named queries: the types a header may declare, and turning command-line
text and header defaults into typed Python values that DuckDB binds as prepared parameters.

Values are converted here, before DuckDB sees them, so a mistyped `--param` fails with a line
that names the parameter and the expected form instead of a cast error from inside the query.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

# The types a named query's header may declare. Each maps to the Python type DuckDB binds as
# that SQL type; VARCHAR[] is written on the command line as comma-separated values.
KNOWN_TYPES = (
    "VARCHAR",
    "INTEGER",
    "BIGINT",
    "DOUBLE",
    "BOOLEAN",
    "DATE",
    "TIMESTAMPTZ",
    "VARCHAR[]",
)

_INT_RANGE = {"INTEGER": 2**31, "BIGINT": 2**63}
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})
_EXPECTED = {
    "VARCHAR": "text",
    "INTEGER": "a whole number",
    "BIGINT": "a whole number",
    "DOUBLE": "a number",
    "BOOLEAN": "true or false",
    "DATE": "a date YYYY-MM-DD",
    "TIMESTAMPTZ": "a time YYYY-MM-DD[THH:MM[:SS]][+HH:MM|Z] (UTC when no offset)",
    "VARCHAR[]": "comma-separated values",
}
_STRING = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def expected(type_: str) -> str:
    """How a value of `type_` is written on the command line (for error messages and docs)."""
    return _EXPECTED.get(type_, type_)


def convert(text: str, type_: str) -> Any:
    """Command-line text -> the Python value bound for `type_`. Raises ValueError(reason)."""
    if type_ == "VARCHAR":
        return text
    if type_ == "VARCHAR[]":
        return [part.strip() for part in text.split(",") if part.strip()]
    value = text.strip()
    if type_ in _INT_RANGE:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected {expected(type_)}") from None
        limit = _INT_RANGE[type_]
        if not -limit <= number < limit:
            raise ValueError(f"out of range for {type_}")
        return number
    if type_ == "DOUBLE":
        try:
            real = float(value)
        except ValueError:
            raise ValueError(f"expected {expected(type_)}") from None
        if not math.isfinite(real):
            raise ValueError("expected a finite number")
        return real
    if type_ == "BOOLEAN":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"expected {expected(type_)}")
    if type_ == "DATE":
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected {expected(type_)}") from None
    if type_ == "TIMESTAMPTZ":
        return _timestamp(value)
    raise ValueError(f"unsupported type {type_}")


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected {expected('TIMESTAMPTZ')}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise ValueError("outside the years 1 to 9999 in UTC") from None


@dataclass(frozen=True)
class Bounds:
    """The values a numeric parameter allows, both ends included (None: no end). Declared in the
    header after the type and default, in parentheses: `burst_min INTEGER = 5 (min 1)`,
    `share DOUBLE = 0.5 (min 0, max 1)`."""

    low: int | float | None = None
    high: int | float | None = None

    def allows(self, value: Any) -> bool:
        if value is None:
            return True
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low} to {self.high}"
        if self.low is not None:
            return f"{self.low} or more"
        if self.high is not None:
            return f"{self.high} or less"
        return "any"


NUMERIC_TYPES = ("INTEGER", "BIGINT", "DOUBLE")
_BOUND = re.compile(r"^(min|max)\s+(\S+)$", re.IGNORECASE)


def parse_note(note: str, type_: str) -> Bounds:
    """A declaration's note in parentheses, terms separated by commas -> the bounds it sets.
    Only `required`, `min N` and `max N` mean something; any other term is a description
    (`n INTEGER = 5 (rows to show)`), ignored as it always was. A term of two words starting
    with min or max is a bound, and one whose value is not a number (`min x`) an error: it
    would otherwise be ignored silently. Raises ValueError(reason)."""
    ends: dict[str, int | float] = {}
    for term in (t.strip() for t in note.split(",")):
        match = _BOUND.match(term)
        if match is None:
            continue  # `required` (sqlfile reads it), or a description
        end = match[1].lower()
        if not _NUMBER.fullmatch(match[2]):
            raise ValueError(f"{end} {match[2]!r} is not a number")
        if type_ not in NUMERIC_TYPES:
            raise ValueError(f"{end} applies to {', '.join(NUMERIC_TYPES)} only")
        if end in ends:
            raise ValueError(f"{end} is given twice")
        ends[end] = convert(match[2], type_)
    bounds = Bounds(ends.get("min"), ends.get("max"))
    if bounds.low is not None and bounds.high is not None and bounds.low > bounds.high:
        raise ValueError(f"min {bounds.low} is above max {bounds.high}")
    return bounds


def parse_default(text: str, type_: str) -> Any:
    """A header default (a SQL literal: NULL, a number, 'text', TRUE/FALSE, [] or ['a', 'b'])
    -> the Python value bound when the parameter is not given. Raises ValueError(reason)."""
    literal = text.strip()
    if literal.upper() == "NULL":
        return None
    if type_ == "VARCHAR[]":
        if not (literal.startswith("[") and literal.endswith("]")):
            raise ValueError("a VARCHAR[] default is NULL, [] or ['a', 'b']")
        inner = literal[1:-1].strip()
        items = _STRING.findall(inner)
        if _STRING.sub("", inner).replace(",", "").strip():
            raise ValueError("list items must be 'quoted strings'")
        return [item.replace("''", "'") for item in items]
    if type_ == "BOOLEAN":
        if literal.upper() not in ("TRUE", "FALSE"):
            raise ValueError("a BOOLEAN default is TRUE, FALSE or NULL")
        return literal.upper() == "TRUE"
    if type_ in _INT_RANGE or type_ == "DOUBLE":
        if not _NUMBER.fullmatch(literal):
            raise ValueError(f"a {type_} default is a number or NULL")
        return convert(literal, type_)
    match = _STRING.fullmatch(literal)
    if not match:
        raise ValueError(f"a {type_} default is a 'quoted string' or NULL")
    return convert(match[1].replace("''", "'"), type_)
