"""The unit of work of a parse process: a few source objects -> staged files + outcomes.

Runs in a worker process, so it takes and returns plain picklable data and touches nothing but
its own files under _staging.
"""

from __future__ import annotations

import ctypes
import gc
import os
import select
import signal
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import OutOfMemoryError, ParseError
from pipeline.parse import ObjectParser
from pipeline.parse.records import redact_session_tokens
from pipeline.source.keys import classify_key
from pipeline.source.local import shown
from pipeline.warehouse.disk import is_disk_failure
from pipeline.warehouse.stage import (
    Partition,
    StagedFile,
    partition_pieces,
    stage_pieces,
    stage_table,
)


@dataclass(frozen=True)
class TaskObject:
    uri: str
    data: bytes | None  # content fetched from S3, or None to read `path`
    path: str | None
    fallback_account: str | None


@dataclass(frozen=True)
class ParseTask:
    task_id: int
    run_id: str
    objects: tuple[TaskObject, ...]
    staging_dir: str
    since: date | None
    until: date | None
    stream_threshold_bytes: int
    row_group_rows: int
    # Rows a worker holds before writing staged files: bounds worker memory (~1 KB per row).
    # Objects come in uri order, i.e. by account, region and day; a flush waits for the end of
    # the current object's folder (one day of one account and region), up to twice this many
    # rows, so that it does not split a partition into two staged files. 15,000 rows keep a
    # worker near 200 MB.
    flush_rows: int = 15_000
    # --account / --region: records of other accounts or regions are dropped (empty: all).
    # S3 listings are pruned by key already; this filters files outside CloudTrail's layout
    # (SIEM exports, arrays, NDJSON), record by record, as since/until do.
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()


@dataclass
class ObjectOutcome:
    uri: str
    sha256: str | None = None
    decompressed_bytes: int = 0
    records: int = 0
    rows: int = 0  # rows staged (after the period, account and region filters)
    outside_period: int = 0
    outside_scope: int = 0  # in the period, but of another account or region
    error: str | None = None  # file-level fault: the object is quarantined
    # The fault is the file's, not its content's (a read refused or failed: _read_failure): the
    # object is quarantined, and read again by the next run.
    read_failed: bool = False
    quarantined: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class TaskResult:
    task_id: int
    outcomes: list[ObjectOutcome]
    staged: list[StagedFile]


# glibc malloc settings of a parse process. Each object's decompressed text and each column's
# joined buffer are a few hundred KB to a few MB; with glibc's defaults every such buffer is
# mmap'ed or trimmed off the heap when freed and page-faulted back on the next object: about
# one page fault per event, ~15% of a worker's CPU on the bench's trail. Serving allocations
# below MMAP_THRESHOLD from the heap, and trimming it only when TRIM_THRESHOLD is free at its
# top, lets the next object reuse the same pages; measured peak RSS is unchanged (the heap only
# keeps what one flush of rows already needed).
_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 64 << 20


def _keep_freed_memory() -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc: its allocator has its own policy
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


# How often a parse process without pidfd support checks that the ingest is still running.
PARENT_POLL_SECONDS = 1.0


def init_worker(ingest_pid: int | None = None) -> None:
    # Ctrl-C reaches the whole process group, parse processes included, where it would raise
    # KeyboardInterrupt in the middle of a task and print its traceback under the ingest's
    # "interrupted" line. The ingest unwinds and stops its parse processes itself (the pool's
    # shutdown; SIGTERM and SIGKILL still end them), so they let Ctrl-C pass. A parse process
    # starts with SIGINT blocked (parse_processes.start_parse_server), so that a Ctrl-C before
    # this line waits: ignored, it is discarded, and SIGINT can be unblocked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # Parsing allocates millions of short-lived, acyclic objects; the cyclic GC only costs time.
    gc.disable()
    _keep_freed_memory()
    if ingest_pid is not None:
        threading.Thread(
            target=_exit_with, args=(ingest_pid,), name="exit-with-ingest", daemon=True
        ).start()


