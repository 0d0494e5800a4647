"""Staged files: a parse worker's rows, split by partition, written where a commit finds them.

Staged files already have the final format (zstd Parquet, sorted by event_time, partition
columns in the path only), so a commit without duplicates is a rename and nothing more.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.parse.fastpath import is_time_sorted
from pipeline.parse.schema import FILE_SCHEMA
from pipeline.warehouse.files import EVENTS_PARQUET, write_parquet_atomic

_PARTITION_ORDER = [
    ("recipient_account_id", "ascending"),
    ("event_date", "ascending"),
    ("event_time", "ascending"),
]


@dataclass(frozen=True)
class StagedFile:
    path: str  # absolute path under _staging
    relative: str  # recipient_account_id=A/event_date=D/part-NAME.parquet, its place in events/
    rows: int
    # The file's eventIDs, in file order, carried back with it so that the commit can compare
    # them with the warehouse's without reading the file (about 40 bytes per row).
    event_ids: pa.Array | None = field(default=None, compare=False, repr=False)


def _partition_runs(batch: pa.RecordBatch) -> list[tuple[tuple[str, date], pa.RecordBatch]]:
    """The batch as (partition, rows sorted by event_time) pieces, in partition order."""
    accounts = batch.column("recipient_account_id")
    bounds = pc.min_max(accounts)
    if bounds["min"] == bounds["max"] and is_time_sorted(batch.column("event_time")):
        # The common case: one object's rows (one account, sorted by the parser), whose dates
        # are then in runs already: no copy at all.
        ordered = batch
    else:
        ordered = batch.take(pc.sort_indices(batch, sort_keys=_PARTITION_ORDER))
    runs = pc.run_end_encode(
        pa.StructArray.from_arrays(
            [ordered.column("recipient_account_id"), ordered.column("event_date")],
            names=["recipient_account_id", "event_date"],
        )
    )
    pieces = []
    start = 0
    for end, key in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        pieces.append(
            ((key["recipient_account_id"], key["event_date"]), ordered.slice(start, end - start))
        )
        start = end
    return pieces


Partition = tuple[str, date]  # (recipient_account_id, event_date)


def partition_pieces(table: pa.Table) -> dict[Partition, list[pa.RecordBatch]]:
    """The table's rows by partition, each partition's as pieces in order of arrival (slices of
    the table's chunks, each chunk sorted by event_time: no copy in the usual case)."""
    by_partition: dict[Partition, list[pa.RecordBatch]] = {}
    for batch in table.select(
        [*FILE_SCHEMA.names, "recipient_account_id", "event_date"]
    ).to_batches():
        if batch.num_rows:
            for key, piece in _partition_runs(batch):
                by_partition.setdefault(key, []).append(piece)
    return by_partition


def stage_table(
    table: pa.Table, staging_dir: Path, name: str, *, row_group_rows: int
) -> list[StagedFile]:
    """Write one file per (recipient_account_id, event_date) of `table` into staging_dir."""
    if table.num_rows == 0:
        return []
    return stage_pieces(partition_pieces(table), staging_dir, name, row_group_rows=row_group_rows)


def stage_pieces(
    by_partition: dict[Partition, list[pa.RecordBatch]],
    staging_dir: Path,
    name: str,
    *,
    row_group_rows: int,
) -> list[StagedFile]:
    """Write one file per partition of `by_partition` (partition_pieces) into staging_dir."""
    # Each file's rows are those of its partition in a stable sort by event_time: rows with
    # equal times keep their order of arrival. The pieces come from the parser's tables, one
    # per object, each already sorted by event_time (fastpath); a partition's pieces then only
    # need concatenating when each starts no earlier than the previous one ends — the usual
    # case, since an object spans a few minutes and objects arrive in uri (hence time) order.
    # Otherwise the partition is sorted whole, which gives the same rows in the same order.
    staged = []
    for (account, day), pieces in sorted(by_partition.items()):
        part = pa.Table.from_batches(pieces).select(FILE_SCHEMA.names)
        in_order = all(
            pc.greater_equal(b.column("event_time")[0], a.column("event_time")[-1]).as_py()
            for a, b in itertools.pairwise(pieces)
        )
        if not in_order:
            part = part.take(pc.sort_indices(part, sort_keys=[("event_time", "ascending")]))
        relative = (
            f"recipient_account_id={account}/event_date={day.isoformat()}/part-{name}.parquet"
        )
        path = staging_dir / relative
        # No fsync here: the commit makes staged files durable before they enter events/
        # (commit.py), from the main process, where waiting on the disk stalls no parsing.
        write_parquet_atomic(
            part, path, row_group_rows=row_group_rows, options=EVENTS_PARQUET, fsync=False
        )
        staged.append(
            StagedFile(str(path), relative, part.num_rows, part["event_id"].combine_chunks())
        )
    return staged
