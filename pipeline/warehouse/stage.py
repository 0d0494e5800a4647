"""Staged files: a parse worker's rows, split by partition, written where a commit finds them.

Staged files already have the final format (zstd Parquet, sorted by event_time, partition
columns in the path only), so a commit without duplicates is a rename and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


def stage_table(
    table: pa.Table, staging_dir: Path, name: str, *, row_group_rows: int
) -> list[StagedFile]:
    """Write one file per (recipient_account_id, event_date) of `table` into staging_dir."""
    if table.num_rows == 0:
        return []
    # One stable sort by (partition, event_time), then zero-copy slices: each partition's rows
    # keep their order of arrival among equal times, as a filter followed by a stable sort by
    # event_time gave, for one pass over the table instead of one per partition.
    keys = table.select([key for key, _ in _PARTITION_ORDER[:2]])
    order = pc.sort_indices(table, sort_keys=_PARTITION_ORDER)
    ordered = table.select(FILE_SCHEMA.names).take(order)
    sorted_keys = keys.take(order)
    runs = pc.run_end_encode(
        pa.StructArray.from_arrays(
            [column.combine_chunks() for column in sorted_keys.columns],
            names=sorted_keys.column_names,
        )
    )
    staged = []
    start = 0
    for end, key in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        part = ordered.slice(start, end - start)
        start = end
        account, day = key["recipient_account_id"], key["event_date"]
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
