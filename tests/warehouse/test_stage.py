"""Staging: one file per (recipient_account_id, event_date). A file of several row groups has
its rows in a stable sort by event_time, whatever order the parser's tables arrive in and
however they overlap in time; a file of one row group keeps the order of arrival."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.parse.schema import STAGED_SCHEMA
from pipeline.warehouse.stage import stage_table


def _object(rows: list[tuple[str, str, int]]) -> pa.Table:
    """A parser table: (event_id, recipient_account_id, minute of 2026-07-01 or later)."""
    times = [datetime(2026, 7, 1, tzinfo=UTC).timestamp() + 60 * m for _, _, m in rows]
    columns = {
        "event_id": pa.array([e for e, _, _ in rows], pa.string()),
        "event_time": pa.array(
            [int(t * 1_000_000) for t in times], STAGED_SCHEMA.field("event_time").type
        ),
        "recipient_account_id": pa.array([a for _, a, _ in rows], pa.string()),
    }
    columns["event_date"] = columns["event_time"].cast(pa.date32())
    return pa.table(
        [columns.get(f.name, pa.nulls(len(rows), f.type)) for f in STAGED_SCHEMA],
        schema=STAGED_SCHEMA,
    )


def _files(
    tables: list[pa.Table], tmp_path: Path, row_group_rows: int = 2
) -> list[tuple[str, list[str]]]:
    staged = stage_table(pa.concat_tables(tables), tmp_path, "t", row_group_rows=row_group_rows)
    out = []
    for s in staged:
        ids = pq.read_table(s.path)["event_id"].to_pylist()
        assert s.event_ids is not None
        assert (s.rows, s.event_ids.to_pylist()) == (len(ids), ids)
        out.append((s.relative, ids))
    return out


def test_objects_in_time_order_are_concatenated(tmp_path: Path) -> None:
    first = _object([("a1", "1", 1), ("a2", "1", 2), ("a3", "1", 3)])
    second = _object([("b3", "1", 3), ("b4", "1", 4)])
    assert _files([first, second], tmp_path) == [
        (
            "recipient_account_id=1/event_date=2026-07-01/part-t.parquet",
            ["a1", "a2", "a3", "b3", "b4"],
        )
    ]


def test_overlapping_objects_are_sorted_stably(tmp_path: Path) -> None:
    # Equal times keep the order of arrival: a3 (first object) before b3.
    first = _object([("a1", "1", 1), ("a3", "1", 3), ("a5", "1", 5)])
    second = _object([("b2", "1", 2), ("b3", "1", 3)])
    assert _files([first, second], tmp_path) == [
        (
            "recipient_account_id=1/event_date=2026-07-01/part-t.parquet",
            ["a1", "b2", "a3", "b3", "a5"],
        )
    ]


def test_a_file_of_one_row_group_keeps_the_order_of_arrival(tmp_path: Path) -> None:
    # Its event_time statistics cover it whole whatever its order: no copy to sort it.
    first = _object([("a1", "1", 1), ("a3", "1", 3), ("a5", "1", 5)])
    second = _object([("b2", "1", 2), ("b3", "1", 3)])
    assert _files([first, second], tmp_path, row_group_rows=5) == [
        (
            "recipient_account_id=1/event_date=2026-07-01/part-t.parquet",
            ["a1", "a3", "a5", "b2", "b3"],
        )
    ]
    row_groups = pq.ParquetFile(
        tmp_path / "recipient_account_id=1/event_date=2026-07-01/part-t.parquet"
    ).metadata.num_row_groups
    assert row_groups == 1


def test_unsorted_rows_of_several_partitions(tmp_path: Path) -> None:
    # As the record-by-record path could hand them over before sorting: accounts mixed, the
    # day boundary crossed, times out of order, two rows with one time (kept in arrival order).
    mixed = _object(
        [
            ("x-late", "2", 60 * 24 + 5),
            ("y", "1", 7),
            ("x", "2", 2),
            ("z-first", "1", 7),
            ("w", "1", 60 * 24),
            ("v", "1", 1),
        ]
    )
    assert _files([mixed], tmp_path) == [
        ("recipient_account_id=1/event_date=2026-07-01/part-t.parquet", ["v", "y", "z-first"]),
        ("recipient_account_id=1/event_date=2026-07-02/part-t.parquet", ["w"]),
        ("recipient_account_id=2/event_date=2026-07-01/part-t.parquet", ["x"]),
        ("recipient_account_id=2/event_date=2026-07-02/part-t.parquet", ["x-late"]),
    ]


def test_an_object_across_midnight_is_split_by_day(tmp_path: Path) -> None:
    # One account, in time order (the parser's usual table), over two days.
    crossing = _object([("a", "1", 60 * 24 - 2), ("b", "1", 60 * 24 - 1), ("c", "1", 60 * 24 + 1)])
    same_day = _object([("d", "1", 5), ("e", "1", 6)])
    assert _files([crossing], tmp_path / "crossing") == [
        ("recipient_account_id=1/event_date=2026-07-01/part-t.parquet", ["a", "b"]),
        ("recipient_account_id=1/event_date=2026-07-02/part-t.parquet", ["c"]),
    ]
    assert _files([same_day], tmp_path / "same") == [
        ("recipient_account_id=1/event_date=2026-07-01/part-t.parquet", ["d", "e"]),
    ]


def test_an_object_out_of_time_order(tmp_path: Path) -> None:
    # The parser hands rows over in record order; staging sorts only a file of several row
    # groups (stably), and keeps each day's rows in record order when it splits by day.
    unsorted = [("c", "1", 3), ("a", "1", 1), ("late", "1", 60 * 24 + 1), ("b", "1", 1)]
    assert _files([_object(unsorted)], tmp_path / "sorted", row_group_rows=2) == [
        ("recipient_account_id=1/event_date=2026-07-01/part-t.parquet", ["a", "b", "c"]),
        ("recipient_account_id=1/event_date=2026-07-02/part-t.parquet", ["late"]),
    ]
    assert _files([_object(unsorted)], tmp_path / "kept", row_group_rows=10) == [
        ("recipient_account_id=1/event_date=2026-07-01/part-t.parquet", ["c", "a", "b"]),
        ("recipient_account_id=1/event_date=2026-07-02/part-t.parquet", ["late"]),
    ]
