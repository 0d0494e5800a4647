"""The named query library: list, show and run the queries of queries/*.sql and user folders.

    list_queries(settings)                      -> [QueryInfo]  (every file validated)
    survey_queries(settings)                    -> Survey       (the valid ones, and the others)
    show_query(settings, name)                  -> QueryInfo    (header and SQL)
    run_query(settings, name, scope=, params=)  -> QueryResult  (table, notices, bound values)
    open_query(settings, name, scope=, params=) -> QueryStream  (the same, its rows streamed)

Nothing here prints: notices (a user query replacing a built-in one, the dates a fiscal quarter
stands for, an account judged by an IAM snapshot taken after the period) are returned for the
CLI to show on stderr, and reports can record them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.attribute.freshness import other_version_hint, reader_notice
from pipeline.config import Settings
from pipeline.errors import QueryError, UsageError
from pipeline.iam.choice import choose_snapshots
from pipeline.query.adhoc import RESULT_BATCH_ROWS
from pipeline.query.binding import bind
from pipeline.query.catalog import Found, QueryInfo, discover, load_query
from pipeline.query.execute import NO_ATTRIBUTION_HINT, execute, execute_reader
from pipeline.query.scope import Scope, quarter_days
from pipeline.warehouse.remote import S3Options, connect_reader

__all__ = [
    "QueryInfo",
    "QueryResult",
    "QueryStream",
    "Scope",
    "Survey",
    "list_queries",
    "open_query",
    "run_query",
    "show_query",
    "survey_queries",
]


@dataclass(frozen=True)
class QueryResult:
    table: pa.Table
    query: QueryInfo
    notices: tuple[str, ...] = ()
    bound_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryStream:
    """A named query's result as it is read (open_query): its batches, while the block runs."""

    reader: pa.RecordBatchReader
    query: QueryInfo
    notices: tuple[str, ...] = ()
    bound_params: dict[str, Any] = field(default_factory=dict)


def _load(found: Found) -> QueryInfo:
    return load_query(found.path, found.origin, found.replaces)


@dataclass(frozen=True)
class Survey:
    """Every query file, validated: those that can run, and an error for each that cannot."""

    queries: tuple[QueryInfo, ...]
    invalid: tuple[QueryError, ...]

    def problem(self) -> QueryError | None:
        """One error for the invalid files (each has its own, for notices), else None."""
        if not self.invalid:
            return None
        files = ", ".join(Path(str(e.inputs["file"])).name for e in self.invalid)
        count = len(self.invalid)
        return QueryError(
            f"{count} query file{'s' if count > 1 else ''} invalid, not listed: {files}",
            hint="fix or move out of the queries folder; the other queries are listed",
            files=[e.inputs["file"] for e in self.invalid],
        )


def survey_queries(settings: Settings, extra_dirs: Sequence[str | Path] = ()) -> Survey:
    """Every query by name, and the files that do not validate: one broken file in a shared
    folder must not hide the others (or the built-in library) from `agenttrail query list`."""
    queries: list[QueryInfo] = []
    invalid: list[QueryError] = []
    for _, found in sorted(discover(settings, extra_dirs).items()):
        try:
            queries.append(_load(found))
        except QueryError as exc:
            invalid.append(exc)
    return Survey(tuple(queries), tuple(invalid))


def list_queries(settings: Settings, extra_dirs: Sequence[str | Path] = ()) -> list[QueryInfo]:
    """Every query, by name; the first invalid file raises (QueryError naming file and line)."""
    survey = survey_queries(settings, extra_dirs)
    if survey.invalid:
        raise survey.invalid[0]
    return list(survey.queries)


def show_query(settings: Settings, name: str, extra_dirs: Sequence[str | Path] = ()) -> QueryInfo:
    """One query by name (only its own file is read and validated)."""
    found = discover(settings, extra_dirs)
    if name not in found:
        close = difflib.get_close_matches(name, list(found), n=1)
        raise UsageError(
            f"unknown query {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint="'agenttrail query list' shows them all",
        )
    return _load(found[name])


