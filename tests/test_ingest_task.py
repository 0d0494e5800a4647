"""A parse task's flushes: staged files follow partitions, not flush boundaries; a full disk
stops the task instead of quarantining the object it was staging."""

from __future__ import annotations

import errno
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import pipeline.ingest_task
from pipeline.ingest_task import (
    ParseTask,
    TaskObject,
    partition_order,
    run_task,
    same_partition,
)
from pipeline.parse import streaming


def _object(path: Path, day: int, hour: int, rows: int) -> TaskObject:
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "eventVersion": "1.09",
            "eventID": f"{path.stem}-{i}",
            "eventTime": f"2026-07-{day:02d}T{hour:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "recipientAccountId": "111122223333",
        }
        for i in range(rows)
    ]
    path.write_text(json.dumps({"Records": records}))
    return TaskObject(str(path), None, str(path), None)


def _task(
    tmp_path: Path, objects: tuple[TaskObject, ...], *, flush_rows: int, task_id: int
) -> ParseTask:
    return ParseTask(
        task_id=task_id,
        run_id="run",
        objects=objects,
        staging_dir=str(tmp_path / "staging"),
        since=None,
        until=None,
        stream_threshold_bytes=1 << 30,
        row_group_rows=1000,
        flush_rows=flush_rows,
    )


def test_objects_go_by_partition() -> None:
    org = "s3://b/AWSLogs/o-abcdefghij/111122223333/CloudTrail"
    account = "s3://b/AWSLogs/111122223333/CloudTrail"
    objects = [
        f"{org}/us-east-1/2026/07/02/x.json.gz",
        f"{account}/eu-west-1/2026/07/01/z.json.gz",
        "/exports/siem/day1.ndjson",
        f"{org}/us-east-1/2026/07/01/y.json.gz",
        f"{org}/eu-west-1/2026/07/01/x.json.gz",
        "s3://b/AWSLogs/444455556666/CloudTrail/us-east-1/2026/06/30/w.json.gz",
    ]
    assert sorted(objects, key=partition_order) == [
        f"{account}/eu-west-1/2026/07/01/z.json.gz",
        f"{org}/eu-west-1/2026/07/01/x.json.gz",
        f"{org}/us-east-1/2026/07/01/y.json.gz",
        f"{org}/us-east-1/2026/07/02/x.json.gz",
        "s3://b/AWSLogs/444455556666/CloudTrail/us-east-1/2026/06/30/w.json.gz",
        "/exports/siem/day1.ndjson",
    ]
    # One account and day, whichever region or trail: one partition.
    assert same_partition(objects[1], objects[4])
    assert same_partition(objects[3], objects[4])
    assert not same_partition(objects[0], objects[3])
    assert not same_partition(objects[3], objects[5])
    # Outside CloudTrail's layout: one folder.
    assert same_partition("/exports/siem/day1.ndjson", "/exports/siem/day2.ndjson")
    assert not same_partition("/exports/siem/day1.ndjson", "/exports/other/day1.ndjson")
    assert not same_partition(objects[0], "")


def test_a_flush_waits_for_the_end_of_a_folder(tmp_path: Path) -> None:
    # flush_rows=150: the flush due after the second object of day 1 waits for the third, so
    # day 1 is one staged file; day 2 then reaches twice flush_rows within its folder and is
    # split there, its last object staged with the task's final flush.
    trail = tmp_path / "trail"
    objects = (
        _object(trail / "01" / "a.json", 1, 1, 100),
        _object(trail / "01" / "b.json", 1, 2, 100),
        _object(trail / "01" / "c.json", 1, 3, 100),
        _object(trail / "02" / "a.json", 2, 1, 100),
        _object(trail / "02" / "b.json", 2, 2, 100),
        _object(trail / "02" / "c.json", 2, 3, 100),
        _object(trail / "02" / "d.json", 2, 4, 100),
    )
    result = run_task(_task(tmp_path, objects, flush_rows=150, task_id=7))
    assert [(s.relative, s.rows) for s in result.staged] == [
        (
            "recipient_account_id=111122223333/event_date=2026-07-01/part-run-000007-000.parquet",
            300,
        ),
        (
            "recipient_account_id=111122223333/event_date=2026-07-02/part-run-000007-001.parquet",
            300,
        ),
        (
            "recipient_account_id=111122223333/event_date=2026-07-02/part-run-000007-002.parquet",
            100,
        ),
    ]
    assert [o.rows for o in result.outcomes] == [100] * 7
    first = pq.read_table(result.staged[0].path)["event_id"].to_pylist()
    assert first == [f"{name}-{i}" for name in "abc" for i in range(100)]


def test_large_objects_of_one_partition_each_keep_their_staged_files(tmp_path: Path) -> None:
    """Objects of more rows than flush_rows are staged while parsed; two of them in one day
    (a busy trail's 5-minute files) must not stage under one name, the second replacing the
    first's events."""
    trail = tmp_path / "trail"
    objects = tuple(_object(trail / "01" / f"{n}.json", 1, hour, 300) for hour, n in enumerate("abc"))
    result = run_task(_task(tmp_path, objects, flush_rows=100, task_id=4))
    assert [(s.relative, s.rows) for s in result.staged] == [
        (
            f"recipient_account_id=111122223333/event_date=2026-07-01/part-run-000004-big{n:04d}"
            ".parquet",
            300,
        )
        for n in range(3)
    ]
    ids = [i for s in result.staged for i in pq.read_table(s.path)["event_id"].to_pylist()]
    assert ids == [f"{name}-{i}" for name in "abc" for i in range(300)]


