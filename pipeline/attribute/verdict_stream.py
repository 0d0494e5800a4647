"""The per-event pass's verdicts, put back into events files and partitions.

DuckDB returns the verdicts in no particular order (its joins reorder rows: each thread's
batches interleave, and small chunks are held back until the end), each with its event's file
index and row number. FileVerdicts hands over each file's verdicts in row order as soon as all
of them have arrived, and by_complete_partition each partition folder's files once all of them
are complete: no global order is ever needed, and files and partitions are written as soon as
they can be.

Where DuckDB's joins spill (their hash tables past the pass's memory limit), the rows whose
partitions went to disk come back last, and every file stays incomplete until then: the
verdicts held in memory are then written to Arrow IPC files on disk (SpilledRun) and read back,
memory-mapped, as each file completes, so memory stays bounded whatever order DuckDB returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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


def owners(partitions: list[list[Path]]) -> list[int]:
    """For each pinned file, in order, the index of its partition (a run of by_partition)."""
    return [number for number, paths in enumerate(partitions) for _ in paths]


def by_complete_partition(
    stream: FileVerdicts,
    partitions: list[list[Path]],
    write: Callable[[int, list[pa.Table]], None],
) -> None:
    """Call `write(partition, its files' verdicts in order)` for each partition as soon as the
    verdicts of all its files have arrived; every partition's must."""
    owner = owners(partitions)
    firsts = [0]
    for paths in partitions:
        firsts.append(firsts[-1] + len(paths))
    done: dict[int, pa.Table] = {}
    emitted: set[int] = set()
    for file_index, verdicts in stream.files():
        partition = owner[file_index]
        done[file_index] = verdicts
        members = range(firsts[partition], firsts[partition + 1])
        if all(i in done for i in members):
            write(partition, [done.pop(i) for i in members])
            emitted.add(partition)
    if len(emitted) != len(partitions):
        raise WarehouseError(
            "classification returned no verdicts for some events",
            hint="a classification join dropped an event; this is a bug",
        )


@dataclass
class SpilledRun:
    """Verdicts of incomplete files written to one Arrow IPC file: for each file, the indexes of
    its record batches there. The file goes once every file in it has been read back."""

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
                for piece in file_pieces:
                    writer.write_batch(piece)
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


class FileVerdicts:
    """The verdict stream, in whatever order DuckDB returns it, as whole events files: each
    file's verdicts in row order once all of them have arrived. Each file's rows are checked
    to be exactly its row numbers 0..n-1: a verdict lost or doubled by a join is an error,
    never a misaligned column.

    At most `held_limit` verdicts of incomplete files are held in memory; past it, all of them
    go to a new IPC file in `spill_dir` (a run), and come back as their files complete. Use it
    as a context manager: leaving it removes what is still on disk."""

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        expected: dict[int, int],
        *,
        held_limit: int | None,
        spill_dir: Path | None = None,
    ) -> None:
        """`expected`: the rows of each file the stream must deliver, by file index;
        `held_limit`: the verdicts of incomplete files it may hold in memory (None: no bound);
        `spill_dir`: where runs go past it (needed with a bound)."""
        if held_limit is not None and spill_dir is None:
            raise ValueError("a held_limit needs a spill_dir")
        self._reader = reader
        self._expected = expected
        self._received = dict.fromkeys(expected, 0)
        self._pieces: dict[int, list[pa.RecordBatch]] = {}
        self._held = 0
        self._held_limit = held_limit
        self._spill_dir = spill_dir
        self._runs: list[SpilledRun] = []
        self.spilled_rows = 0  # verdicts written to runs, for the summary and tests

    def __enter__(self) -> FileVerdicts:
        return self

    def __exit__(self, *_: object) -> None:
        for run in self._runs:
            run.close()
        self._runs.clear()

    def files(self) -> Iterator[tuple[int, pa.Table]]:
        for file_index, rows in self._expected.items():
            if not rows:  # nothing will arrive for it
                yield file_index, self._reader.schema.empty_table()
        for batch in self._reader:
            for file_index, piece in _split_by_file(batch):
                received = self._received.get(file_index)
                if received is None:
                    raise WarehouseError(
                        f"classification returned verdicts for events file {file_index},"
                        " which it was not asked for",
                        hint="this is a bug",
                    )
                self._received[file_index] = received + piece.num_rows
                self._held += piece.num_rows
                if self._received[file_index] > self._expected[file_index]:
                    raise WarehouseError(
                        "classification returned more verdicts than events",
                        hint="a classification join matched an event more than once; this is a bug",
                    )
                self._pieces.setdefault(file_index, []).append(piece)
                if self._received[file_index] == self._expected[file_index]:
                    yield file_index, self._finish(file_index)
            if self._held_limit is not None and self._held > self._held_limit:
                self._spill()

    def _spill(self) -> None:
        """Every held verdict to a new run on disk."""
        assert self._spill_dir is not None
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        path = self._spill_dir / f"verdicts-{os.getpid()}-{id(self)}-{len(self._runs)}.arrow"
        self._runs.append(SpilledRun.write(path, self._reader.schema, self._pieces))
        self.spilled_rows += self._held
        self._pieces = {}
        self._held = 0

    def _finish(self, file_index: int) -> pa.Table:
        in_memory = self._pieces.pop(file_index)
        self._held -= sum(p.num_rows for p in in_memory)
        spilled = [b for run in self._runs for b in run.take(file_index)]
        self._runs = [run for run in self._runs if run.batches]
        table = pa.Table.from_batches([*spilled, *in_memory], schema=self._reader.schema)
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
