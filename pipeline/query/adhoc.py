"""Ad-hoc SQL for analysts: one statement, read-only unless asked otherwise."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipeline.errors import QueryError, UsageError
from pipeline.sqlfile import load_internal
from pipeline.warehouse.connect import connect
from pipeline.warehouse.layout import Layout

# Statement types that only read. Anything else (COPY, INSERT, CREATE, ATTACH, EXPORT, SET,
# INSTALL/LOAD, ...) can change the warehouse or write files, and needs --allow-write.
# PRAGMA is allowed because the connection itself is read-only: no pragma can change the
# database through it, and none writes files.
READ_ONLY_TYPES = frozenset({"SELECT", "EXPLAIN", "PRAGMA"})


def statement_kind(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The type of the single statement in `sql` (raises when there are zero or several)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise UsageError(
            f"expected one SQL statement, got {len(statements)}",
            hint="run statements one at a time",
        )
    return str(statements[0].type).rsplit(".", 1)[-1]


def run_sql(
    layout: Layout, sql: str, *, allow_write: bool = False, memory_limit: str | None = None
) -> pa.Table:
    """Run one statement against the warehouse views and return its result."""
    with connect(layout, read_only=not allow_write, memory_limit=memory_limit) as con:
        kind = statement_kind(con, sql)
        if kind not in READ_ONLY_TYPES and not allow_write:
            raise UsageError(
                f"refused: a {kind} statement can change the warehouse or write files",
                hint="pass --allow-write if that is what you want",
            )
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result (allowed writes)
                return pa.table({"result": pa.array(["ok"])})
            return relation.to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(f"SQL error: {str(exc).splitlines()[0]}", sql=sql) from None


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
