"""The events_classified files: each partition's events files with the verdict columns beside
them.

The verdicts are written by pyarrow into a staging file per block of partitions, and
warehouse/column_append.py joins them to the events files at the Parquet level: the event
columns' pages are copied as bytes, never decoded and re-encoded (which cost three times the
whole classification). Both run in the rebuild's thread pool, beside the verdict stream.
"""

from __future__ import annotations

import shutil
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import WarehouseError
from pipeline.warehouse.column_append import ScannedFooter, append_columns, scan_footer
from pipeline.warehouse.files import ZSTD_LEVEL

# Rows per verdict file (Appends): partitions' appends start once their verdict file is
# complete, so smaller files overlap more of the appends with the verdict stream; each costs a
# Parquet writer's fixed overhead (~1 ms).
VERDICT_FILE_ROWS = 100_000
# Events files whose footers FooterScans holds scanned ahead of the appends (~115 KB each,
# measured): all of them up to ~250 partitions (1M events in the classification benchmark
# make 180); at 10M events (~1,250 files) the window bounds the scans to ~30 MB.
FOOTER_LOOKAHEAD = 256


class FooterScans:
    """The events files' footers, scanned ahead in the thread pool (scan_footer): the next
    FOOTER_LOOKAHEAD files in the order classify._write_classified appends them. Started once the
    first attribution statement has read the events (start(): that scan keeps both cores busy,
    the statements after it mostly one), the scans use the CPU the SQL leaves idle; the window
    bounds the memory the scans hold."""

    def __init__(self, pool: ThreadPoolExecutor, files: list[Path]) -> None:
        self._pool = pool
        self._files = files
        self._next = 0
        self._futures: dict[Path, Future[ScannedFooter]] = {}
        # start() is called from a SQL lane's thread, take() from the rebuild's.
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._fill()

    def _fill(self) -> None:
        while self._next < len(self._files) and len(self._futures) < FOOTER_LOOKAHEAD:
            path = self._files[self._next]
            self._futures[path] = self._pool.submit(scan_footer, path)
            self._next += 1

    def take(self, path: Path) -> ScannedFooter | Path:
        """The scanned footer of `path` (waiting for it), or the path when it was not scanned."""
        with self._lock:
            self._fill()  # starts the scans if start() has not
            future = self._futures.pop(path, None)
            self._fill()
        return path if future is None else future.result()

    def cancel(self) -> None:
        with self._lock:
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()
            self._next = len(self._files)


@dataclass(frozen=True)
class _Append:
    """One partition: its events files with the row groups of each, its verdicts, and the
    events_classified file to write."""

    bases: list[ScannedFooter | Path]
    groups: list[list[int]]
    verdicts: pa.Table
    dest: Path


class Appends:
    """Partitions gathered into blocks of about VERDICT_FILE_ROWS verdict rows; each block is
    one task in the pool, which writes the block's verdicts into one file (a row group per
    events row group) and then appends each partition's row groups of it to its events files
    (column_append). The main thread only slices the verdict stream, so two blocks are written
    and appended at once while it reads on; a file per partition cost a Parquet writer's fixed
    overhead 180 times for 1M events."""

    def __init__(self, pool: ThreadPoolExecutor, workers: int, staging: Path) -> None:
        staging.mkdir(parents=True)
        self._pool = pool
        self._workers = workers
        # Blocks waiting for the pool hold their verdicts in memory (~6 MB each): bounded.
        self._in_flight = 2 * workers
        self._staging = staging
        self._blocks = 0
        self._block: list[_Append] = []
        self._rows = 0
        self._pending: deque[Future[None]] = deque()

    def add(
        self,
        bases: list[ScannedFooter | Path],
        groups: list[list[int]],
        verdicts: pa.Table,
        dest: Path,
    ) -> None:
        self._block.append(_Append(bases, groups, verdicts, dest))
        self._rows += verdicts.num_rows
        if self._rows >= VERDICT_FILE_ROWS:
            self.flush()

    def flush(self, *, last: bool = False) -> None:
        """Submit the block gathered so far. The last block is what everything else waits
        for: it is split into one block per worker, written at once."""
        parts = _split(self._block, self._workers if last else 1)
        for part in parts:
            while len(self._pending) >= self._in_flight:
                self._pending.popleft().result()
            path = self._staging / f"{self._blocks}.parquet"
            self._blocks += 1
            self._pending.append(self._pool.submit(_write_block, part, path))
        self._block, self._rows = [], 0

    def wait(self) -> None:
        """Wait for every submitted block, then remove the verdict files."""
        while self._pending:
            self._pending.popleft().result()
        shutil.rmtree(self._staging)

    def cancel(self) -> None:
        for future in self._pending:
            future.cancel()


def _split(block: list[_Append], parts: int) -> list[list[_Append]]:
    """`block`'s partitions in order, as at most `parts` runs of about equal rows."""
    total = sum(a.verdicts.num_rows for a in block)
    runs: list[list[_Append]] = []
    rows = 0
    for append in block:
        # A new run starts where the rows so far pass the next share of the total.
        if not runs or rows >= total * len(runs) / parts:
            runs.append([])
        runs[-1].append(append)
        rows += append.verdicts.num_rows
    return runs


def _write_block(block: list[_Append], path: Path) -> None:
    """Write the block's verdicts into `path`, then each partition's events_classified file."""
    chosen: list[range] = []
    with _verdict_writer(path, block[0].verdicts.schema) as writer:
        written = 0
        for append in block:
            start = 0
            for rows in (rows for file_groups in append.groups for rows in file_groups):
                writer.write_table(append.verdicts.slice(start, rows), row_group_size=max(rows, 1))
                start += rows
            groups = sum(len(file_groups) for file_groups in append.groups)
            chosen.append(range(written, written + groups))
            written += groups
    verdicts = scan_footer(path)
    for append, verdict_groups in zip(block, chosen, strict=True):
        _append_verdicts(append, verdicts, verdict_groups)
    path.unlink()


def _append_verdicts(append: _Append, verdicts: ScannedFooter, verdict_groups: range) -> None:
    """At append.dest, the events files' row groups one after the other with their verdict
    columns beside them. Files whose schemas differ (written by different versions) cannot
    share a file: each gets its own, beside it."""
    append.dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        append_columns(append.bases, verdicts, append.dest, verdict_groups)
    except WarehouseError:
        if len(append.bases) == 1:
            raise
        first = verdict_groups.start
        for base, file_groups in zip(append.bases, append.groups, strict=True):
            path = base.path if isinstance(base, ScannedFooter) else base
            chosen = range(first, first + len(file_groups))
            append_columns(base, verdicts, append.dest.parent / path.name, chosen)
            first = chosen.stop


# Verdict columns with few distinct values: dictionary-encoded. The others (human_id,
# session_root, evidence_detail) are near-unique per session, where a dictionary only costs.
_DICTIONARY_VERDICTS = [
    "actor_kind",
    "access_path",
    "client",
    "agent_name",
    "mcp_tool",
    "role_account_id_fallback",
    "role_name_fallback",
    "classified_by",
    "confidence",
    "rules_version",
]
# Statistics only where queries filter: they let a reader skip row groups of other verdicts.
_STATISTICS_VERDICTS = ["actor_kind", "access_path", "classified_by"]


def _verdict_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=_DICTIONARY_VERDICTS,
        write_statistics=_STATISTICS_VERDICTS,
    )
