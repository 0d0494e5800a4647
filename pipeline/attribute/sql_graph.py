"""The attribution SQL files as a graph, run on two connections at once.

Each file of queries/attribute/ creates tables (or views) that later files read. A file waits
only for the earlier files whose tables it names; files that do not read each other's tables
run at the same time, each on its own cursor of the rebuild's in-memory database (DuckDB runs
queries of two connections in parallel). Most statements work on small tables with one
thread, so the second core was idle for about a third of the SQL: with 1M events, 10_*, 30_*
and 40_* now run while 20_sessions walks the chains, and the derived tables are written to
Parquet while 50_classification builds its tables.

Tables and views must be plain (not TEMP), since a TEMP object is seen by its own connection
only; the database is the rebuild's own in-memory one (connect_detached), never the
warehouse's file.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.errors import OutOfMemoryError, WarehouseError
from pipeline.sqlfile import parse_sql_file, strip_comments_and_strings

_CREATED = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?(?:TABLE|VIEW)\s+(\w+)",
    re.IGNORECASE,
)
_WORD = re.compile(r"\b\w+\b")
# How often close() interrupts the workers' cursors again while work still runs.
CLOSE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class SqlStep:
    """One SQL file: what it creates, and the earlier files it waits for."""

    path: Path
    sql: str
    creates: frozenset[str]
    after: frozenset[str]  # names (file names) of the earlier steps it reads from

    @property
    def name(self) -> str:
        return self.path.name


def plan(paths: Iterable[Path]) -> list[SqlStep]:
    """The files in name order, each with the earlier files whose tables or views it names.
    A file may read only what earlier files created: the numbering stays the order a reader
    follows, and a graph without cycles."""
    steps: list[SqlStep] = []
    for path in sorted(paths):
        sql = parse_sql_file(path).sql
        code = strip_comments_and_strings(sql)
        words = {w.lower() for w in _WORD.findall(code)}
        creates = frozenset(m.lower() for m in _CREATED.findall(code))
        after = frozenset(s.name for s in steps if s.creates & words)
        steps.append(SqlStep(path, sql, creates, after))
    return steps


class SqlLanes:
    """Runs steps and other work on `workers` cursors of `con`, each as soon as what it waits
    for is done.

    `run(steps)` returns once every step has run; work added with `after_step` (a derived
    table's write) may still be running then, and `finish()` waits for it. On any failure the
    running statements are interrupted."""

    def __init__(self, con: duckdb.DuckDBPyConnection, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="attribution-sql")
        # One cursor per worker, made here (not in the workers: `con` may be busy in the
        # caller's thread by then); a task takes an idle one, and at most `workers` run.
        self._cursors = [con.cursor() for _ in range(workers)]
        self._idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        for cursor in self._cursors:
            self._idle.put(cursor)
        self._lock = threading.Lock()
        self._followers: dict[str, list[Callable[[duckdb.DuckDBPyConnection], None]]] = {}
        self._background: list[Future[None]] = []
        self._submitted: list[Future[None]] = []
        self._closed = False

    def after_step(self, step: str, work: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """Run `work` on a cursor once the step named `step` has run."""
        self._followers.setdefault(step, []).append(work)

    def run(self, steps: list[SqlStep]) -> None:
        names = {s.name for s in steps}
        for step in steps:
            unknown = step.after - names
            if unknown:
                raise WarehouseError(f"{step.name} waits for unknown steps {sorted(unknown)}")
        done: set[str] = set()
        waiting = list(steps)
        running: dict[Future[None], SqlStep] = {}
        while waiting or running:
            for step in [s for s in waiting if s.after <= done]:
                waiting.remove(step)
                running[self._submit(self._execute, step)] = step
            if not running:
                raise WarehouseError("attribution SQL steps wait for each other (a bug)")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                future.result()
                done.add(step.name)
                for work in self._followers.pop(step.name, []):
                    self._background.append(self._submit(self._on_cursor, work))

    def finish(self) -> None:
        """Wait for the work started after the steps."""
        for future in self._background:
            future.result()
        self._background.clear()

    def close(self) -> None:
        """Interrupt what still runs, then release the workers and their cursors. A statement
        that a worker starts after an interrupt is interrupted in its turn: the loop goes on
        until no work is left (a signal must not wait for the sessions of 10M events)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        while True:
            with self._lock:
                running = [f for f in self._submitted if not f.done()]
                for cursor in self._cursors:
                    cursor.interrupt()
            if not running:
                break
            wait(running, timeout=CLOSE_POLL_SECONDS)
        self._pool.shutdown(wait=True)
        for cursor in self._cursors:
            cursor.close()

    def _submit(self, fn: Callable[..., None], *args: object) -> Future[None]:
        future = self._pool.submit(fn, *args)
        with self._lock:
            self._submitted = [f for f in self._submitted if not f.done()]
            self._submitted.append(future)
        return future

    def _execute(self, step: SqlStep) -> None:
        def execute(cursor: duckdb.DuckDBPyConnection) -> None:
            try:
                cursor.execute(step.sql)
            except duckdb.OutOfMemoryException as exc:
                raise OutOfMemoryError(
                    f"{step.name}: {out_of_memory(exc)}", file=str(step.path)
                ) from None
            except duckdb.Error as exc:
                raise WarehouseError(
                    f"{step.name}: attribution SQL failed: {first_line(exc)}",
                    file=str(step.path),
                ) from None

        self._on_cursor(execute)

    def _on_cursor(self, work: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """`work` on an idle cursor, unless the lanes are closing."""
        with self._lock:
            closed = self._closed
        if closed:
            raise WarehouseError("the attribution was stopped")
        cursor = self._idle.get()
        try:
            work(cursor)
        finally:
            self._idle.put(cursor)


def first_line(exc: BaseException) -> str:
    """A DuckDB error's first line: the rest is DuckDB's generic advice ("Possible solutions:
    ... SET memory_limit"), which names DuckDB settings, not agenttrail's."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def out_of_memory(exc: duckdb.OutOfMemoryException) -> str:
    """What DuckDB said, as a clause: "DuckDB ran out of memory (failed to pin block ...)"."""
    return f"DuckDB ran out of memory ({first_line(exc).removeprefix('Out of Memory Error: ')})"
