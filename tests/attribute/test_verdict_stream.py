"""The verdict stream put back into whole files and partitions, whatever order DuckDB returns
it in; a verdict lost, doubled or misplaced is an error, never a misaligned column."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.attribute.verdict_stream import FileVerdicts, by_complete_partition
from pipeline.errors import WarehouseError


def _verdict_batches(rows: list[tuple[int, int]], size: int) -> pa.RecordBatchReader:
    """(file index, row number) rows as a verdict stream of `size`-row batches."""
    table = pa.table(
        {
            "file_index": pa.array([f for f, _ in rows], pa.uint64()),
            "file_row_number": pa.array([r for _, r in rows], pa.int64()),
            "rule": pa.array([f * 100 + r for f, r in rows], pa.int64()),
        }
    )
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=size))


def test_verdicts_in_any_order_come_out_as_whole_files_in_row_order() -> None:
    # File 1's rows arrive backwards and around file 0's; file 2 has no events.
    order = [(1, 2), (0, 0), (1, 1), (0, 1), (0, 2), (1, 0), (0, 3)]
    stream = FileVerdicts(_verdict_batches(order, 2), {0: 4, 1: 3, 2: 0}, held_limit=None)
    found = [(i, t.column("rule").to_pylist()) for i, t in stream.files()]
    assert found == [(2, []), (1, [100, 101, 102]), (0, [0, 1, 2, 3])]


@pytest.mark.parametrize("held_limit", [0, 1, 2, 3])
def test_verdicts_held_past_the_bound_go_to_disk_and_come_back(
    tmp_path: Path, held_limit: int
) -> None:
    """Every file stays incomplete until the last batches (as when DuckDB's joins spill): the
    held verdicts go to runs on disk, and the files come out as with no bound at all."""
    order = [(0, 3), (1, 2), (2, 0), (0, 0), (1, 1), (0, 2), (2, 1), (1, 0), (0, 1)]
    expected = {0: 4, 1: 3, 2: 2}
    unbounded = FileVerdicts(_verdict_batches(order, 2), expected, held_limit=None)
    want = [(i, t.column("rule").to_pylist()) for i, t in unbounded.files()]
    spill = tmp_path / "spill"
    with FileVerdicts(
        _verdict_batches(order, 2), expected, held_limit=held_limit, spill_dir=spill
    ) as stream:
        found = [(i, t.column("rule").to_pylist()) for i, t in stream.files()]
        assert stream.spilled_rows > 0
    assert found == want == [(1, [100, 101, 102]), (2, [200, 201]), (0, [0, 1, 2, 3])]
    assert list(spill.iterdir()) == []  # each run went once all its files were read back


def test_runs_left_by_a_failed_stream_go_with_it(tmp_path: Path) -> None:
    """File 1 never completes (a verdict doubled for file 0 stops the stream first): leaving the
    stream removes the runs that still held its verdicts."""
    spill = tmp_path / "spill"
    rows = [(1, 0), (0, 0), (1, 1), (0, 0)]
    with (
        pytest.raises(WarehouseError, match="more verdicts than events"),
        FileVerdicts(
            _verdict_batches(rows, 1), {0: 1, 1: 3}, held_limit=0, spill_dir=spill
        ) as stream,
    ):
        list(stream.files())
    assert list(spill.iterdir()) == []


def test_a_bound_needs_a_spill_folder() -> None:
    with pytest.raises(ValueError, match="held_limit needs a spill_dir"):
        FileVerdicts(_verdict_batches([], 1), {}, held_limit=5)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0, 0), (0, 1), (0, 1)], "classification returned more verdicts than events"),
        (
            [(0, 0), (0, 0)],
            "classification returned verdicts for rows that events file 0 does not have",
        ),
        ([(0, 0), (0, 1), (3, 0)], "classification returned verdicts for events file 3, which"),
    ],
)
def test_a_verdict_doubled_or_misplaced_is_an_error(
    rows: list[tuple[int, int]], message: str
) -> None:
    stream = FileVerdicts(_verdict_batches(rows, 2), {0: 2}, held_limit=None)
    with pytest.raises(WarehouseError) as caught:
        list(stream.files())
    assert str(caught.value).startswith(message)


def test_a_partition_whose_verdicts_never_all_arrive_is_an_error(tmp_path: Path) -> None:
    stream = FileVerdicts(_verdict_batches([(0, 0), (1, 0)], 1), {0: 1, 1: 2}, held_limit=None)
    partitions = [[tmp_path / "a" / "x.parquet"], [tmp_path / "b" / "y.parquet"]]
    written: list[int] = []
    with pytest.raises(WarehouseError, match="classification returned no verdicts for some"):
        by_complete_partition(stream, partitions, lambda p, _: written.append(p))
    assert written == [0]
