"""Atomic Parquet writes: a file appears whole under its final name, or not at all."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.parse.schema import FILE_SCHEMA

# zstd level 3: within a few percent of the best ratio on CloudTrail JSON text, still fast.
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class ParquetOptions:
    """How a Parquet file is encoded (pyarrow's defaults unless said otherwise)."""

    compression_level: int = ZSTD_LEVEL
    # Columns to dictionary-encode; None means all of them.
    dictionary: tuple[str, ...] | None = None
    # Columns with min/max statistics; None means all of them.
    statistics: tuple[str, ...] | None = None


# Event files are written once per event by the parse workers (the ingest's hot path), where
# encoding them is about a third of the CPU; measured on the bench's trail, 1,850-row files:
# - zstd level 1: ~2% more bytes than level 3, less CPU;
# - no dictionary for columns whose values are unique per event (a dictionary would be built,
#   found too large and dropped on every page); the JSON text columns keep theirs, which pays
#   off on repeated requests and responses;
# - min/max statistics only for event_time, the one column a reader can prune with (a file of
#   several row groups is sorted by it, stage.py); other columns' ranges span the whole file
#   and only cost CPU.
# Together ~15% less CPU to write than pyarrow's defaults, and files ~7% smaller.
_UNIQUE_PER_EVENT = frozenset(
    {
        "event_id",
        "event_time",
        "request_id",
        "shared_event_id",
        "source_record_index",
        "session_creation_date",
    }
)
EVENTS_PARQUET = ParquetOptions(
    compression_level=1,
    dictionary=tuple(n for n in FILE_SCHEMA.names if n not in _UNIQUE_PER_EVENT),
    statistics=("event_time",),
)


# The buffer a Parquet file is written through: the writer's many small writes (each page's
# header and data, each column's dictionary) were each a write() and an lseek(), ~5% of the
# cost of a staged file.
WRITE_BUFFER_BYTES = 1 << 20


def write_parquet(
    table: pa.Table, where: Path, *, row_group_rows: int, options: ParquetOptions
) -> None:
    """Write `table` to `where` as zstd Parquet (not atomic: see write_parquet_atomic)."""
    with pa.output_stream(str(where), buffer_size=WRITE_BUFFER_BYTES) as sink:
        pq.write_table(
            table,
            sink,
            compression="zstd",
            compression_level=options.compression_level,
            use_dictionary=True if options.dictionary is None else list(options.dictionary),
            write_statistics=True if options.statistics is None else list(options.statistics),
            row_group_size=row_group_rows,
        )


def write_parquet_atomic(
    table: pa.Table,
    path: Path,
    *,
    row_group_rows: int = 122_880,
    fsync: bool = True,
    options: ParquetOptions = ParquetOptions(),
) -> None:
    """Write under a temporary name in the same folder, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write_parquet(table, tmp, row_group_rows=row_group_rows, options=options)
    if fsync:
        _fsync(tmp)
    os.replace(tmp, path)


# Concurrent fsyncs of a commit: each mostly waits on the disk (a few ms on a busy one), and
# the filesystem's journal takes several at once; 16 covers a commit's ~150 files in a few
# rounds without a thread per file.
FSYNC_THREADS = 16


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_files(paths: Sequence[Path]) -> None:
    """Make finished files durable, several at a time."""
    if len(paths) <= 1:
        for path in paths:
            _fsync(path)
        return
    with ThreadPoolExecutor(min(FSYNC_THREADS, len(paths))) as pool:
        list(pool.map(_fsync, paths))


def move_into_place(src: Path, dst: Path) -> None:
    """Rename a finished file into the live tree (same filesystem, so atomic)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
