"""Staged files: a parse worker's rows, split by partition, written where a commit finds them.

Staged files already have the final format (zstd Parquet, partition columns in the path
only), so a commit without duplicates is a rename and nothing more.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

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
    """The batch as (partition, rows) pieces, in partition order; each piece's rows in the
    batch's order."""
    accounts = batch.column("recipient_account_id")
    dates = batch.column("event_date")
    account_bounds, date_bounds = pc.min_max(accounts), pc.min_max(dates)
    if account_bounds["min"] == account_bounds["max"] and date_bounds["min"] == date_bounds["max"]:
        # The common case: one object's rows, of one account and (over a few minutes) one day:
        # one piece, the batch itself, no copy.
        return [((account_bounds["min"].as_py(), date_bounds["min"].as_py()), batch)]
    # An object across midnight, or rows of several accounts: a stable sort by partition keeps
    # each partition's rows in the batch's order.
    keys = [("recipient_account_id", "ascending"), ("event_date", "ascending")]
    ordered = batch.take(pc.sort_indices(batch, sort_keys=keys))
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
    the table's chunks: no copy in the usual case)."""
    by_partition: dict[Partition, list[pa.RecordBatch]] = {}
    columns = [*FILE_SCHEMA.names, "recipient_account_id", "event_date"]
    # The parser's tables have these columns in this order already (STAGED_SCHEMA).
    selected = table if table.column_names == columns else table.select(columns)
    for batch in selected.to_batches():
        if batch.num_rows:
            for key, piece in _partition_runs(batch):
                by_partition.setdefault(key, []).append(piece)
    return by_partition


def _in_time_order(pieces: list[pa.RecordBatch]) -> bool:
    """Whether the pieces, one after the other, are in event_time order: each in order, and
    each starting no earlier than the previous one ends."""
    return all(_time_sorted(p.column("event_time")) for p in pieces) and all(
        pc.greater_equal(b.column("event_time")[0], a.column("event_time")[-1]).as_py()
        for a, b in itertools.pairwise(pieces)
    )


def _time_sorted(times: pa.Array) -> bool:
    """Whether event_time never decreases from one row to the next."""
    if len(times) < 2:
        return True
    return bool(pc.all(pc.greater_equal(times[1:], times[:-1])).as_py())


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
    # A file's rows are its partition's pieces in order of arrival (objects in the order they
    # were parsed, each one's records in their order); a file of more than one row group is
    # sorted by event_time (stably: equal times keep their order of arrival), so that each row
    # group's event_time statistics cover a short span and time filters skip the others. A file
    # of one row group is read whole by any filter that reads it at all, so its order would buy
    # nothing: sorting it copied every column, ~0.65 us per event, ~5% of a parse process's time
    # on the bench's trail, whose objects of a day's three regions overlap in time (and the
    # parser's sort of each object, ~0.2 us more). Pieces already in time order need no copy.
    staged = []
    for (account, day), pieces in sorted(by_partition.items()):
        part = pa.Table.from_batches(pieces).select(FILE_SCHEMA.names)
        if part.num_rows > row_group_rows and not _in_time_order(pieces):
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
