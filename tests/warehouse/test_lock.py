"""One writer at a time: a second writer is refused with a clear message; a killed holder
leaves no stale lock."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import ExitCode, WarehouseLockedError
from pipeline.warehouse.lock import writer_lock

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
