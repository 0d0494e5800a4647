"""One writer at a time per warehouse.

An advisory `flock` on WAREHOUSE/.lock: the kernel releases it when the process dies, even by
SIGKILL, so a killed ingest never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.errors import WarehouseLockedError
from pipeline.warehouse.disk import disk_failure, is_disk_failure
from pipeline.warehouse.layout import make_root, unwritable

# The lock files this process holds (writer_lock): a writer that finds the warehouse database
# damaged may make it again only while no other writer can be at work (connect.py).
_HELD: set[str] = set()


def holds_writer_lock(path: Path) -> bool:
    """Whether this process holds WAREHOUSE/.lock (`path`) now."""
    return os.path.abspath(path) in _HELD


@contextmanager
def writer_lock(path: Path, purpose: str) -> Iterator[None]:
    """Hold WAREHOUSE/.lock (`path`) for the block; `purpose` is shown to a refused writer. A
    disk failure in the block (warehouse/disk.py) leaves it as a WarehouseError."""
    make_root(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only mount, no permission: the folder, not the lock
        raise unwritable(exc, path.parent) from exc
    holds = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise WarehouseLockedError(
                f"warehouse {path.parent} is busy: {holder}",
                hint="wait for it to finish; only one ingest or import runs at a time",
                warehouse=str(path.parent),
            ) from None
        holds = True
        _HELD.add(os.path.abspath(path))
        os.ftruncate(fd, 0)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"{purpose} by pid {os.getpid()} since {now}".encode(), 0)
        yield
    except (OSError, duckdb.IOException) as exc:
        # Every write to the warehouse happens under this lock: a full or read-only disk,
        # wherever the write was (a parse process, the commit, DuckDB, the attribution's
        # pool), is reported once, here, as the disk's fault.
        if is_disk_failure(exc):
            raise disk_failure(exc, path.parent) from exc
        raise
    finally:
        # The text names the writer only while it holds the lock (running_writer); it is left
        # behind only by a killed writer, whose pid then runs no more.
        if holds:
            _HELD.discard(os.path.abspath(path))
        with contextlib.suppress(OSError):
            if holds:
                os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the lock


_HOLDER = re.compile(r"^\S.* by pid (?P<pid>\d+) since \S+$")


def running_writer(path: Path) -> str | None:
    """What WAREHOUSE/.lock (`path`) says of its writer ("ingest by pid N since T") while that
    process runs, else None. For readers' messages: it never takes the lock, so a reader asking
    cannot make a writer starting at that moment find the warehouse busy. A writer empties the
    file when it lets go; a killed one leaves its text, and its pid no longer runs."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    found = _HOLDER.match(text)
    if found is None:
        return None
    try:
        os.kill(int(found["pid"]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # running, as another user
    return text
