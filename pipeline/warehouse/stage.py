"""Staged files: a parse worker's rows, split by partition, written where a commit finds them.

Staged files already have the final format (zstd Parquet, sorted by event_time, partition
columns in the path only), so a commit without duplicates is a rename and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.parse.schema import FILE_SCHEMA
from pipeline.warehouse.files import write_parquet_atomic


@dataclass(frozen=True)
class StagedFile:
    path: str  # absolute path under _staging
    relative: str  # recipient_account_id=A/event_date=D/part-NAME.parquet, its place in events/
    rows: int


def stage_table(
    table: pa.Table, staging_dir: Path, name: str, *, row_group_rows: int
) -> list[StagedFile]:
    """Write one file per (recipient_account_id, event_date) of `table` into staging_dir."""
    if table.num_rows == 0:
        return []
    keys = table.group_by(["recipient_account_id", "event_date"]).aggregate([])
    staged = []
    for account, day in zip(
        keys["recipient_account_id"].to_pylist(), keys["event_date"].to_pylist(), strict=True
    ):
        mask = pc.and_(
            pc.equal(table["recipient_account_id"], account),
            pc.equal(table["event_date"], pa.scalar(day, pa.date32())),
        )
        part = table.filter(mask).sort_by("event_time").select(FILE_SCHEMA.names)
        relative = (
            f"recipient_account_id={account}/event_date={day.isoformat()}/part-{name}.parquet"
        )
        path = staging_dir / relative
        write_parquet_atomic(part, path, row_group_rows=row_group_rows)
        staged.append(StagedFile(str(path), relative, part.num_rows))
    return staged
