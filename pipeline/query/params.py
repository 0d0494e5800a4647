"""Parameter values of named queries: the types a header may declare, and turning command-line
text and header defaults into typed Python values that DuckDB binds as prepared parameters.

Values are converted here, before DuckDB sees them, so a mistyped `--param` fails with a line
that names the parameter and the expected form instead of a cast error from inside the query.
"""

from __future__ import annotations

import math
import re
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
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