def _exit_with(ingest_pid: int) -> None:
    """End this parse process once the ingest that started it is gone.

    A parse process is the fork server's child, not the ingest's, and holds both ends of its
    task queue, so the ingest's death (SIGKILL, the OOM killer, a scheduler's timeout) never
    reaches it as EOF: without this it would wait for tasks forever, with its memory."""
    try:
        handle = os.pidfd_open(ingest_pid)  # Linux >= 5.3: readable once the process ends
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
        os._exit(1)
    while True:
        threading.Event().wait(PARENT_POLL_SECONDS)
        try:
            os.kill(ingest_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            continue  # it exists (where pidfd_open is missing, a reused pid goes unnoticed)


def _in_period(table: pa.Table, since: date | None, until: date | None) -> pa.Table:
    mask = None
    if since is not None:
        mask = pc.greater_equal(table["event_date"], pa.scalar(since, pa.date32()))
    if until is not None:
        upper = pc.less_equal(table["event_date"], pa.scalar(until, pa.date32()))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table if mask is None else table.filter(mask)


def _in_scope(table: pa.Table, accounts: tuple[str, ...], regions: tuple[str, ...]) -> pa.Table:
    """The rows of the wanted accounts (recipientAccountId) and regions (awsRegion); a row
    without the value is not of a wanted one."""
    mask = None
    for column, wanted in (("recipient_account_id", accounts), ("aws_region", regions)):
        if wanted:
            found = pc.is_in(table[column], value_set=pa.array(wanted, pa.string()))
            found = pc.fill_null(found, False)
            mask = found if mask is None else pc.and_(mask, found)
    return table if mask is None else table.filter(mask)


def run_task(task: ParseTask) -> TaskResult:
    staging = Path(task.staging_dir)
    outcomes: list[ObjectOutcome] = []
    staged: list[StagedFile] = []
    # Rows not yet staged, by partition (pieces of the parser's tables, in order of arrival).
    pending: dict[Partition, list[pa.RecordBatch]] = {}
    pending_rows = 0
    flushes = 0
    early_stagings = 0  # names the files of large objects staged early, across the task

    def flush(hold: Partition | None = None) -> None:
        """Stage the pending rows, but those of partition `hold`: they stay pending."""
        nonlocal pending, pending_rows, flushes
        kept = {hold: pending.pop(hold)} if hold in pending else {}
        if pending:
            name = f"{task.run_id}-{task.task_id:06d}-{flushes:03d}"
            staged.extend(stage_pieces(pending, staging, name, row_group_rows=task.row_group_rows))
            flushes += 1
        pending = kept
        pending_rows = sum(piece.num_rows for pieces in kept.values() for piece in pieces)

    for position, obj in enumerate(task.objects):
        outcome = ObjectOutcome(obj.uri)
        parser = ObjectParser(
            obj.uri, task.run_id, obj.fallback_account, task.stream_threshold_bytes
        )
        tables: list[pa.Table] = []
        own_rows = 0
        own_staged: list[StagedFile] = []  # chunks of one large object, staged early
        source = obj.data if obj.data is not None else Path(obj.path or obj.uri)
        try:
            for table in parser.tables(source):
                in_period = _in_period(table, task.since, task.until)
                kept = _in_scope(in_period, task.accounts, task.regions)
                outcome.outside_period += table.num_rows - in_period.num_rows
                outcome.outside_scope += in_period.num_rows - kept.num_rows
                outcome.rows += kept.num_rows
                tables.append(kept)
                own_rows += kept.num_rows
                if own_rows >= task.flush_rows:
                    # Numbered across the task: each large object's files must not take the
                    # name of another's in the same partition (they replaced them).
                    name = f"{task.run_id}-{task.task_id:06d}-big{early_stagings:04d}"
                    early_stagings += 1
                    big = pa.concat_tables(tables)
                    own_staged.extend(
                        stage_table(big, staging, name, row_group_rows=task.row_group_rows)
                    )
                    tables, own_rows = [], 0
        except Exception as exc:
            # A file-level fault: none of the object's rows count; it is quarantined whole.
            # Anything unforeseen in one object's content quarantines that object, not the run.
            # A full or read-only disk is the warehouse's fault, not the object's: it stops the
            # run (the object stays unread, so the re-run reads it).
            if is_disk_failure(exc):
                raise
            # So is memory running out (MemoryError, pyarrow's ArrowMemoryError among them):
            # it says how busy the machine was, not what the object holds, and a quarantined
            # object would be skipped as unchanged by every later run.
            if isinstance(exc, MemoryError):
                raise out_of_memory(f"while parsing {shown(obj.uri)}", exc) from exc
            failed_read = _read_failure(exc)
            if failed_read is not None:
                outcome.error = f"cannot read: {failed_read}"
                outcome.read_failed = True
            elif isinstance(exc, ParseError):
                outcome.error = exc.message
            elif isinstance(exc, OSError):
                outcome.error = f"cannot read: {exc}"
            else:
                outcome.error = f"cannot parse: {type(exc).__name__}: {exc}"
            outcome.error = shown(outcome.error)  # an OS message may hold the file's name
            tables = []
            outcome.rows = outcome.outside_period = outcome.outside_scope = 0
            for early in own_staged:
                Path(early.path).unlink(missing_ok=True)
            own_staged = []
        staged.extend(own_staged)
        outcome.sha256 = parser.sha256 or None
        outcome.decompressed_bytes = parser.decompressed_bytes
        outcome.records = parser.records
        outcome.quarantined = [
            (q.index, shown(q.reason), redact_session_tokens(q.text).decode("utf-8", "replace"))
            for q in parser.quarantined
        ]
        outcomes.append(outcome)
        for table in tables:
            for key, pieces in partition_pieces(table).items():
                pending.setdefault(key, []).extend(pieces)
            pending_rows += table.num_rows
        following = task.objects[position + 1].uri if position + 1 < len(task.objects) else ""
        if pending_rows >= 2 * task.flush_rows:
            flush()
        elif pending_rows >= task.flush_rows and not same_partition(obj.uri, following):
            # The day this object's folder is named for stays pending: the next day's first
            # objects still hold some of its events (delivered after midnight), which then
            # join it in one file instead of a file of a few rows each (a Parquet file of
            # 60 columns costs ~2.5 ms to write whatever its size: 0.8 s per 1M events).
            flush(hold=_folder_partition(obj.uri))
    flush()
    return TaskResult(task.task_id, outcomes, staged)


def out_of_memory(doing: str, exc: MemoryError) -> OutOfMemoryError:
    """The one-line error that ends a run that ran out of memory while `doing` something: the
    objects it had not committed are not in the manifest, so the re-run reads them."""
    detail = f" ({exc})" if str(exc) else ""
    return OutOfMemoryError(
        f"out of memory {doing}{detail}: the objects not committed yet are read again by the"
        " next run, and nothing committed before is lost",
        hint="lower --workers (or [ingest] workers) or [ingest] stream_threshold_mb, or give the"
        " machine more memory, then re-run the same command to carry on",
    )


def _read_failure(exc: BaseException) -> OSError | None:
    """The failed system call behind an object's fault, if its file could not be read rather
    than its content parsed: permission refused (EACCES, EPERM), an I/O error (EIO), a file
    gone since it was listed (ENOENT)... Raised as such, or wrapped in a ParseError by the gzip
    stream, which takes any OSError while reading for a damaged stream. An OSError without an
    errno (a bad gzip header) is about the content."""
    for found in (exc, exc.__cause__, exc.__context__):
        if isinstance(found, OSError) and found.errno is not None:
            return found
    return None


def partition_order(uri: str) -> tuple[int, str, str, str, str]:
    """Where an object comes in a run: CloudTrail's objects by account and day (one partition
    of events/), then region and key; any other object after them, by uri. A partition's
    objects are then parsed together and become one events file, whichever regions they
    come from."""
    info = classify_key(uri)
    if info.in_layout and info.account and info.day:
        return (0, info.account, info.day.isoformat(), info.region or "", uri)
    return (1, "", "", "", uri)


def _folder_partition(uri: str) -> Partition | None:
    """The partition an object's key names (its account and delivery day), if in the layout."""
    info = classify_key(uri)
    if info.in_layout and info.account and info.day:
        return (info.account, info.day)
    return None


def same_partition(uri: str, other: str) -> bool:
    """Whether two objects' rows fall in the same partition as far as their keys tell (one
    account and day in CloudTrail's layout; elsewhere, one folder)."""
    mine, theirs = partition_order(uri), partition_order(other)
    if mine[0] == 0 and theirs[0] == 0:
        return mine[1:3] == theirs[1:3]
    return uri.rpartition("/")[0] == other.rpartition("/")[0]
