"""The per-event pass's verdicts, put back into events files and partitions.

DuckDB returns the verdicts in no particular order (its joins reorder rows: each thread's
batches interleave, and small chunks are held back until the end), each with its event's file
index and row number. PartitionVerdicts hands over each partition folder's files, each file's
verdicts in row order, as soon as all of them have arrived: no global order is ever needed, and
partitions are written as soon as they can be.

Where DuckDB's joins spill (their hash tables past the pass's memory limit), the rows whose
hash partitions went to disk come back last, and no events partition is complete until then:
past a bound, the verdicts held in memory (of files still incomplete, and of complete files
waiting for the rest of their partition) are written to Arrow IPC files on disk (SpilledRun)
and read back as their partition completes, so memory stays bounded whatever order DuckDB
returns.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import WarehouseError


def by_partition(files: list[Path]) -> list[list[Path]]:
    """The pinned files in their order, as runs of files in one partition folder: one
    events_classified file each, so queries open one file per partition, not one per commit."""
    runs: list[list[Path]] = []
    for path in files:
        if runs and runs[-1][0].parent == path.parent:
            runs[-1].append(path)
        else:
            runs.append([path])
    return runs


@dataclass
class SpilledRun:
    """Verdicts of incomplete partitions written to one Arrow IPC file: for each events file,
    the indexes of its record batches there. The file goes once every events file in it has been
    read back."""

    path: Path
    batches: dict[int, list[int]]
    _source: pa.OSFile | None = field(default=None, repr=False)
    _reader: pa.ipc.RecordBatchFileReader | None = field(default=None, repr=False)

    @classmethod
    def write(
        cls, path: Path, schema: pa.Schema, pieces: dict[int, list[pa.RecordBatch]]
    ) -> SpilledRun:
        batches: dict[int, list[int]] = {}
        written = 0
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for file_index, file_pieces in pieces.items():
                # One batch per file (its pieces are slices of many of DuckDB's batches): reading
                # back a piece at a time cost more than the verdicts' own writing.
                for batch in (
                    pa.Table.from_batches(file_pieces, schema).combine_chunks().to_batches()
                ):
                    writer.write_batch(batch)
                    batches.setdefault(file_index, []).append(written)
                    written += 1
        return cls(path, batches)

    def take(self, file_index: int) -> list[pa.RecordBatch]:
        """The file's verdicts in this run (none if it had none here), read into memory (not
        mapped: the run's file is closed and removed once nothing in it is left to read)."""
        indexes = self.batches.pop(file_index, [])
        if not indexes:
            return []
        if self._reader is None:
            self._source = pa.OSFile(str(self.path), "rb")
            self._reader = pa.ipc.open_file(self._source)
        found = [self._reader.get_batch(i) for i in indexes]
        if not self.batches:
            self.close()
        return found

    def close(self) -> None:
        self._reader = None
        if self._source is not None:
            self._source.close()
            self._source = None
        self.path.unlink(missing_ok=True)


