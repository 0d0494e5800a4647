"""One writer at a time: a second writer is refused with a clear message; a killed holder
leaves no stale lock; a write the disk refuses under the lock is reported as the disk's."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.errors import ExitCode, WarehouseError, WarehouseLockedError
from pipeline.warehouse.lock import running_writer, writer_lock

HOLD = """
import sys, time
from pathlib import Path
from pipeline.warehouse.lock import writer_lock
with writer_lock(Path(sys.argv[1]), "ingest"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_writer_is_refused_while_the_first_holds(tmp_path: Path) -> None:
    lock = tmp_path / "wh" / ".lock"
    with writer_lock(lock, "ingest"):
        with pytest.raises(WarehouseLockedError) as caught, writer_lock(lock, "import"):
            pass
        error = caught.value
        assert error.exit_code == ExitCode.ERROR
        assert re.fullmatch(
            rf"warehouse {re.escape(str(lock.parent))} is busy: ingest by pid {os.getpid()} "
            r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 "
            r"\(wait for it to finish; only one ingest or import runs at a time\)",
            error.one_line(),
        ), error.one_line()
    # Released on exit: the next writer gets it.
    with writer_lock(lock, "import"):
        assert lock.read_text().startswith(f"import by pid {os.getpid()} since ")
    # Let go, the file names no writer (readers read it: warehouse/connect.py).
    assert lock.read_text() == ""
    assert running_writer(lock) is None


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(WarehouseLockedError, match=f"ingest by pid {holder.pid} since"),
            writer_lock(lock, "ingest"),
        ):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with writer_lock(lock, "ingest"):
            pass  # no stale lock after SIGKILL
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout:
            holder.stdout.close()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("writer", ["python", "duckdb"])
def test_a_full_disk_under_the_lock_is_the_disks(tmp_path: Path, writer: str) -> None:
    """Whichever writes (Python, pyarrow or DuckDB: an OSError or a DuckDB IOException), the
    command ends with one line about the warehouse's disk."""
    warehouse = tmp_path / "wh"

    def write() -> None:
        if writer == "python":
            Path("/dev/full").write_bytes(b"x")
        else:
            duckdb.connect().execute("COPY (SELECT 1 AS x) TO '/dev/full' (FORMAT csv)")

    with pytest.raises(WarehouseError) as caught, writer_lock(warehouse / ".lock", "attribute"):
        write()
    assert caught.value.one_line() == (
        f"cannot write the warehouse {warehouse}: its disk is full (make room, then re-run the "
        "same command: nothing it committed is lost)"
    )


def test_other_errors_under_the_lock_pass_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), writer_lock(tmp_path / "wh" / ".lock", "ingest"):
        (tmp_path / "missing" / "x").read_bytes()


def _refuse(code: int) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code), str(args[0]))

    return refused


@pytest.mark.parametrize("where", ["lock file", "new folder"])
def test_a_read_only_warehouse_is_the_disks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A read-only mount refuses the lock file of an existing warehouse (or the folder of a
    new one) before anything is written: the documented disk line, not an internal error."""
    warehouse = tmp_path / "wh"
    if where == "lock file":
        warehouse.mkdir()
        monkeypatch.setattr(os, "open", _refuse(errno.EROFS))
    else:
        monkeypatch.setattr(Path, "mkdir", _refuse(errno.EROFS))
    with pytest.raises(WarehouseError) as caught, writer_lock(warehouse / ".lock", "ingest"):
        pass
    assert caught.value.one_line() == (
        f"the warehouse {warehouse} is on a read-only file system (point --warehouse at a "
        "writable folder)"
    )


def test_a_warehouse_that_cannot_be_made_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    monkeypatch.setattr(os, "open", _refuse(errno.EACCES))
    with pytest.raises(WarehouseError) as caught, writer_lock(warehouse / ".lock", "ingest"):
        pass
    assert caught.value.one_line() == (
        f"cannot write the warehouse {warehouse}: Permission denied (point --warehouse at a "
        "folder you can write)"
    )
