"""Commit a staged batch into events/: drop duplicate eventIDs, then rename files into place.

Crash safety: rows in events/ are never rewritten, and a staged file reaches events/ by one
rename. The manifest is written after the renames, so a kill between the two makes the next run
read those objects again; their eventIDs are then already present and dropped as duplicates.
Either way the event set is the same.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.sqlfile import load_internal
from pipeline.warehouse.files import EVENTS_PARQUET, move_into_place, write_parquet
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.stage import StagedFile


@dataclass
class CommitResult:
    written: int = 0
    duplicates_in_batch: int = 0
    duplicates_in_warehouse: int = 0
    dropped_by_uri: Counter[str] = field(default_factory=Counter)


def _existing_ids(con: duckdb.DuckDBPyConnection, layout: Layout) -> None:
    # Both branches create the view the same way (a relation view): a TEMP view of the same name
    # would shadow the relation view of every later commit of the run, which then saw no
    # existing eventIDs at all.
    if any(layout.events.glob(EVENTS_GLOB)):
        rel = con.read_parquet(str(layout.events / EVENTS_GLOB), hive_partitioning=False)
        rel = rel.select("event_id")
    else:
        rel = con.sql("SELECT NULL::VARCHAR AS event_id WHERE false")
    rel.create_view("existing_event_ids", replace=True)


def commit_batch(
    staged: list[StagedFile], layout: Layout, con: duckdb.DuckDBPyConnection, row_group_rows: int
) -> CommitResult:
    result = CommitResult()
    if not staged:
        return result
    _existing_ids(con, layout)
    query = load_internal("warehouse/staged_duplicates")
    drops = con.execute(query.sql, {"files": [s.path for s in staged]}).fetchall()
    by_file: dict[str, list[int]] = {}
    for filename, row_number, source_uri, kept_copy in drops:
        by_file.setdefault(filename, []).append(row_number)
        result.dropped_by_uri[source_uri] += 1
        if kept_copy == "batch":
            result.duplicates_in_batch += 1
        else:
            result.duplicates_in_warehouse += 1
    for staged_file in staged:
        rows = staged_file.rows
        if staged_file.path in by_file:
            rows -= _drop_rows(Path(staged_file.path), by_file[staged_file.path], row_group_rows)
        if rows:
            move_into_place(Path(staged_file.path), layout.events / staged_file.relative)
        else:
            os.unlink(staged_file.path)
        result.written += rows
    return result


def _drop_rows(path: Path, row_numbers: list[int], row_group_rows: int) -> int:
    """Rewrite a staged file without the given rows; returns how many were dropped."""
    table = pq.read_table(path)
    keep = pc.invert(pc.is_in(pa.array(range(table.num_rows)), pa.array(row_numbers)))
    kept = table.filter(keep)
    if kept.num_rows:
        tmp = path.with_name(f".{path.name}.tmp")
        write_parquet(kept, tmp, row_group_rows=row_group_rows, options=EVENTS_PARQUET)
        os.replace(tmp, path)
    dropped: int = table.num_rows - kept.num_rows
    return dropped
