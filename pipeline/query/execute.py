"""Run a validated named query with bound parameters, and word DuckDB's errors for analysts.

The statement text sent to DuckDB is the file's body behind as many empty lines as its header
(QueryInfo.executable), so the `LINE n` DuckDB reports is line n of the file; the error names
`file:line` and never needs the analyst to count header lines. DuckDB's relation API, which
runs the statement, counts lines from the first character that is not white space: the lines
it skips are added back (relation_error).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from duckdb.sqltypes import DuckDBPyType

from pipeline.config import raise_setting_hint
from pipeline.errors import AgenttrailError, OutOfMemoryError, QueryError

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
        "role_agent_intervals",
    }
)


def sql_error(query: QueryInfo, exc: Exception, skipped_lines: int = 0) -> AgenttrailError:
    """One line: `file:line: <DuckDB's first line>`, the line when DuckDB gives one (DuckDB's
    error, or Arrow's carrying it while a streamed result is read), after `skipped_lines`."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    match = _LINE.search(text)
    line = int(match[1]) + skipped_lines if match else None
    where = f"{query.display}:{line}" if line else query.display
    if ran_out_of_memory(exc):
        return OutOfMemoryError(
            f"{where}: {first}", hint=QUERY_MEMORY_HINT, file=str(query.path), line=line
        )
    hint = attribution_hint(first)
    return QueryError(f"{where}: {first}", hint=hint, file=str(query.path), line=line)


# What to do when a query runs out of memory: DuckDB's advice names its own settings (SET
# memory_limit), which a command cannot take; every query (`sql`, `query run`) runs under this
# setting. DuckDB's words say the limit in force ("32.0 MiB/47.6 MiB used").
QUERY_MEMORY_HINT = raise_setting_hint("query", "duckdb_memory_limit")


def ran_out_of_memory(exc: Exception) -> bool:
    """DuckDB's OutOfMemoryException, or its words in the OSError that Arrow raises for it
    while a streamed result is read."""
    return isinstance(exc, duckdb.OutOfMemoryException) or str(exc).startswith(
        "Out of Memory Error"
    )


# A generation another version wrote counts as none (warehouse/connect.py GENERATION_FORMAT);
# `sql` also prints a notice that says so.
NO_ATTRIBUTION_HINT = (
    "this warehouse has no attribution yet (or one another version wrote):"
    " run 'agenttrail attribute'"
)


def attribution_hint(message: str) -> str | None:
    """The hint for a statement that names a view attribution has not made yet, else None."""
    missing = _MISSING_TABLE.search(message)
    if missing and missing[1].lower() in _ATTRIBUTION_VIEWS:
        return NO_ATTRIBUTION_HINT
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


def relation_error(
    con: duckdb.DuckDBPyConnection,
    query: QueryInfo,
    text: str,
    bound: dict[str, Any],
    exc: Exception,
) -> AgenttrailError:
    """The QueryError of `exc`, raised by the relation API running `text`: the line of a
    planning error from the DB-API path (_positioned), else DuckDB's, counted from the first
    character of `text` that is not white space (the relation API skips the header's lines)."""
    if isinstance(exc, duckdb.Error):
        positioned = _positioned(con, text, bound, exc)
        if positioned is not exc:
            return sql_error(query, positioned)
    return sql_error(query, exc, _skipped_lines(text))


def _skipped_lines(text: str) -> int:
    """The lines before the first character of `text` that is not white space."""
    return text[: len(text) - len(text.lstrip())].count("\n")


def execute(con: duckdb.DuckDBPyConnection, query: QueryInfo, bound: Mapping[str, Any]) -> pa.Table:
    """Run `query` with `bound` as DuckDB prepared parameters; the values never enter the text.

    The relation API returns Arrow without the extra copy of the DB-API result."""
    text, values = query.executable, dict(bound)
    try:
        relation = exportable(con.sql(text, params=values))
    except duckdb.Error as exc:
        raise relation_error(con, query, text, values, exc) from None
    try:
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        raise relation_error(con, query, text, values, exc) from None


def execute_reader(
    con: duckdb.DuckDBPyConnection, query: QueryInfo, bound: Mapping[str, Any], batch_rows: int
) -> pa.RecordBatchReader:
    """`execute`, streamed: the result in batches of `batch_rows`, read while `con` stays open,
    so that an export of millions of rows is never held whole. An error DuckDB meets while
    producing a batch (a failed cast in row 9,000,000) leaves as the same QueryError."""
    text, values = query.executable, dict(bound)
    try:
        reader = exportable(con.sql(text, params=values)).to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        raise relation_error(con, query, text, values, exc) from None
    return pa.RecordBatchReader.from_batches(reader.schema, _batches(query, text, reader))


def _batches(query: QueryInfo, text: str, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        # Not relation_error: the connection is busy with this very result.
        raise sql_error(query, exc, _skipped_lines(text)) from None


def _has_bit(kind: DuckDBPyType) -> bool:
    if kind.id == "bit":
        return True
    if kind.id not in ("struct", "list", "array", "map", "union"):
        return False
    return any(isinstance(c, DuckDBPyType) and _has_bit(c) for _, c in kind.children)


def _without_bit(kind: DuckDBPyType) -> DuckDBPyType:
    """`kind` with each BIT in it VARCHAR, built from its children (field names are names, never
    rewritten: a struct field called BIT stays)."""
    if not _has_bit(kind):
        return kind
    if kind.id == "bit":
        return duckdb.sqltype("VARCHAR")
    children = [(name, child) for name, child in kind.children if isinstance(child, DuckDBPyType)]
    if kind.id == "struct":
        return duckdb.struct_type({name: _without_bit(child) for name, child in children})
    if kind.id == "union":  # children[0] is the tag
        return duckdb.union_type({name: _without_bit(child) for name, child in children[1:]})
    if kind.id == "list":
        return duckdb.list_type(_without_bit(children[0][1]))
    if kind.id == "array":  # its children: the element type, and ("size", N)
        size = dict(kind.children)["size"]
        assert isinstance(size, int)
        return duckdb.array_type(_without_bit(children[0][1]), size)
    return duckdb.map_type(_without_bit(children[0][1]), _without_bit(children[1][1]))


def exportable(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The relation with its BIT values as text ('101'), where any: DuckDB hands BIT to Arrow
    as the bytes of its own encoding (b'\\x05\\xfd' for '101'), which no format could tell from
    a BLOB. Columns are taken by position and keep their names, even two of one name."""
    types = relation.types
    if not any(_has_bit(kind) for kind in types):
        return relation
    columns = []
    for number, (name, kind) in enumerate(zip(relation.columns, types, strict=True), 1):
        column = duckdb.SQLExpression(f"#{number}")
        if _has_bit(kind):
            column = column.cast(_without_bit(kind))
        columns.append(column.alias(name))
    return relation.project(*columns)
