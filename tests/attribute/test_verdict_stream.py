"""The verdict stream put back into whole files and partitions, whatever order DuckDB returns
it in; a verdict lost, doubled or misplaced is an error, never a misaligned column."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.attribute.verdict_stream import PartitionVerdicts
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


def _rules(stream: PartitionVerdicts) -> list[tuple[int, list[list[int]]]]:
    return [
        (p, [t.column("rule").to_pylist() for t in tables]) for p, tables in stream.partitions()
    ]


def test_verdicts_in_any_order_come_out_as_whole_partitions_in_row_order() -> None:
    # File 1's rows arrive backwards and around file 0's; file 2 has no events; partition 0
    # (files 0 and 1) completes with file 0's last row, partition 1 (file 2) at once.
    order = [(1, 2), (0, 0), (1, 1), (0, 1), (0, 2), (1, 0), (0, 3), (3, 0)]
    stream = PartitionVerdicts(
        _verdict_batches(order, 2), [[0, 1], [2], [3]], {0: 4, 1: 3, 2: 0, 3: 1}, held_limit=None
    )
    assert _rules(stream) == [
        (1, [[]]),
        (0, [[0, 1, 2, 3], [100, 101, 102]]),
        (2, [[300]]),
    ]


@pytest.mark.parametrize("held_limit", [0, 1, 2, 3])
def test_verdicts_held_past_the_bound_go_to_disk_and_come_back(
    tmp_path: Path, held_limit: int
) -> None:
    """Every partition stays incomplete until the last batches (as when DuckDB's joins spill):
    the held verdicts go to runs on disk, and the partitions come out as with no bound."""
    order = [(0, 3), (1, 2), (2, 0), (0, 0), (1, 1), (0, 2), (2, 1), (1, 0), (0, 1)]
    expected = {0: 4, 1: 3, 2: 2}
    unbounded = PartitionVerdicts(
        _verdict_batches(order, 2), [[0], [1], [2]], expected, held_limit=None
    )
    want = _rules(unbounded)
    spill = tmp_path / "spill"
    with PartitionVerdicts(
        _verdict_batches(order, 2), [[0], [1], [2]], expected, held_limit=held_limit,
        spill_dir=spill,
    ) as stream:  # fmt: skip
        found = _rules(stream)
        assert stream.spilled_rows > 0
    assert found == want == [(1, [[100, 101, 102]]), (2, [[200, 201]]), (0, [[0, 1, 2, 3]])]
    assert list(spill.iterdir()) == []  # each run went once all its files were read back


def test_a_new_run_never_takes_the_name_of_one_still_on_disk(tmp_path: Path) -> None:
    """Run 0 (file 0's verdicts) is read back and goes; the runs written after it must not be
    named after the runs left (a reused name once overwrote file 1's first verdict with file
    2's, which then came out as file 1's)."""
    order = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (2, 1)]
    with PartitionVerdicts(
        _verdict_batches(order, 1), [[0], [1], [2]], {0: 2, 1: 2, 2: 2}, held_limit=0,
        spill_dir=tmp_path / "spill",
    ) as stream:  # fmt: skip
        assert _rules(stream) == [(0, [[0, 1]]), (1, [[100, 101]]), (2, [[200, 201]])]


def test_complete_files_waiting_for_their_partition_count_against_the_bound(
    tmp_path: Path,
) -> None:
    """20 partitions of two files each, every first file complete before any second one: the
    complete files' verdicts wait for their partitions on disk, not in memory."""
    n = 20
    order = [(2 * p, r) for p in range(n) for r in range(3)]
    order += [(2 * p + 1, r) for p in range(n) for r in range(3)]
    held: list[int] = []
    with PartitionVerdicts(
        _verdict_batches(order, 1), [[2 * p, 2 * p + 1] for p in range(n)],
        {i: 3 for i in range(2 * n)}, held_limit=2, spill_dir=tmp_path / "spill",
    ) as stream:  # fmt: skip
        found = []
        for partition, tables in stream.partitions():
            held.append(stream._held)
            found.append((partition, [t.column("rule").to_pylist() for t in tables]))
        # The 20 first files' 60 verdicts waited on disk (three at a time: past the bound of
        # 2); each second file's completes its partition as it arrives, and leaves nothing.
        assert stream.spilled_rows == 3 * n
    assert held == [0] * n
    assert found == [
        (p, [[200 * p, 200 * p + 1, 200 * p + 2], [200 * p + 100, 200 * p + 101, 200 * p + 102]])
        for p in range(n)
    ]


def test_runs_left_by_a_failed_stream_go_with_it(tmp_path: Path) -> None:
    """File 1 never completes (a verdict doubled for file 0 stops the stream first): leaving the
    stream removes the runs that still held its verdicts."""
    spill = tmp_path / "spill"
    rows = [(1, 0), (0, 0), (1, 1), (0, 0)]
    with (
        pytest.raises(WarehouseError, match="more verdicts than events"),
        PartitionVerdicts(
            _verdict_batches(rows, 1), [[0], [1]], {0: 1, 1: 3}, held_limit=0, spill_dir=spill
        ) as stream,
    ):
        list(stream.partitions())
    assert list(spill.iterdir()) == []


def test_a_spill_that_cannot_be_written_says_where_and_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with (
        pytest.raises(WarehouseError) as caught,
        PartitionVerdicts(
            _verdict_batches([(0, 0), (1, 0)], 1), [[0], [1]], {0: 2, 1: 2}, held_limit=0,
            spill_dir=blocker / "spill",
        ) as stream,
    ):  # fmt: skip
        list(stream.partitions())
    assert (
        caught.value.message == f"could not write verdicts to {blocker / 'spill'}: Not a directory"
    )
    assert caught.value.hint == (
        "free disk space there, or raise [attribution] verdicts_duckdb_memory_limit so that fewer"
        " verdicts wait"
    )


def test_a_bound_needs_a_spill_folder() -> None:
    with pytest.raises(ValueError, match="held_limit needs a spill_dir"):
        PartitionVerdicts(_verdict_batches([], 1), [], {}, held_limit=5)


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
    stream = PartitionVerdicts(_verdict_batches(rows, 2), [[0]], {0: 2}, held_limit=None)
    with pytest.raises(WarehouseError) as caught:
        list(stream.partitions())
    assert str(caught.value).startswith(message)


def test_a_partition_whose_verdicts_never_all_arrive_is_an_error() -> None:
    stream = PartitionVerdicts(
        _verdict_batches([(0, 0), (1, 0)], 1), [[0], [1]], {0: 1, 1: 2}, held_limit=None
    )
    written: list[int] = []

    def write_all() -> None:
        for partition, _ in stream.partitions():
            written.append(partition)

    with pytest.raises(WarehouseError, match="classification returned no verdicts for some"):
        write_all()
    assert written == [0]
