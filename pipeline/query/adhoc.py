"""Ad-hoc SQL for analysts: one statement, read-only unless asked otherwise.

A statement DuckDB cannot parse or bind (a syntax error, an unknown table or column) is the
user's bad statement: a UsageError (exit 2, README "Exit codes"), with DuckDB's first line. An
error met while running a statement that planned (a failed cast at row 9,000,000) is a
QueryError, and DuckDB running out of memory an OutOfMemoryError naming the setting to raise
(exit 1).

A statement that can write is refused (a UsageError) unless allow_write: every type but
SELECT and EXPLAIN, EXPLAIN ANALYZE of a write, and every pragma but those that only read
(READ_ONLY_PRAGMAS). Every connection reads in UTC (connect.session_defaults), the writable
one of --allow-write and run_internal's too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import duckdb
import pyarrow as pa

from pipeline.errors import AgenttrailError, OutOfMemoryError, QueryError, UsageError
from pipeline.query.execute import (
    QUERY_MEMORY_HINT,
    attribution_hint,
    exportable,
    ran_out_of_memory,
)
from pipeline.sqlfile import load_internal
from pipeline.warehouse.connect import connect
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.remote import S3Options, connect_reader, is_remote

# Statement types that only read (effective_kind's). Anything else (COPY, INSERT, CREATE,
# ATTACH, EXPORT, SET, INSTALL/LOAD, CALL, ...) can change the warehouse or write files, and
# needs --allow-write.
READ_ONLY_TYPES = frozenset({"SELECT", "EXPLAIN", "EXPLAIN ANALYZE", "READ_ONLY_PRAGMA"})

# The pragmas that only read (DuckDB 2.0's `duckdb_functions()` of type 'pragma' that return
# information): `PRAGMA name`, `PRAGMA name(...)`, and `CALL pragma_name(...)` where DuckDB
# has that table function, are typed READ_ONLY_PRAGMA. Every other pragma is a write: those that
# run other statements (import_database runs a folder's schema.sql and load.sql, which may COPY
# into any file; copy_database, json_execute_serialized_sql), that change the session
# (enable_profiling, add_parquet_key, ...) or the database (force_checkpoint), and any pragma
# written with `=` (DuckDB makes most of them a SET). A `SELECT ... FROM pragma_name()` is a
# SELECT: DuckDB has table functions of the read-only pragmas only.
READ_ONLY_PRAGMAS = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "extension_versions",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)


# DuckDB's errors for a statement that cannot be planned: the statement's fault.
_BAD_STATEMENT = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


def sql_error(exc: Exception, sql: str) -> AgenttrailError:
    """DuckDB's (or Arrow's) error as one line: a UsageError for a bad statement, except where
    it names a view only attribution makes (the warehouse's gap, not the statement's)."""
    text = str(exc)
    first = f"SQL error: {text.splitlines()[0] if text else type(exc).__name__}"
    if ran_out_of_memory(exc):
        return OutOfMemoryError(first, hint=QUERY_MEMORY_HINT, sql=sql)
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


def _words(sql: str) -> list[str]:
    """The statement's tokens as DuckDB's tokenizer finds them, comments and a trailing `;`
    left out; a quoted identifier without its quotes."""
    tokens = duckdb.tokenize(sql)
    words = []
    for i, (start, kind) in enumerate(tokens):
        if kind == duckdb.token_type.comment:
            continue
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        word = sql[start:end].strip()
        if kind == duckdb.token_type.identifier and word.startswith('"') and word.endswith('"'):
            word = word[1:-1].replace('""', '"')
        words.append(word)
    while words and words[-1] == ";":
        words.pop()
    return words


def called_pragma(sql: str) -> tuple[str, str]:
    """(name, how) of `PRAGMA name`, `PRAGMA name(...)`, `PRAGMA name = ...` or
    `CALL name(...)`: how is "" (bare), "(" (called) or what follows the name otherwise."""
    words = _words(sql)
    name = words[1].lower() if len(words) > 1 else ""
    return name, words[2] if len(words) > 2 else ""


def _reads_only(kind: str, sql: str) -> bool:
    """Whether a PRAGMA or CALL statement is one of the read-only pragmas, called or bare."""
    name, how = called_pragma(sql)
    if kind == "CALL":
        return how == "(" and name.startswith("pragma_") and name[7:] in READ_ONLY_PRAGMAS
    return how in ("", "(") and name in READ_ONLY_PRAGMAS


def effective_kind(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The statement's type, where EXPLAIN ANALYZE counts as the statement it explains: it runs
    it (`EXPLAIN ANALYZE COPY ... TO 'file'` writes the file); where a statement DuckDB types
    as a PRAGMA but that does not begin with PRAGMA (IMPORT DATABASE) is named for what it is;
    and where a pragma that only reads (READ_ONLY_PRAGMAS, also as `CALL pragma_name(...)`) is
    READ_ONLY_PRAGMA, any other a PRAGMA."""
    kind = statement_kind(con, sql)
    text = without_comments(sql)
    if kind == "PRAGMA":
        first = _FIRST_WORD.match(text)
        if first is None or first[0].upper() != "PRAGMA":
            word = first[0].upper() if first else "UNKNOWN"
            return "IMPORT_DATABASE" if word == "IMPORT" else word
        return "READ_ONLY_PRAGMA" if _reads_only(kind, text) else kind
    if kind == "CALL" and _reads_only(kind, text):
        return "READ_ONLY_PRAGMA"
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
            raise refusal(kind, sql)
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result (allowed writes)
                yield pa.table({"result": pa.array(["ok"])}).to_reader()
                return
            reader = exportable(relation).to_arrow_reader(RESULT_BATCH_ROWS)
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


def _article(label: str) -> str:
    """The article before a statement's name as it is read aloud: an INSERT, a USE."""
    return "an" if label[0] in "AEIOU" and not label.startswith("USE") else "a"


_ALLOW = "pass --allow-write if that is what you want"


def refusal(kind: str, sql: str) -> UsageError:
    """The one line refusing a statement that is not read-only (kind from effective_kind)."""
    text = without_comments(sql)
    if kind == "MULTI":
        if re.search(r"\bPIVOT\b", text, re.IGNORECASE):
            return UsageError(
                "refused: a PIVOT without IN expands to several statements, the first creating "
                "a type of the values it finds",
                hint="list the values to pivot on with IN: PIVOT ... ON col IN ('a', 'b') USING "
                f"...; or {_ALLOW}",
            )
        return UsageError("refused: the statement expands to several statements", hint=_ALLOW)
    if kind == "PRAGMA":
        name, how = called_pragma(text)
        shown = f"PRAGMA {name}" + (f" {how} ..." if how not in ("", "(") else "")
        return UsageError(
            f"refused: {shown} is not one of the pragmas that only read",
            hint=f"{_ALLOW}; these only read: {', '.join(sorted(READ_ONLY_PRAGMAS))}",
        )
    label = statement_label(kind, sql)
    return UsageError(
        f"refused: {_article(label)} {label} statement can change the warehouse or write files",
        hint=_ALLOW,
    )


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
