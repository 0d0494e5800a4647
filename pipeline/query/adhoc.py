"""Ad-hoc SQL for analysts: one statement, read-only unless asked otherwise.

A statement DuckDB cannot parse or bind (a syntax error, an unknown table or column) is the
user's bad statement: a UsageError (exit 2, README "Exit codes"), with DuckDB's first line. An
error met while running a statement that planned (a failed cast at row 9,000,000, memory) is a
QueryError (exit 1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import duckdb
import pyarrow as pa

from pipeline.errors import AgenttrailError, QueryError, UsageError
from pipeline.query.execute import attribution_hint
from pipeline.sqlfile import load_internal
from pipeline.warehouse.connect import connect
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.remote import S3Options, connect_reader, is_remote

# Statement types that only read. Anything else (COPY, INSERT, CREATE, ATTACH, EXPORT, SET,
# INSTALL/LOAD, ...) can change the warehouse or write files, and needs --allow-write.
# PRAGMA is allowed because the connection itself is read-only: no pragma can change the
# database through it, and none writes files. IMPORT DATABASE, which DuckDB also types as a
# PRAGMA, runs the statements of a folder's schema.sql and load.sql: effective_kind names it.
READ_ONLY_TYPES = frozenset({"SELECT", "EXPLAIN", "EXPLAIN ANALYZE", "PRAGMA"})


# DuckDB's errors for a statement that cannot be planned: the statement's fault.
_BAD_STATEMENT = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


def sql_error(exc: Exception, sql: str) -> AgenttrailError:
    """DuckDB's (or Arrow's) error as one line: a UsageError for a bad statement, except where
    it names a view only attribution makes (the warehouse's gap, not the statement's)."""
    text = str(exc)
    first = f"SQL error: {text.splitlines()[0] if text else type(exc).__name__}"
    hint = attribution_hint(first)
    if isinstance(exc, _BAD_STATEMENT) and hint is None:
        return UsageError(first, sql=sql)
    return QueryError(first, hint=hint, sql=sql)


def statement_kind(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The type of the single statement in `sql` (raises when there are zero or several)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise sql_error(exc, sql) from None
    if len(statements) != 1:
        raise UsageError(
            f"expected one SQL statement, got {len(statements)}",
            hint="run statements one at a time",
        )
    return str(statements[0].type).rsplit(".", 1)[-1]


def without_comments(sql: str) -> str:
    """`sql` with every comment replaced by a space, found by DuckDB's own tokenizer: a comment
    may stand anywhere between two words (`EXPLAIN /**/ ANALYZE`), and `--` or `/*` inside a
    string literal is not one."""
    tokens = duckdb.tokenize(sql)
    parts = []
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        parts.append(" " if kind == duckdb.token_type.comment else sql[start:end])
    return "".join(parts).strip()


_EXPLAIN_ANALYZE = re.compile(
    r"^EXPLAIN\s*(?:\((?P<options>[^)]*)\)\s*)?(?P<analyze>ANALY[SZ]E\b)?(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_FIRST_WORD = re.compile(r"[A-Z]+", re.IGNORECASE)


def effective_kind(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The statement's type, where EXPLAIN ANALYZE counts as the statement it explains: it runs
    it (`EXPLAIN ANALYZE COPY ... TO 'file'` writes the file); and where a statement DuckDB
    types as a PRAGMA but that does not begin with PRAGMA (IMPORT DATABASE) is named for what
    it is."""
    kind = statement_kind(con, sql)
    text = without_comments(sql)
    if kind == "PRAGMA":
        first = _FIRST_WORD.match(text)
        if first is None or first[0].upper() != "PRAGMA":
            word = first[0].upper() if first else "UNKNOWN"
            return "IMPORT_DATABASE" if word == "IMPORT" else word
        return kind
    if kind != "EXPLAIN":
        return kind
    match = _EXPLAIN_ANALYZE.match(text)
    if match is None:
        return "EXPLAIN ANALYZE"  # not understood: treated as able to write
    analyzed = match["analyze"] or "ANALY" in (match["options"] or "").upper()
    if not analyzed:
        return kind
    try:
        inner = statement_kind(con, match["rest"])
    except (QueryError, UsageError):
        return "EXPLAIN ANALYZE"  # not understood: treated as able to write
    return "EXPLAIN ANALYZE" if inner == "SELECT" else f"EXPLAIN ANALYZE {inner}"


