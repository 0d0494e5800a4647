"""warehouse/disk.py: which write errors are the disk's, and the line each one gets."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.disk import disk_failure, is_disk_failure

ROOT = Path("/data/agenttrail")


def os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_real_full_disk_is_the_disks() -> None:
    with pytest.raises(OSError, match="No space left on device") as caught:
        Path("/dev/full").write_bytes(b"x")
    assert is_disk_failure(caught.value)
    assert disk_failure(caught.value, ROOT).one_line() == (
        "cannot write the warehouse /data/agenttrail: its disk is full (make room, then re-run "
        "the same command: nothing it committed is lost)"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_duckdb_writing_to_a_full_disk_is_the_disks() -> None:
    """DuckDB reports a failed write as an IOException naming the errno, not as an OSError."""
    with pytest.raises(duckdb.IOException) as caught:
        duckdb.connect().execute("COPY (SELECT 1 AS x) TO '/dev/full' (FORMAT csv)")
    assert is_disk_failure(caught.value)
    assert disk_failure(caught.value, ROOT).message == (
        "cannot write the warehouse /data/agenttrail: its disk is full"
    )
    assert not is_disk_failure(duckdb.IOException("IO Error: No files found that match"))


@pytest.mark.parametrize(
    ("code", "line"),
    [
        (
            errno.EDQUOT,
            "cannot write the warehouse /data/agenttrail: the disk quota is used up (make room, "
            "then re-run the same command: nothing it committed is lost)",
        ),
        (
            errno.EFBIG,
            "cannot write the warehouse /data/agenttrail: a file-size limit (ulimit -f) was "
            "reached (make room, then re-run the same command: nothing it committed is lost)",
        ),
        (
            errno.EROFS,
            "the warehouse /data/agenttrail is on a read-only file system (point --warehouse at "
            "a writable folder)",
        ),
    ],
)
def test_each_disk_failure_has_its_line(code: int, line: str) -> None:
    assert is_disk_failure(os_error(code))
    assert disk_failure(os_error(code), ROOT).one_line() == line


@pytest.mark.parametrize("code", [errno.ENOENT, errno.EACCES, errno.EIO])
def test_other_errors_are_not_the_disks(code: int) -> None:
    """A missing or unreadable source file is that object's fault: it is quarantined."""
    assert not is_disk_failure(os_error(code))
    assert not is_disk_failure(ValueError("not an OSError"))
