"""Period and scope of a named query: --quarter, --since/--until, --account, --principal.

They become four reserved parameters that a query opts into by declaring them in its header:

    $since      TIMESTAMPTZ  first instant in the period (UTC, included)
    $until      TIMESTAMPTZ  first instant after the period (UTC, excluded)
    $account    VARCHAR      a 12-digit account id
    $principal  VARCHAR      a principal, as the query's description says (usually an ARN)

Dates on the command line are inclusive UTC days (`--until 2026-09-30` ends at
2026-10-01T00:00Z, excluded), so a query always compares `event_time >= $since AND event_time <
$until` and no event of the last day is lost to a `<=` on midnight. The last day there is,
`--until 9999-12-31` (or a quarter ending with it), has no midnight after it that Python can
hold: it ends at MAX_INSTANT, 9999-12-31T23:59:59.999999Z (excluded), an open end in practice.

Quarters. `--quarter 2026Q3` is a calendar quarter (July to September 2026) when
`[query] fiscal_year_start_month` is 1, the default. With a fiscal year starting in month m > 1,
fiscal year Y is named after the calendar year in which it ENDS (the US federal convention):
FY Y begins on the first of month m of calendar year Y-1, so with m = 10, 2027Q1 (or FY2027Q1)
is October to December 2026 and 2027Q4 is July to September 2027.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.errors import UsageError
from pipeline.source.keys import check_account_id

# Reserved parameter -> its required type and the flag(s) that set it.
SCOPE_PARAMS: dict[str, str] = {
    "since": "TIMESTAMPTZ",
    "until": "TIMESTAMPTZ",
    "account": "VARCHAR",
    "principal": "VARCHAR",
}
_QUARTER = re.compile(r"^(?:FY)?(\d{4})-?Q([1-4])$", re.IGNORECASE)
# The end of `--until 9999-12-31`: the last instant Python (and so a bound parameter) holds.
MAX_INSTANT = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Scope:
    """The scope flags as given on the command line (None when not given)."""

    quarter: str | None = None
    since: date | None = None
    until: date | None = None
    account: str | None = None
    principal: str | None = None

    def flags(self) -> list[str]:
        """The flags given, in command-line spelling."""
        names = ("quarter", "since", "until", "account", "principal")
        return [f"--{name}" for name in names if getattr(self, name) is not None]


def quarter_days(text: str, fiscal_year_start_month: int = 1) -> tuple[date, date]:
    """'2026Q3' -> (first day, last day), both included; see the module docstring for fiscal
    years. A quarter that would begin before year 1 is refused."""
    if not 1 <= fiscal_year_start_month <= 12:
        raise UsageError(
            f"fiscal_year_start_month {fiscal_year_start_month} is not a month",
            hint="set [query] fiscal_year_start_month to 1..12 in agenttrail.toml",
        )
    match = _QUARTER.match(text.strip())
    if not match:
        raise UsageError(f"--quarter {text!r} is not a quarter", hint="write YYYYQn, e.g. 2026Q3")
    year, quarter = int(match[1]), int(match[2])
    first_year = year - 1 if fiscal_year_start_month > 1 else year
    index = (fiscal_year_start_month - 1) + 3 * (quarter - 1)  # months since January first_year
    if first_year + index // 12 < 1:
        raise UsageError(
            f"--quarter {text.strip()} would begin before the year 1"
            + (
                f" (fiscal years starting in month {fiscal_year_start_month})"
                if fiscal_year_start_month > 1
                else ""
            ),
            hint="choose a later quarter",
        )
    start = date(first_year + index // 12, index % 12 + 1, 1)
    index += 3
    end_year, end_month = first_year + index // 12, index % 12 + 1
    last = date.max if end_year > date.max.year else date(end_year, end_month, 1) - _DAY
    return start, last


_DAY = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _end_of(day: date) -> datetime:
    """The first instant after the UTC day `day`; MAX_INSTANT after the last day there is."""
    return MAX_INSTANT if day == date.max else _midnight(day + _DAY)


def scope_values(scope: Scope, fiscal_year_start_month: int = 1) -> dict[str, Any]:
    """The reserved parameters the flags set: {"since": datetime, "until": datetime, ...}."""
    values: dict[str, Any] = {}
    if scope.quarter is not None:
        if scope.since is not None or scope.until is not None:
            raise UsageError("--quarter cannot be combined with --since/--until")
        first, last = quarter_days(scope.quarter, fiscal_year_start_month)
        values["since"], values["until"] = _midnight(first), _end_of(last)
    if scope.since is not None:
        values["since"] = _midnight(scope.since)
    if scope.until is not None:
        values["until"] = _end_of(scope.until)
    if scope.since is not None and scope.until is not None and scope.since > scope.until:
        raise UsageError(f"--since {scope.since} is after --until {scope.until}")
    if scope.account is not None:
        check_account_id(scope.account)
        values["account"] = scope.account
    if scope.principal is not None:
        if not scope.principal.strip():
            raise UsageError("--principal is empty")
        values["principal"] = scope.principal.strip()
    return values


def accepted_flags(declared: set[str]) -> list[str]:
    """The scope flags a query that declares `declared` parameters accepts."""
    flags = []
    if {"since", "until"} <= declared:
        flags.append("--quarter")
    flags += [f"--{name}" for name in SCOPE_PARAMS if name in declared]
    return flags


def flag_for(param: str) -> str:
    """The flag that sets a reserved parameter, for "missing" messages."""
    return f"--{param} (or --quarter)" if param in ("since", "until") else f"--{param}"