def _open(
    warehouse: str | Layout, allow_write: bool, memory_limit: str | None, s3: S3Options | None
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    if isinstance(warehouse, Layout):
        warehouse = str(warehouse.root)
    if allow_write and not is_remote(warehouse):
        return connect(Layout.at(warehouse), read_only=False, memory_limit=memory_limit)
    return connect_reader(warehouse, s3=s3, memory_limit=memory_limit)


# Rows per Arrow batch of a streamed result (open_sql): a few MB for typical event columns.
RESULT_BATCH_ROWS = 50_000


@contextmanager
def open_sql(
    warehouse: str | Layout,
    sql: str,
    *,
    allow_write: bool = False,
    memory_limit: str | None = None,
    s3: S3Options | None = None,
) -> Iterator[pa.RecordBatchReader]:
    """Run one statement against the warehouse views (a folder, or an s3:// URI read in place)
    and stream its result while the block runs: an export of millions of rows is never held
    whole (formats.write_result writes it batch by batch)."""
    with _open(warehouse, allow_write, memory_limit, s3) as con:
        kind = effective_kind(con, sql)
        if kind not in READ_ONLY_TYPES and not allow_write:
            label = statement_label(kind, sql)
            article = "an" if label[0] in "AEIOU" else "a"
            raise UsageError(
                f"refused: {article} {label} statement can change the warehouse or write files",
                hint="pass --allow-write if that is what you want",
            )
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result (allowed writes)
                yield pa.table({"result": pa.array(["ok"])}).to_reader()
                return
            reader = relation.to_arrow_reader(RESULT_BATCH_ROWS)
        except duckdb.Error as exc:
            raise sql_error(exc, sql) from None
        yield pa.RecordBatchReader.from_batches(reader.schema, _batches(reader, sql))


def _batches(reader: pa.RecordBatchReader, sql: str) -> Iterator[pa.RecordBatch]:
    """The reader's batches; an error DuckDB meets while producing them (a failed cast in row
    9,000,000) arrives as an Arrow OSError and leaves as a QueryError."""
    try:
        yield from reader
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        raise sql_error(exc, sql) from None


# Statement types DuckDB gives to several statements: a refusal names what the user typed
# (INSTALL is a LOAD, CHECKPOINT a CALL, USE and RESET are SETs, ANALYZE a VACUUM, BEGIN a
# TRANSACTION, IMPORT DATABASE a PRAGMA).
_SHARED_TYPES = frozenset({"LOAD", "CALL", "SET", "VACUUM", "TRANSACTION", "PRAGMA"})
_LEADING_WORDS = re.compile(r"(FORCE\s+)?[A-Z]+", re.IGNORECASE)


def statement_label(kind: str, sql: str) -> str:
    """How a refusal names the statement: its type, or what the user typed where DuckDB's type
    covers several statements."""
    if kind in _SHARED_TYPES:
        typed = _LEADING_WORDS.match(without_comments(sql))
        if typed:
            return " ".join(typed[0].upper().split())
    return kind.replace("_", " ")


def run_sql(
    warehouse: str | Layout,
    sql: str,
    *,
    allow_write: bool = False,
    memory_limit: str | None = None,
    s3: S3Options | None = None,
) -> pa.Table:
    """Run one statement against the warehouse views and return its whole result."""
    with open_sql(warehouse, sql, allow_write=allow_write, memory_limit=memory_limit, s3=s3) as r:
        return r.read_all()


def run_internal(layout: Layout, relative: str) -> pa.Table:
    """Run one of the project's own parameterless statements (queries/<relative>.sql)."""
    statement = load_internal(relative)
    with connect(layout, read_only=True) as con:
        try:
            return con.sql(statement.sql).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(
                f"{statement.path}: {str(exc).splitlines()[0]}", file=str(statement.path)
            ) from None
