"""Write failures that come from the warehouse's disk, not from what is being written.

A full disk or a read-only mount says nothing about a source object: such an error must stop
the run with a message about the disk, never quarantine the object being parsed (a quarantined
object is not read again, so its events would be skipped for good).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from pipeline.errors import WarehouseError

# No space (or quota) left, a read-only file system, a file-size limit (ulimit -f).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def _errno(exc: BaseException) -> int | None:
    """The disk errno of a failed write: an OSError's own, or the one DuckDB names in its
    IOException text (it reports the errno, not the exception, of a failed file write)."""
    if isinstance(exc, OSError):
        return exc.errno
    # Parse processes never load DuckDB (~190 ms and ~60 MB each): where it is not loaded, no
    # exception can be one of its own.
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.IOException):
        text = str(exc)
        return next((code for code in DISK_ERRNOS if os.strerror(code) in text), None)
    return None


def is_disk_failure(exc: BaseException) -> bool:
    return _errno(exc) in DISK_ERRNOS


def disk_failure(exc: BaseException, root: Path) -> WarehouseError:
    """The one-line error for a disk failure while writing the warehouse at `root`."""
    code = _errno(exc)
    if code == errno.EROFS:
        return WarehouseError(
            f"the warehouse {root} is on a read-only file system",
            hint="point --warehouse at a writable folder",
            warehouse=str(root),
        )
    reasons = {
        errno.ENOSPC: "its disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "a file-size limit (ulimit -f) was reached",
    }
    return WarehouseError(
        f"cannot write the warehouse {root}: {reasons.get(code or 0, str(exc))}",
        hint="make room, then re-run the same command: nothing it committed is lost",
        warehouse=str(root),
        error=str(exc),
    )
