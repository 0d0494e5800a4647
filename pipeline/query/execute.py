"""Run a validated named query with bound parameters, and word DuckDB's errors for analysts.

The statement text sent to DuckDB is the file's body behind as many empty lines as its header
(QueryInfo.executable), so the `LINE n` DuckDB reports is line n of the file; the error names
`file:line` and never needs the analyst to count header lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from pipeline.errors import QueryError

if TYPE_CHECKING:
    from pipeline.query.catalog import QueryInfo

_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)
_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist", re.IGNORECASE)
# Views that exist once attribution has run (connect._derived_views and views numbered >= 50).
_ATTRIBUTION_VIEWS = frozenset(
    {
        "events_classified",
        "events_verdicts",
        "sessions",
        "mcp_tool_calls",
        "mcp_grants",
        "role_agent_observations",
    }
)


def sql_error(query: QueryInfo, exc: duckdb.Error) -> QueryError:
    """One line: `file:line: <DuckDB's first line>`, the line when DuckDB gives one."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    match = _LINE.search(text)
    line = int(match[1]) if match else None
    where = f"{query.display}:{line}" if line else query.display
    hint = attribution_hint(first)
    return QueryError(f"{where}: {first}", hint=hint, file=str(query.path), line=line)


def attribution_hint(message: str) -> str | None:
    """The hint for a statement that names a view attribution has not made yet, else None."""
    missing = _MISSING_TABLE.search(message)
    if missing and missing[1].lower() in _ATTRIBUTION_VIEWS:
        return "this warehouse has no attribution yet: run 'agenttrail attribute'"
    return None


# Errors raised while planning, before any row is read. The relation API (con.sql) drops their
# "LINE n" from the message; the DB-API path keeps it, and fails as fast.
_PLANNING_ERRORS = (duckdb.BinderException, duckdb.ParserException, duckdb.CatalogException)


def _positioned(
    con: duckdb.DuckDBPyConnection, text: str, bound: dict[str, Any], exc: duckdb.Error
) -> duckdb.Error:
    """The same planning error, with the position DuckDB reports on the DB-API path."""
    if not isinstance(exc, _PLANNING_ERRORS) or _LINE.search(str(exc)):
        return exc
    try:
        con.execute(text, bound)
    except duckdb.Error as again:
        return again
    return exc  # not reached in practice: the statement failed to plan a moment ago


def execute(con: duckdb.DuckDBPyConnection, query: QueryInfo, bound: Mapping[str, Any]) -> pa.Table:
    """Run `query` with `bound` as DuckDB prepared parameters; the values never enter the text.

    The relation API returns Arrow without the extra copy of the DB-API result."""
    text, values = query.executable, dict(bound)
    try:
        relation = con.sql(text, params=values)
    except duckdb.Error as exc:
        raise sql_error(query, _positioned(con, text, values, exc)) from None
    try:
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        raise sql_error(query, exc) from None
