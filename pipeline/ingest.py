"""The ingest job: source -> parse -> warehouse, incrementally and without loss.

Entry point: `run_ingest`. It lists the sources, compares each object with the manifest, reads
new and changed objects in parallel (S3 downloads in threads, parsing in processes), commits
staged rows in batches (one row per eventID), and records every object's outcome in the
manifest. It holds the warehouse lock for its whole run.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import multiprocessing
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from pipeline.attribute.freshness import attribute_command, is_current, mark_stale
from pipeline.attribute.sql_graph import out_of_memory as duckdb_out_of_memory
from pipeline.config import Settings, raise_setting_hint
from pipeline.endpoints import check_s3_uri
from pipeline.errors import (
    AgenttrailError,
    AttributionPendingError,
    DatabaseInUseError,
    ExitCode,
    OutOfMemoryError,
    ParseError,
    SourceError,
)
from pipeline.ingest_task import (
    ObjectOutcome,
    ParseTask,
    TaskObject,
    TaskResult,
    init_worker,
    out_of_memory,
    partition_order,
    run_task,
    same_partition,
)
from pipeline.interrupts import uninterrupted
from pipeline.parse.in_memory import decompress
from pipeline.parse_processes import (
    CONTEXT,
    shut_down_at_end,
    start_parse_server,
    stop_parse_server,
)
from pipeline.source import Fetched, Filters, Source, SourceObject
from pipeline.source.local import shown, unread_version
from pipeline.source.open import open_source
from pipeline.warehouse import manifest
from pipeline.warehouse.commit import KnownIds, commit_batch
from pipeline.warehouse.connect import (
    remove_stale_schema_writes,
    remove_unused_generations,
    repair_damaged_database,
    session_defaults,
)
from pipeline.warehouse.disk import disk_failure, is_disk_failure
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.lock import writer_lock
from pipeline.warehouse.manifest import ManifestEntry
from pipeline.warehouse.records import DigestRow, QuarantineRow, write_digests, write_quarantine
from pipeline.warehouse.stage import StagedFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A task is a few objects for one parse process: large enough to amortise process hand-off,
# small enough that a worker holds little in memory.
TASK_BYTES = 8 << 20
# The smallest task, which the last tasks of a run shrink to (see _tasks): on the bench's trail
# about 5,000 events, a tenth of a second of parsing, still several key folders.
TASK_MIN_BYTES = 1 << 20
# The most objects a parse task takes, whatever their size. Users: _tasks, and _groups (the
# digests, read a group at a time). A task's objects are all downloaded before it is submitted
# (_fetch_all), and a quiet region's trail files are a few KB each: by TASK_BYTES alone a task
# would be thousands of GETs, each a round trip, while the parse processes wait for it. 256 is
# 16 rounds of the default 16 download threads.
TASK_MAX_OBJECTS = 256
# Objects whose content stays in memory between download and parse; bigger ones are spooled.
SPOOL_ABOVE = 64 << 20
# Quarantined objects and records the summary lists (`quarantine` in --json, the lines of the
# text summary). Users: whoever reads a run's summary, a scheduler's log among them: a run that
# quarantines a whole bad backfill must not print a line per object. The summary counts them
# all, and the `manifest` and `quarantined_records` views list them all.
QUARANTINE_EXAMPLES = 50
# A digest's S3 metadata and decompressed body, read on a fetch thread.
_DigestRead = Future[tuple[dict[str, str], bytes]]


@dataclass
class Progress:
    """Counters passed to the progress callback after each task."""

    objects_total: int
    objects_done: int
    events: int
    bytes_read: int
    started: float


@dataclass
class IngestSummary:
    run_id: str
    warehouse: str
    sources: list[str]
    objects_listed: int = 0
    # Sources that listed no object at all (with the period, account and region filters): a
    # wrong bucket, prefix or folder looks like a quiet night otherwise.
    empty_sources: list[str] = field(default_factory=list)
    objects_unchanged: int = 0
    # Every object listed is counted once: objects_listed = objects_unchanged + objects_read +
    # objects_too_large + digests_recorded + the skipped + len(failures). Read objects include
    # the quarantined ones that were opened (an empty file is read: it holds nothing).
    objects_read: int = 0
    objects_too_large: int = 0  # quarantined unread: above max_object_mb
    skipped_by_kind: Counter[str] = field(default_factory=Counter)
    digests_recorded: int = 0
    objects_quarantined: int = 0
    records_read: int = 0
    records_quarantined: int = 0
    outside_period: int = 0
    # Records of other accounts or regions than --account/--region asked for, in files outside
    # CloudTrail's key layout (filtered record by record; S3 keys are pruned when listed).
    outside_scope: int = 0
    events_written: int = 0
    duplicates_dropped: int = 0
    bytes_read: int = 0
    bytes_decompressed: int = 0
    seconds: float = 0.0
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    attribution: dict[str, Any] = field(default_factory=dict)

    @property
    def attribution_failed(self) -> bool:
        return "error" in self.attribution

    @property
    def exit_code(self) -> ExitCode:
        """The highest code that applies (README, "Exit codes")."""
        codes = [ExitCode.OK]
        if self.failures or self.attribution_failed:
            codes.append(ExitCode.ERROR)
        if self.objects_quarantined or self.records_quarantined:
            codes.append(ExitCode.QUARANTINED)
        return max(codes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "warehouse": self.warehouse,
            "sources": self.sources,
            "objects_listed": self.objects_listed,
            "empty_sources": self.empty_sources,
            "objects_unchanged": self.objects_unchanged,
            "objects_read": self.objects_read,
            "objects_too_large": self.objects_too_large,
            "skipped_by_kind": dict(sorted(self.skipped_by_kind.items())),
            "digests_recorded": self.digests_recorded,
            "objects_quarantined": self.objects_quarantined,
            "records_read": self.records_read,
            "records_quarantined": self.records_quarantined,
            "outside_period": self.outside_period,
            "outside_scope": self.outside_scope,
            "events_written": self.events_written,
            "duplicates_dropped": self.duplicates_dropped,
            "bytes_read": self.bytes_read,
            "bytes_decompressed": self.bytes_decompressed,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_written / self.seconds) if self.seconds else 0,
            "quarantine": self.quarantine,
            "failures": self.failures,
            "attribution": self.attribution,
            "exit_code": int(self.exit_code),
        }


@dataclass
class _Batch:
    """What the next commit writes: staged files, and the outcomes that follow them."""

    staged: list[StagedFile] = field(default_factory=list)
    staged_rows: int = 0
    outcomes: list[tuple[SourceObject, ObjectOutcome]] = field(default_factory=list)
    entries: list[ManifestEntry] = field(default_factory=list)  # objects with no rows
    digests: list[DigestRow] = field(default_factory=list)


@dataclass
class _Running:
    """A parse task submitted: its objects, and the spool files it reads (deleted when done)."""

    objects: list[SourceObject]
    spooled: list[Path]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_run_id() -> str:
    return _now().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


class _Job:
    def __init__(
        self,
        *,
        sources: Sequence[str],
        settings: Settings,
        filters: Filters,
        s3_client: S3Client | None,
        progress: Callable[[Progress], None] | None,
        retry_quarantined: bool,
    ) -> None:
        self.settings = settings
        self.cfg = settings.ingest
        self.filters = filters
        self.s3_client = s3_client
        self.progress = progress
        self.retry_quarantined = retry_quarantined
        self.layout = Layout.at(settings.warehouse)
        self.run_id = _new_run_id()
        self.summary = IngestSummary(
            self.run_id, str(self.layout.root), [shown(uri) for uri in sources]
        )
        self.source_uris = list(sources)
        self.batch = _Batch()
        self.commits = 0
        self.started = time.monotonic()
        self.objects_total = 0
        self.objects_done = 0
        self.staging = self.layout.staging / self.run_id
        # Finished tasks wait here until every earlier task is absorbed: commits then follow
        # task (hence uri) order, so "smallest source_uri wins" holds across the commits of a
        # run whatever order the workers finish in.
        self.finished: dict[int, tuple[TaskResult, list[SourceObject]]] = {}
        self.next_task = 0
        # Hashes of the eventIDs in events/, carried from commit to commit (see commit.py).
        self.known_ids = KnownIds()

    # ---- listing -------------------------------------------------------------------------
    def _plan(self) -> list[tuple[Source, SourceObject]]:
        known = manifest.load_latest(self.layout.manifest)
        todo: list[tuple[Source, SourceObject]] = []
        seen: set[str] = set()
        for uri in self.source_uris:
            source = open_source(uri, s3_client=self.s3_client, warehouse=self.layout.root)
            listed = 0
            for obj in source.list(self.filters):
                listed += 1
                if obj.uri in seen:
                    continue  # the same object under two overlapping sources
                seen.add(obj.uri)
                self.summary.objects_listed += 1
                previous = known.get(obj.uri)
                if previous is not None and self._unchanged(previous, obj):
                    self.summary.objects_unchanged += 1
                    continue
                todo.append((source, obj))
            if not listed:
                self.summary.empty_sources.append(shown(uri))
        return todo

    def _unchanged(self, previous: ManifestEntry, obj: SourceObject) -> bool:
        if previous.version != obj.version or previous.size != obj.size:
            return False
        if previous.status == "quarantined" and self.retry_quarantined:
            return False
        return manifest.covers(
            previous,
            self.filters.since,
            self.filters.until,
            self.filters.accounts,
            self.filters.regions,
        )

    # ---- manifest entries -----------------------------------------------------------------
    def _entry(
        self, obj: SourceObject, status: manifest.Status, reason: str | None, **counts: Any
    ) -> ManifestEntry:
        dropped = counts.get("outside_period", 0)
        scoped = counts.get("outside_scope", 0)
        return ManifestEntry(
            uri=obj.uri,
            kind=obj.kind,
            size=obj.size,
            version=obj.version,
            sha256=counts.get("sha256"),
            status=status,
            reason=shown(reason) if reason else None,
            records=counts.get("records", 0),
            events_written=counts.get("events_written", 0),
            duplicates=counts.get("duplicates", 0),
            quarantined_records=counts.get("quarantined_records", 0),
            outside_period=dropped,
            period_since=self.filters.since if dropped else None,
            period_until=self.filters.until if dropped else None,
            run_id=self.run_id,
            recorded_at=_now(),
            outside_scope=scoped,
            scope_accounts=self.filters.accounts if scoped else (),
            scope_regions=self.filters.regions if scoped else (),
        )

    def _quarantine_object(
        self, obj: SourceObject, reason: str, sha256: str | None = None, *, unread: bool = False
    ) -> None:
        """Quarantine the whole object. `unread`: its file could not be read (permission
        refused, an I/O error), which says nothing of its content: its manifest entry bears a
        marked version (unread_version), which no listing gives, so the next run reads it again
        (a file made readable keeps its mtime), as it does a dangling link."""
        self.summary.objects_quarantined += 1
        if len(self.summary.quarantine) < QUARANTINE_EXAMPLES:
            self.summary.quarantine.append({"uri": obj.uri, "reason": shown(reason)})
        entry = self._entry(obj, "quarantined", reason, sha256=sha256)
        if unread:
            entry = replace(entry, version=unread_version(entry.version))
        self.batch.entries.append(entry)

    # ---- the run --------------------------------------------------------------------------
    def run(self) -> IngestSummary:
        pending: AttributionPendingError | None = None
        self.layout.ensure()
        with writer_lock(self.layout.lock, "ingest"):
            # Leftovers of a killed run are never committed: their objects are not in the
            # manifest, so this run reads them again. That includes side-table files it was
            # writing (".NAME.tmp", never read by the views).
            shutil.rmtree(self.layout.staging, ignore_errors=True)
            for folder in (self.layout.manifest, self.layout.digests, self.layout.quarantine):
                for partial in folder.glob(".*.tmp"):
                    partial.unlink(missing_ok=True)
            remove_stale_schema_writes(self.layout)
            try:
                self.staging.mkdir(parents=True)
                try:
                    with shut_down_at_end(self._parse_processes()) as pool:
                        todo = self._plan()
                        self.objects_total = len(todo)
                        self._process(todo, pool)
                        self._commit()
                except BrokenProcessPool as exc:
                    raise self._parse_process_died() from exc
                except MemoryError as exc:
                    # This process's own (a digest's body, a commit): as a parse process's
                    # (run_task), the run stops and records nothing of the objects at hand.
                    raise out_of_memory("while ingesting", exc) from exc
                self._release_memory()
                pending = self._attribute()
            finally:
                # Whole, whatever signal comes meanwhile (a second Ctrl-C cut it short).
                with uninterrupted():
                    shutil.rmtree(self.layout.staging, ignore_errors=True)
        self.summary.seconds = time.monotonic() - self.started
        if pending is not None:
            raise pending
        return self.summary

    def _parse_process_died(self) -> AgenttrailError:
        """The error of a run whose parse process ended abruptly (SIGKILL, most often from the
        kernel's out-of-memory killer): the pool is then unusable. What was committed before
        stays, manifest and all; the objects of the tasks not committed (that one's and those
        parsed beside it, whose staged files go with _staging/) are not in the manifest, so the
        re-run reads them."""
        return AgenttrailError(
            "a parse process died (killed, most likely by the out-of-memory killer): the"
            " objects it was parsing are not committed, and nothing committed before is lost",
            hint="lower --workers (or [ingest] workers) or give the machine more memory, then"
            " re-run the same command to carry on: it reads only what is missing",
            warehouse=str(self.layout.root),
            workers=self.cfg.workers,
        )

    def _release_memory(self) -> None:
        """Drop what the commits kept (the warehouse's eventID hashes: 80 MB at 10M events)
        and hand the freed heap back to the OS before the attribution rebuild's DuckDB takes
        its share: the process tree stays under 1 GB at 10M events."""
        self.known_ids = KnownIds()
        stop_parse_server()
        gc.collect()
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed blocks
        # Not glibc: its allocator keeps its own policy.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)

    def _attribute(self) -> AttributionPendingError | None:
        """Re-derive attribution over the whole warehouse (so files arriving out of order never
        change an answer), unless nothing changed since the last classification.

        The marker (attribute/freshness.py) is removed before any commit adds events (see
        _commit) and written only after a rebuild succeeds, so a run killed in between
        rebuilds next time.

        A rebuild that cannot run (the database held open, a full disk) does not undo the
        commits: the events are in (the trail may be gone from S3 tomorrow) and the manifest
        says so, so a re-run reads nothing again. The failure is recorded in the summary and
        returned, for run() to raise once the lock is released: the summary is still printed.
        """
        if is_current(self.layout, self.settings.attribution.rules_version()):
            self.summary.attribution = {"skipped": "no new events since the last classification"}
            # What a rebuild killed after marking the classification current did not get to
            # remove: no rebuild comes to remove it until new events do.
            remove_unused_generations(self.layout)
            repair_damaged_database(self.layout)
            return None
        # Imported here: the rebuild's modules are not needed before it, and the parse
        # processes start sooner without waiting for them (~50 ms).
        from pipeline.attribute.classify import refresh_attribution

        try:
            attribution = refresh_attribution(self.layout, self.settings.attribution)
        except DatabaseInUseError as exc:
            return self._pending(exc, "close it, then ")
        except OutOfMemoryError as exc:
            return self._pending(exc, f"{exc.hint}, then " if exc.hint else "")
        except AgenttrailError as exc:
            return self._pending(exc, "when that is fixed, ")
        except (OSError, duckdb.IOException) as exc:
            if not is_disk_failure(exc):
                raise
            return self._pending(disk_failure(exc, self.layout.root), "make room, then ")
        self.summary.attribution = {
            "events": attribution.events,
            "sessions": attribution.sessions,
            "by_actor": attribution.by_actor,
            "rules_version": attribution.rules_version,
            "seconds": round(attribution.seconds, 3),
            "phases": attribution.phases,
            "reused_issued_keys": attribution.reused_issued_keys,
        }
        return None

    def _pending(self, cause: AgenttrailError, first: str) -> AttributionPendingError:
        """The error of a rebuild that could not run after the commits, recorded in the
        summary; `first` is what to do before re-running it."""
        committed = self.summary.events_written
        message = (
            f"{committed} new events are committed, but " if committed else ""
        ) + f"attribution could not run: {cause.message}"
        hint = f"{first}run {attribute_command(self.settings)} (the next ingest also catches up)"
        self.summary.attribution = {"error": f"{message} ({hint})"}
        return AttributionPendingError(
            message,
            hint=hint,
            summary=self.summary,
            exit_code=self.summary.exit_code,
            warehouse=str(self.layout.root),
            **{k: v for k, v in cause.inputs.items() if k != "warehouse"},
        )

    def _parse_processes(self) -> ProcessPoolExecutor:
        """The pool of parse processes. They start with the first tasks, forked from a server
        that has the parse modules imported already (parse_processes.py): a run with nothing
        new to read starts none. Used inside shut_down_at_end: a second signal must not cut
        its shutdown short."""
        start_parse_server()  # a no-op when the CLI started it already
        return ProcessPoolExecutor(
            max(1, self.cfg.workers),
            mp_context=multiprocessing.get_context(CONTEXT),
            initializer=init_worker,
            initargs=(os.getpid(),),
        )

    def _process(
        self,
        todo: list[tuple[Source, SourceObject]],
        pool: ProcessPoolExecutor,
    ) -> None:
        events: list[tuple[Source, SourceObject]] = []
        max_bytes = self.cfg.max_object_mb << 20
        with (
            shut_down_at_end(ThreadPoolExecutor(max(1, self.cfg.download_threads))) as fetchers,
            # Closed on the way out of an interrupted run: reads not started are cancelled.
            contextlib.closing(self._read_digests(todo, fetchers)) as digests,
        ):
            for source, obj in todo:
                if obj.unreadable and obj.kind in ("events", "digest"):
                    # Listed but not openable (a symbolic link to nothing): quarantined as an
                    # unreadable file is, and counted read as such a file is.
                    self.summary.objects_read += 1
                    self._quarantine_object(obj, obj.unreadable)
                    self._tick()
                elif obj.kind == "events":
                    if obj.size > max_bytes:
                        self.summary.objects_too_large += 1
                        self._quarantine_object(
                            obj,
                            f"object is {obj.size:,} bytes, above max_object_mb={self.cfg.max_object_mb}",
                        )
                        self._tick()
                    elif obj.size == 0:
                        self.summary.objects_read += 1  # all zero bytes of it
                        self._quarantine_object(obj, "empty file: no records")
                        self._tick()
                    else:
                        events.append((source, obj))
                elif obj.kind == "digest":
                    self._record_digest(obj, next(digests))
                else:
                    self.summary.skipped_by_kind[obj.kind] += 1
                    self.batch.entries.append(
                        self._entry(obj, "skipped", f"{obj.kind} object, not events")
                    )
                    self._tick()

            workers = max(1, self.cfg.workers)
            running: dict[Future[TaskResult], _Running] = {}
            task_id = 0
            for group in _tasks(events, workers):
                objects, spooled = self._fetch_all(group, fetchers)
                if not objects:
                    continue
                task = ParseTask(
                    task_id=task_id,
                    run_id=self.run_id,
                    objects=tuple(o for o, _ in objects),
                    staging_dir=str(self.staging),
                    since=self.filters.since,
                    until=self.filters.until,
                    stream_threshold_bytes=int(self.cfg.stream_threshold_mb * (1 << 20)),
                    row_group_rows=self.cfg.row_group_rows,
                    accounts=self.filters.accounts,
                    regions=self.filters.regions,
                )
                task_id += 1
                # A submit may start a parse process: a signal waits until it has started.
                with uninterrupted():
                    future = pool.submit(run_task, task)
                running[future] = _Running([o for _, o in objects], spooled)
                while len(running) + len(self.finished) >= 2 * workers:
                    self._collect(running)
            while running:
                self._collect(running)

    def _fetch_all(
        self, group: list[tuple[Source, SourceObject]], fetchers: ThreadPoolExecutor
    ) -> tuple[list[tuple[TaskObject, SourceObject]], list[Path]]:
        """The group's objects fetched, for a parse task, and the spool files among them (its
        task's, deleted once that task is done: _collect)."""

        def fetch(item: tuple[Source, SourceObject]) -> tuple[SourceObject, Fetched | SourceError]:
            source, obj = item
            try:
                return obj, source.fetch(obj, self.staging, SPOOL_ABOVE)
            except SourceError as exc:
                return obj, exc

        out = []
        spooled = []
        for obj, fetched in fetchers.map(fetch, group):
            if isinstance(fetched, SourceError):
                self.summary.failures.append({"uri": obj.uri, "error": fetched.one_line()})
                self._tick()
                continue
            self.summary.bytes_read += obj.size
            path = str(fetched.path) if fetched.path else None
            out.append((TaskObject(obj.uri, fetched.data, path, obj.account), obj))
            spooled.extend(self._spool_file(fetched))
        return out, spooled

    def _spool_file(self, fetched: Fetched) -> list[Path]:
        """The spool file a fetch made (none, or one): a download the source marked spooled,
        in this run's staging folder. Anything else is the user's file (a local source hands
        over its own paths) and is never deleted."""
        path = fetched.path
        if fetched.spooled and path is not None and path.parent == self.staging:
            return [path]
        return []

    @staticmethod
    def _discard(spooled: Iterable[Path]) -> None:
        """Delete spool files whose content has been read: a backfill downloads many large
        objects, and its disk must hold only those being parsed, not all of them."""
        for path in spooled:
            # What cannot be deleted now goes with _staging/ at the end of the run.
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _read_digests(
        self, todo: list[tuple[Source, SourceObject]], fetchers: ThreadPoolExecutor
    ) -> Generator[_DigestRead, None, None]:
        """The reads of the digests that _process records (those not unreadable), in `todo`'s
        order, each on a fetch thread. A group of them at a time, as events objects are
        fetched: the next group starts when the main thread takes the first read of it, so
        few bodies wait in memory."""
        readable = [i for i in todo if i[1].kind == "digest" and not i[1].unreadable]
        for group in _groups(readable):
            reads = [fetchers.submit(self._read_digest, source, obj) for source, obj in group]
            try:
                yield from reads
            finally:
                for read in reads:
                    read.cancel()  # those not started, when the run stops half-way

    def _read_digest(self, source: Source, obj: SourceObject) -> tuple[dict[str, str], bytes]:
        """A digest's S3 metadata and decompressed body (on a fetch thread)."""
        fetched = source.fetch(obj, self.staging, SPOOL_ABOVE)
        try:
            data = (
                fetched.data
                if fetched.data is not None
                else Path(fetched.path or obj.uri).read_bytes()
            )
        finally:
            self._discard(self._spool_file(fetched))
        return fetched.metadata, decompress(data)

    def _record_digest(self, obj: SourceObject, read: _DigestRead) -> None:
        try:
            metadata, body = read.result()  # the read's own error, if it failed
        except SourceError as exc:
            self.summary.failures.append({"uri": obj.uri, "error": exc.one_line()})
            self._tick()
            return
        except ParseError as exc:
            self.summary.objects_read += 1  # read, and not a digest that can be recorded
            self._quarantine_object(obj, f"digest: {exc.message}")
            self._tick()
            return
        except OSError as exc:
            if is_disk_failure(exc):
                raise
            self.summary.objects_read += 1  # as an unreadable events file is
            self._quarantine_object(
                obj, f"digest: cannot read: {exc.strerror or exc}", unread=exc.errno is not None
            )
            self._tick()
            return
        if not body.strip():
            # As an empty events file is: a digest that says nothing proves nothing.
            self.summary.objects_read += 1
            self._quarantine_object(obj, "digest: empty file")
            self._tick()
            return
        sha256 = hashlib.sha256(body).hexdigest()
        self.batch.digests.append(
            DigestRow(
                uri=obj.uri,
                account=obj.account,
                region=obj.region,
                day=obj.day,
                size=obj.size,
                version=obj.version,
                sha256=sha256,
                signature=metadata.get("signature"),
                signature_algorithm=metadata.get("signature-algorithm"),
                body=body.decode("utf-8", "replace"),
                run_id=self.run_id,
                recorded_at=_now(),
            )
        )
        self.batch.entries.append(self._entry(obj, "ingested", "digest recorded", sha256=sha256))
        self.summary.digests_recorded += 1
        self._tick()

    def _collect(self, running: dict[Future[TaskResult], _Running]) -> None:
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            task = running.pop(future)
            # Parsed (or failed: the object quarantined, or the run stopping): the task's spool
            # files are read for good, even while its result waits for an earlier task's.
            self._discard(task.spooled)
            result = future.result()
            self.finished[result.task_id] = (result, task.objects)
        while self.next_task in self.finished:
            result, objects = self.finished.pop(self.next_task)
            self.next_task += 1
            by_uri = {o.uri: o for o in objects}
            for outcome in result.outcomes:
                self._absorb(by_uri[outcome.uri], outcome)
            self.batch.staged.extend(result.staged)
            self.batch.staged_rows += sum(s.rows for s in result.staged)
            if self.batch.staged_rows >= self.cfg.commit_rows:
                self._commit()
        if self.progress:
            self.progress(
                Progress(
                    self.objects_total,
                    self.objects_done,
                    self.summary.events_written + self.batch.staged_rows,
                    self.summary.bytes_read,
                    self.started,
                )
            )

    def _absorb(self, obj: SourceObject, outcome: ObjectOutcome) -> None:
        self.summary.objects_read += 1
        self.summary.bytes_decompressed += outcome.decompressed_bytes
        self._tick()
        if outcome.error:
            # Quarantined whole: none of its records count (the manifest says records=0), so
            # records read = written + duplicates + outside the period + outside the accounts
            # and regions + quarantined records.
            self._quarantine_object(obj, outcome.error, outcome.sha256, unread=outcome.read_failed)
            return
        self.summary.records_read += outcome.records
        self.summary.outside_period += outcome.outside_period
        self.summary.outside_scope += outcome.outside_scope
        self.summary.records_quarantined += len(outcome.quarantined)
        for index, reason, _ in outcome.quarantined[
            : max(0, QUARANTINE_EXAMPLES - len(self.summary.quarantine))
        ]:
            self.summary.quarantine.append({"uri": obj.uri, "record": index, "reason": reason})
        self.batch.outcomes.append((obj, outcome))

    def _tick(self) -> None:
        self.objects_done += 1

    def _configure_commit(self, con: duckdb.DuckDBPyConnection) -> None:
        session_defaults(con)
        con.execute("SET memory_limit = $m", {"m": self.cfg.duckdb_memory_limit})
        con.execute("SET temp_directory = $t", {"t": str(self.layout.spill)})
        con.execute("SET preserve_insertion_order = false")

    def _commit(self) -> None:
        batch, self.batch = self.batch, _Batch()
        if batch.staged:
            mark_stale(self.layout)
        name = f"part-{self.run_id}-{self.commits:05d}"
        self.commits += 1
        # A fresh in-memory connection per commit: DuckDB keeps its buffers up to the memory
        # limit for the life of a connection, and the parent shares the 1 GB budget with the
        # parse processes.
        try:
            with duckdb.connect() as fresh:
                self._configure_commit(fresh)
                result = commit_batch(
                    batch.staged, self.layout, fresh, self.cfg.row_group_rows, self.known_ids
                )
        except duckdb.OutOfMemoryException as exc:
            # DuckDB's limit, not the machine's (a MemoryError): its own setting to raise.
            raise OutOfMemoryError(
                f"committing events: {duckdb_out_of_memory(exc)}: the objects not committed yet"
                " are read again by the next run, and nothing committed before is lost",
                hint=raise_setting_hint(
                    "ingest", "duckdb_memory_limit", self.cfg.duckdb_memory_limit
                )
                + ", then re-run the same command to carry on",
            ) from None
        # Rows a killed run committed from these very objects count as this run's: the
        # manifest entries written here are the first to record them (commit.recovered_rows).
        self.summary.events_written += result.written + result.recovered
        self.summary.duplicates_dropped += (
            result.duplicates_in_batch + result.duplicates_in_warehouse
        )
        entries = list(batch.entries)
        quarantined: list[QuarantineRow] = []
        for obj, outcome in batch.outcomes:
            dropped = result.dropped_by_uri.get(obj.uri, 0)
            reason = None
            if outcome.quarantined:
                reasons = Counter(r for _, r, _ in outcome.quarantined)
                top = reasons.most_common(3)
                reason = "; ".join(f"{n} record(s): {r}" for r, n in top)
                rest = len(outcome.quarantined) - sum(n for _, n in top)
                if rest:
                    reason += f"; {rest} more record(s): see quarantined_records"
                now = _now()
                quarantined.extend(
                    QuarantineRow(obj.uri, i, r, text, self.run_id, now)
                    for i, r, text in outcome.quarantined
                )
            entries.append(
                self._entry(
                    obj,
                    "ingested",
                    reason,
                    sha256=outcome.sha256,
                    records=outcome.records,
                    events_written=outcome.rows - dropped,
                    duplicates=dropped,
                    quarantined_records=len(outcome.quarantined),
                    outside_period=outcome.outside_period,
                    outside_scope=outcome.outside_scope,
                )
            )
        # Order matters for crash safety: events first (above), then side tables, manifest last.
        write_digests(self.layout.digests, name, batch.digests)
        write_quarantine(self.layout.quarantine, name, quarantined)
        manifest.append(self.layout.manifest, name, entries)


def _tasks(
    events: Iterable[tuple[Source, SourceObject]], workers: int
) -> Iterator[list[tuple[Source, SourceObject]]]:
    """Group objects into parse tasks, a partition's objects together.

    Objects come in partition order (ingest_task.partition_order: account, day, region, key),
    and a task that has reached its target size still takes the rest of its last object's
    partition, up to twice the target: two tasks then rarely share a partition's rows, each of
    which would become an events file of its own.
    The target is TASK_BYTES until the bytes left are few: then it shrinks with them (down to
    TASK_MIN_BYTES), so that the workers finish together instead of one parsing a whole last
    task while the others wait.
    """
    items = sorted(events, key=lambda i: partition_order(i[1].uri))
    remaining = sum(obj.size for _, obj in items)
    target = _task_target(remaining, workers)
    group: list[tuple[Source, SourceObject]] = []
    size = 0
    for item in items:
        if group and (
            len(group) >= TASK_MAX_OBJECTS
            or size >= 2 * target
            or (size >= target and not same_partition(group[-1][1].uri, item[1].uri))
        ):
            yield group
            remaining -= size
            target = _task_target(remaining, workers)
            group, size = [], 0
        group.append(item)
        size += item[1].size
    if group:
        yield group


def _task_target(remaining: int, workers: int) -> int:
    return max(TASK_MIN_BYTES, min(TASK_BYTES, remaining // (2 * workers)))


def _groups(
    items: Iterable[tuple[Source, SourceObject]],
) -> Iterator[list[tuple[Source, SourceObject]]]:
    """Consecutive groups of `items`, in their order, none above a parse task's bounds:
    TASK_MAX_OBJECTS objects, and TASK_BYTES but for its last object."""
    group: list[tuple[Source, SourceObject]] = []
    size = 0
    for item in items:
        if group and (len(group) >= TASK_MAX_OBJECTS or size >= TASK_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += item[1].size
    if group:
        yield group


def run_ingest(
    sources: Sequence[str],
    settings: Settings,
    *,
    filters: Filters | None = None,
    s3_client: S3Client | None = None,
    progress: Callable[[Progress], None] | None = None,
    retry_quarantined: bool = False,
) -> IngestSummary:
    """Ingest CloudTrail objects from `sources` (s3:// URIs, folders, files) into the warehouse."""
    for uri in sources:  # before the warehouse is touched
        check_s3_uri(uri, "source")
    filters = filters or Filters(slack_days=settings.ingest.late_delivery_days)
    job = _Job(
        sources=sources,
        settings=settings,
        filters=filters,
        s3_client=s3_client,
        progress=progress,
        retry_quarantined=retry_quarantined,
    )
    return job.run()