class PartitionVerdicts:
    """The verdict stream, in whatever order DuckDB returns it, as whole partitions: each of its
    files' verdicts in row order once all of them have arrived. Each file's rows are checked to
    be exactly its row numbers 0..n-1, all of them its own: a verdict lost, doubled or misplaced
    by a join is an error, never a misaligned column.

    At most `held_limit` verdicts of incomplete partitions are held in memory; past it, all of
    them go to a new IPC file in `spill_dir` (a run), and come back as their partition
    completes. Use it as a context manager: leaving it removes what is still on disk."""

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        partitions: list[list[int]],
        expected: dict[int, int],
        *,
        held_limit: int | None,
        spill_dir: Path | None = None,
    ) -> None:
        """`partitions`: the file indexes of each partition, in order; `expected`: the rows of
        each file the stream must deliver; `held_limit`: the verdicts of incomplete partitions
        it may hold in memory (None: no bound); `spill_dir`: where runs go past it (needed with
        a bound)."""
        if held_limit is not None and spill_dir is None:
            raise ValueError("a held_limit needs a spill_dir")
        self._reader = reader
        self._partitions = partitions
        self._expected = expected
        self._owner = {f: number for number, files in enumerate(partitions) for f in files}
        if set(self._owner) != set(expected):
            raise ValueError("every file needs a partition and an expected row count")
        self._received = dict.fromkeys(expected, 0)
        self._incomplete = [sum(1 for f in files if expected[f]) for files in partitions]
        self._pieces: dict[int, list[pa.RecordBatch]] = {}
        self._held = 0
        self._held_limit = held_limit
        self._spill_dir = spill_dir
        self._runs: list[SpilledRun] = []
        self._runs_written = 0  # names runs: one still on disk is never overwritten
        self.spilled_rows = 0  # verdicts written to runs, for the summary and tests

    def __enter__(self) -> PartitionVerdicts:
        return self

    def __exit__(self, *_: object) -> None:
        for run in self._runs:
            run.close()
        self._runs.clear()

    def partitions(self) -> Iterator[tuple[int, list[pa.Table]]]:
        """(partition, its files' verdicts in file order) as each partition completes; every
        partition comes out, or an error says which verdicts are wrong or missing."""
        emitted = 0
        for number, left in enumerate(self._incomplete):
            if not left:  # no events: nothing will arrive for it
                emitted += 1
                yield number, [self._finish(f) for f in self._partitions[number]]
        for batch in self._reader:
            for file_index, piece in _split_by_file(batch):
                received = self._received.get(file_index)
                if received is None:
                    raise WarehouseError(
                        f"classification returned verdicts for events file {file_index},"
                        " which it was not asked for",
                        hint="this is a bug",
                    )
                received += piece.num_rows
                self._received[file_index] = received
                if received > self._expected[file_index]:
                    raise WarehouseError(
                        "classification returned more verdicts than events",
                        hint="a classification join matched an event more than once; this is a bug",
                    )
                self._held += piece.num_rows
                self._pieces.setdefault(file_index, []).append(piece)
                if received < self._expected[file_index]:
                    continue
                number = self._owner[file_index]
                self._incomplete[number] -= 1
                if not self._incomplete[number]:
                    emitted += 1
                    yield number, [self._finish(f) for f in self._partitions[number]]
            if self._held_limit is not None and self._held > self._held_limit:
                self._spill()
        if emitted != len(self._partitions):
            raise WarehouseError(
                "classification returned no verdicts for some events",
                hint="a classification join dropped an event; this is a bug",
            )

    def _spill(self) -> None:
        """Every held verdict to a new run on disk."""
        assert self._spill_dir is not None
        path = self._spill_dir / f"verdicts-{os.getpid()}-{id(self)}-{self._runs_written}.arrow"
        self._runs_written += 1
        try:
            self._spill_dir.mkdir(parents=True, exist_ok=True)
            run = SpilledRun.write(path, self._reader.schema, self._pieces)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            raise WarehouseError(
                f"could not write verdicts to {self._spill_dir}: {exc.strerror or exc}",
                hint="free disk space there, or raise [attribution] verdicts_duckdb_memory_limit"
                " so that fewer verdicts wait",
                path=str(path),
            ) from None
        self._runs.append(run)
        self.spilled_rows += self._held
        self._pieces = {}
        self._held = 0

    def _finish(self, file_index: int) -> pa.Table:
        """A complete file's verdicts, from memory and the runs, in row order."""
        in_memory = self._pieces.pop(file_index, [])
        self._held -= sum(p.num_rows for p in in_memory)
        spilled = [b for run in self._runs for b in run.take(file_index)]
        self._runs = [run for run in self._runs if run.batches]
        table = pa.Table.from_batches([*spilled, *in_memory], schema=self._reader.schema)
        # A run written under a reused name once handed a file another file's rows.
        bounds = pc.min_max(table.column("file_index")).values() if table.num_rows else []
        if any(bound.as_py() != file_index for bound in bounds):
            raise WarehouseError(
                f"verdicts of another events file came back as events file {file_index}'s",
                hint="this is a bug",
            )
        rows = table.column("file_row_number")
        if not _exactly_in_order(rows):
            table = table.take(pc.sort_indices(rows))
            if not _exactly_in_order(table.column("file_row_number")):
                raise WarehouseError(
                    f"classification returned verdicts for rows that events file {file_index}"
                    " does not have",
                    hint="a classification join matched an event more than once; this is a bug",
                )
        return table


def _exactly_in_order(rows: pa.ChunkedArray) -> bool:
    """Whether `rows` is 0, 1, ..., n-1."""
    n = len(rows)
    if n == 0:
        return True
    values = rows.combine_chunks()
    if values.null_count or values[0].as_py() != 0 or values[n - 1].as_py() != n - 1:
        return False
    if n == 1:
        return True
    steps = pc.subtract(values.slice(1), values.slice(0, n - 1))
    return bool(pc.all(pc.equal(steps, 1)).as_py())


def _split_by_file(batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The batch's rows by events file, as (file index, rows of that file, in batch order)."""
    if not batch.num_rows:
        return
    index = batch.column("file_index")
    n = batch.num_rows
    if n > 1 and not pc.all(pc.less_equal(index.slice(0, n - 1), index.slice(1))).as_py():
        batch = batch.take(pc.sort_indices(index))  # stable: rows of a file keep their order
        index = batch.column("file_index")
    if n > 1:
        changes = pc.indices_nonzero(pc.not_equal(index.slice(0, n - 1), index.slice(1)))
        ends = [int(i) + 1 for i in changes.to_pylist()] + [n]
    else:
        ends = [n]
    start = 0
    for end in ends:
        yield int(index[start].as_py()), batch.slice(start, end - start)
        start = end