def run_query(
    settings: Settings,
    name: str,
    *,
    scope: Scope | None = None,
    params: Mapping[str, str] | None = None,
    extra_dirs: Sequence[str | Path] = (),
    s3: S3Options | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> QueryResult:
    """Run a named query against the warehouse of `settings` (a folder or s3:// URI), or on
    `con` when given (a connection from warehouse.remote.connect_reader, reused across queries
    by reports and the benchmark)."""
    query, bound, notices = _prepared(settings, name, scope or Scope(), params, extra_dirs)
    with _explained(settings):
        if con is None:
            with _reader(settings, s3) as connection:
                return _result(connection, query, bound, notices)
        return _result(con, query, bound, notices)


@contextmanager
def _explained(settings: Settings) -> Iterator[None]:
    """A query that found no attribution views, in a warehouse whose attribution another
    version wrote, says so and names the command that rebuilds it (its notice is not printed:
    the query failed before its result)."""
    try:
        yield
    except QueryError as exc:
        if exc.hint == NO_ATTRIBUTION_HINT:
            exc.hint = other_version_hint(settings) or exc.hint
        raise


def _result(
    con: duckdb.DuckDBPyConnection, query: QueryInfo, bound: dict[str, Any], notices: list[str]
) -> QueryResult:
    table = execute(con, query, bound)
    notices = notices + snapshot_notices(con, query, bound)
    return QueryResult(table=table, query=query, notices=tuple(notices), bound_params=bound)


def _reader(
    settings: Settings, s3: S3Options | None
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse of `settings`, under the queries' memory cap."""
    return connect_reader(
        settings.warehouse, s3=s3, memory_limit=settings.query.duckdb_memory_limit
    )


@contextmanager
def open_query(
    settings: Settings,
    name: str,
    *,
    scope: Scope | None = None,
    params: Mapping[str, str] | None = None,
    extra_dirs: Sequence[str | Path] = (),
    s3: S3Options | None = None,
) -> Iterator[QueryStream]:
    """run_query, its result streamed while the block runs (`agenttrail query run`): an export
    of millions of rows is written batch by batch (formats.write_result), never held whole.
    The notices are complete before the first row is read."""
    query, bound, notices = _prepared(settings, name, scope or Scope(), params, extra_dirs)
    with _reader(settings, s3) as connection:
        # First: a connection reads one result at a time, and the stream holds it until its end.
        notices += snapshot_notices(connection, query, bound)
        with _explained(settings):
            reader = execute_reader(connection, query, bound, RESULT_BATCH_ROWS)
        yield QueryStream(reader=reader, query=query, notices=tuple(notices), bound_params=bound)


def _prepared(
    settings: Settings,
    name: str,
    scope: Scope,
    params: Mapping[str, str] | None,
    extra_dirs: Sequence[str | Path],
) -> tuple[QueryInfo, dict[str, Any], list[str]]:
    """The query by name, its bound parameters, and the notices known before it runs."""
    query = show_query(settings, name, extra_dirs)
    fiscal = settings.query.fiscal_year_start_month
    bound = bind(query, scope, params or {}, fiscal_year_start_month=fiscal)
    notices = [n for n in [query.notice()] if n]
    stale = reader_notice(settings, query.sql)
    if stale:
        notices.append(stale)
    if scope.quarter and fiscal != 1:
        first, last = quarter_days(scope.quarter, fiscal)
        notices.append(
            f"--quarter {scope.quarter} is {first} to {last} (both included), fiscal years "
            f"starting in month {fiscal} and named after the calendar year they end in"
        )
    return query, bound, notices


def snapshot_notices(
    con: duckdb.DuckDBPyConnection, query: QueryInfo, bound: Mapping[str, Any]
) -> list[str]:
    """One notice per account whose IAM snapshot for the period was taken after its end (the
    rule of pipeline/iam/choice.py, which principals.sql applies in SQL): roles tagged or
    untagged in between are misjudged. Only for a query that reads IAM snapshot views, over a
    period with an end ($until; without one the newest snapshot applies), and, given
    $account, for that account."""
    until = bound.get("until")
    if not query.reads_iam_snapshots or not isinstance(until, datetime) or until.tzinfo is None:
        return []
    account = bound.get("account")
    return [
        choice.warning
        for choice in choose_snapshots(con, until)
        if choice.warning is not None and account in (None, choice.account_id)
    ]