def _big_object_task(tmp_path: Path) -> ParseTask:
    """One object of more rows than flush_rows: staged while it is being parsed."""
    obj = _object(tmp_path / "trail" / "01" / "big.json", 1, 1, 300)
    return _task(tmp_path, (obj,), flush_rows=100, task_id=1)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_while_staging_stops_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes to /dev/full fail with ENOSPC, as on a full disk."""

    def stage_on_full_disk(*args: Any, **kwargs: Any) -> None:
        Path("/dev/full").write_bytes(b"PAR1")

    monkeypatch.setattr(pipeline.ingest_task, "stage_table", stage_on_full_disk)
    with pytest.raises(OSError, match="No space left on device") as caught:
        run_task(_big_object_task(tmp_path))
    assert caught.value.errno == errno.ENOSPC


def test_other_staging_faults_still_quarantine_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stage_into_a_missing_folder(*args: Any, **kwargs: Any) -> None:
        (tmp_path / "missing" / "x.parquet").write_bytes(b"PAR1")

    monkeypatch.setattr(pipeline.ingest_task, "stage_table", stage_into_a_missing_folder)
    result = run_task(_big_object_task(tmp_path))
    assert result.staged == []
    [outcome] = result.outcomes
    assert outcome.rows == 0
    assert outcome.error is not None
    assert outcome.error.startswith("cannot read: [Errno 2] No such file or directory")


def _layout_object(root: Path, day: int, name: str, times: list[str]) -> TaskObject:
    """An object in CloudTrail's key layout, delivered in the folder of `day`, holding one
    record at each of `times`."""
    path = root / "AWSLogs/111122223333/CloudTrail/us-east-1/2026/07" / f"{day:02d}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {"eventID": f"{name}-{i}", "eventTime": t, "recipientAccountId": "111122223333"}
        for i, t in enumerate(times)
    ]
    path.write_text(json.dumps({"Records": records}))
    return TaskObject(str(path), None, str(path), None)


def test_a_day_waits_for_its_events_delivered_the_next_day(tmp_path: Path) -> None:
    """The first objects of a day's folder hold the previous day's last events (delivered after
    midnight): the previous day is staged after them, so it is one file, not a file of a few
    rows beside it."""
    day1 = [f"2026-07-01T{h:02d}:00:00Z" for h in range(10, 22)] * 10  # 120 rows
    late = ["2026-07-01T23:58:00Z", "2026-07-01T23:59:30Z"]
    day2 = [f"2026-07-02T{h:02d}:00:00Z" for h in range(1, 13)] * 10
    objects = (
        _layout_object(tmp_path, 1, "a.json", day1[:60]),
        _layout_object(tmp_path, 1, "a2.json", day1[60:]),
        _layout_object(tmp_path, 2, "b.json", late + day2[:58]),
        _layout_object(tmp_path, 2, "c.json", day2[58:]),
        _layout_object(tmp_path, 3, "d.json", ["2026-07-03T08:00:00Z"]),
    )
    result = run_task(_task(tmp_path, objects, flush_rows=100, task_id=3))
    staged = [(s.relative.split("/")[1], s.rows) for s in result.staged]
    assert staged == [
        ("event_date=2026-07-01", 122),
        ("event_date=2026-07-02", 120),
        ("event_date=2026-07-03", 1),
    ]
    first = pq.read_table(result.staged[0].path)
    assert first["event_id"].to_pylist()[-2:] == ["b.json-0", "b.json-1"]


def test_a_file_that_cannot_be_read_is_marked_as_such_not_as_bad_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read refused (EACCES) says nothing of the object's content: its outcome says so
    (read_failed), for the ingest to have the next run read it again; a damaged gzip stays a
    fault of the content."""
    readable = _object(tmp_path / "trail" / "a.json", 1, 1, 3)
    refused = _object(tmp_path / "trail" / "b.json", 1, 2, 3)
    corrupt = tmp_path / "trail" / "c.json.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    read_bytes = Path.read_bytes

    def refusing(self: Path) -> bytes:
        if str(self) == refused.path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refusing)
    task = _task(
        tmp_path,
        (readable, refused, TaskObject(str(corrupt), None, str(corrupt), None)),
        flush_rows=100,
        task_id=4,
    )
    outcomes = run_task(task).outcomes
    assert [(o.rows, o.error, o.read_failed) for o in outcomes] == [
        (3, None, False),
        (0, f"cannot read: [Errno 13] Permission denied: '{refused.path}'", True),
        (0, "corrupt gzip: Error -1 Invalid deflate block found", False),
    ]


def test_an_io_error_while_streaming_is_a_read_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed file's read fails half-way (EIO): the gzip stream takes any OSError for a
    damaged stream ("corrupt gzip: ..."), but the fault is the file's, and said so."""
    obj = _object(tmp_path / "trail" / "a.json", 1, 1, 3)

    class FailingFile(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() == 0 and size == 2:
                return super().read(size)  # the magic bytes, read before the stream
            raise OSError(errno.EIO, "Input/output error")

    def failing_open(path: str, mode: str = "rb") -> FailingFile:
        return FailingFile(Path(path).read_bytes())

    monkeypatch.setattr(streaming, "open", failing_open, raising=False)
    task = replace(_task(tmp_path, (obj,), flush_rows=100, task_id=5), stream_threshold_bytes=8)
    [outcome] = run_task(task).outcomes
    assert (outcome.rows, outcome.error, outcome.read_failed) == (
        0,
        "cannot read: [Errno 5] Input/output error",
        True,
    )
