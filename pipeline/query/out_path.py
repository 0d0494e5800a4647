"""Where --out writes, checked before the statement runs and named in every failure.

/dev/stdout, /dev/fd/N and the like (open_descriptor) are written through the descriptor the
shell opened, never reopened (a reopened /dev/stdout truncates a file opened with >>, and
names nothing for a pipe); a FIFO or a device is written in place (in_place); a regular file
through a hidden partial file (partial_path) renamed when complete, a symbolic link to one
followed (destination: the file it names replaced, the link kept). check_out refuses an --out
inside the warehouse read or among another warehouse's own files, and one that cannot be
written; write_failure is the one line for a failure while writing. formats.py encodes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from pipeline.errors import AgenttrailError, QueryError, UsageError
from pipeline.warehouse.disk import is_disk_failure
from pipeline.warehouse.layout import Layout

# /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, /proc/PID/fd/N: a descriptor of ours.
_DESCRIPTOR_PATH = re.compile(
    r"^/(?:dev/(?:(?P<std>stdin|stdout|stderr)|fd/(?P<fd>\d+))"
    r"|proc/(?P<pid>self|thread-self|\d+)/fd/(?P<pfd>\d+))$"
)
_STD = {"stdin": 0, "stdout": 1, "stderr": 2}


def _descriptor_of(path: str) -> int | None:
    match = _DESCRIPTOR_PATH.match(path)
    if match is None:
        return None
    if match["std"]:
        return _STD[match["std"]]
    if match["fd"]:
        return int(match["fd"])
    if match["pid"] not in ("self", "thread-self") and int(match["pid"]) != os.getpid():
        return None
    return int(match["pfd"])


def open_descriptor(out: Path) -> int | None:
    """The descriptor of this process that `out` names, itself or through symbolic links
    (/dev/stdout -> /proc/self/fd/1), else None. It is written as it is, never reopened: a
    reopened /dev/stdout would truncate the file a shell opened with >>, and a pipe's
    /proc/self/fd/1 -> pipe:[N] names no file at all."""
    path = os.path.abspath(out)
    for _ in range(40):  # the kernel's own limit on links followed
        number = _descriptor_of(path)
        if number is not None:
            return number
        try:
            link = os.readlink(path)
        except OSError:  # not a link (or not there)
            return None
        path = os.path.normpath(os.path.join(os.path.dirname(path), link))
    return None


def in_place(out: Path) -> bool:
    """Whether `out` (links followed) is there and neither a regular file nor a folder: a FIFO,
    a device or a socket, written in place as a shell's > does."""
    try:
        mode = os.stat(out).st_mode
    except (FileNotFoundError, NotADirectoryError):  # not there: _check_out says why
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False  # destination() says so
        raise
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_out(out: Path, warehouse: str | Path | None) -> None:
    number = open_descriptor(out)
    if number is not None:  # the shell opened it: nothing to check but that it is open
        os.fstat(number)
        return
    _check_name(out, out)
    if in_place(out):
        _refuse_inside_a_warehouse(out, warehouse)
        if not os.access(out, os.W_OK):
            raise UsageError(f"--out {out}: permission denied", hint=_PERMISSION_HINT)
        return
    target = destination(out)
    folder = target.parent
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise UsageError(
            f"--out {out}: the folder {folder} {what}", hint="create the folder, or fix the path"
        )
    if target.is_dir():
        raise UsageError(f"--out {out} is a folder", hint="name a file to write, e.g. result.csv")
    _refuse_inside_a_warehouse(out, warehouse)
    _check_writable(out, target)


def destination(out: Path) -> Path:
    """The file --out writes: the file a symbolic link points to (the link stays a link), else
    `out` itself."""
    if not out.is_symlink():
        return out
    try:
        return out.resolve()
    except (OSError, RuntimeError):  # a loop of links
        raise UsageError(
            f"--out {out} is a symbolic link that leads to itself", hint="name another file"
        ) from None


def _own_paths(layout: Layout) -> list[Path]:
    """The files and folders a warehouse uses (every path Layout names), its database's WAL."""
    paths = [getattr(layout, name) for name, v in vars(Layout).items() if isinstance(v, property)]
    wal = layout.database.with_name(layout.database.name + ".wal")
    return [p for p in paths if isinstance(p, Path)] + [wal]


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def warehouse_root(path: Path, warehouse: str | Path | None = None) -> Path | None:
    """The warehouse `path` (symbolic links followed) would be written inside, else None:
    anywhere in the folder of `warehouse` (the one the command reads; not an s3:// one), or,
    in any other folder Layout recognizes as a warehouse (Layout.is_warehouse), one of the
    paths it uses: its database, events/, manifest/, ... A folder that merely holds a file
    named agenttrail.duckdb (a home folder) keeps its other folders writable."""
    try:
        resolved = path.resolve()
        read = None
        if warehouse is not None and "://" not in str(warehouse) and str(warehouse).strip():
            read = Path(warehouse).expanduser().resolve()
    except (OSError, RuntimeError):
        return None
    if read is not None and _within(resolved, read):
        return read
    for folder in resolved.parents:
        layout = Layout(folder)
        if layout.is_warehouse() and any(_within(resolved, p) for p in _own_paths(layout)):
            return folder
    return None


def _refuse_inside_a_warehouse(out: Path, warehouse: str | Path | None) -> None:
    """An --out inside a warehouse would replace its database or add files its views read
    (a Parquet file under events/ is read as events): always refused."""
    root = warehouse_root(out, warehouse)
    if root is not None:
        raise UsageError(
            f"--out {out} is inside the warehouse {root}: a result written there could replace "
            "its database or be read as its data",
            hint="write the result outside the warehouse folder",
        )


def name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_name(out: Path, target: Path) -> None:
    folder = target.parent if target.parent.is_dir() else Path(".")
    size, most = len(os.fsencode(target.name)), name_max(folder)
    if size > most:
        raise UsageError(
            f"--out {out}: the file name is {size} bytes, longer than the {most} the file system "
            "allows",
            hint="choose a shorter name",
        )


def _check_writable(out: Path, target: Path) -> None:
    """What can be checked without writing: the name's length, the file system, permission."""
    folder = target.parent
    _check_name(out, target)
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise UsageError(
            f"--out {out}: {folder} is on a read-only file system", hint="write it elsewhere"
        )
    exists = target.exists()
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(
            f"--out {out}: no permission to write in the folder {folder}", hint=_PERMISSION_HINT
        )
    if exists and not os.access(target, os.W_OK):
        raise UsageError(f"--out {out}: the file is read-only", hint=_PERMISSION_HINT)


_PERMISSION_HINT = "choose a file in a folder you can write to, or change its permissions"


def partial_path(target: Path) -> Path:
    """The hidden file a result is written to before it is renamed `target`, beside it."""
    name = f".{target.name}.partial"
    if len(os.fsencode(name)) > name_max(target.parent):
        digest = hashlib.sha256(os.fsencode(target.name)).hexdigest()[:16]
        name = f".agenttrail-{digest}.partial"
    return target.with_name(name)


_MAKE_ROOM = "make room, or write the result to another disk"
# The disk's failures (pipeline/warehouse/disk.py): what to say, and what to do.
_DISK_REASONS = {
    errno.ENOSPC: ("its disk is full", _MAKE_ROOM),
    errno.EDQUOT: ("the disk quota is used up", _MAKE_ROOM),
    errno.EFBIG: (
        "a file-size limit (ulimit -f) was reached",
        "raise the limit, or write a smaller result",
    ),
    errno.EROFS: ("it is on a read-only file system", "write it elsewhere"),
}


def write_failure(out: Path, exc: OSError) -> AgenttrailError:
    """One line for a failure to write --out, naming the user's path (never the partial file):
    the disk (exit 1, as a full disk stops any command), a permission or a name too long (the
    --out given: exit 2), else the system's reason (exit 1)."""
    if is_disk_failure(exc):
        reason, hint = _DISK_REASONS.get(exc.errno or 0, (exc.strerror, _MAKE_ROOM))
        return QueryError(f"cannot write --out {out}: {reason}", hint=hint, out=str(out))
    if isinstance(exc, PermissionError):
        return UsageError(f"--out {out}: permission denied", hint=_PERMISSION_HINT, out=str(out))
    if exc.errno == errno.ENAMETOOLONG:
        return UsageError(
            f"--out {out}: the path is longer than the file system allows",
            hint="choose a shorter name or folder",
            out=str(out),
        )
    if exc.errno == errno.EPIPE:
        return QueryError(
            f"cannot write --out {out}: the program reading it closed it", out=str(out)
        )
    reason = exc.strerror or str(exc).splitlines()[0] or type(exc).__name__
    return QueryError(f"cannot write --out {out}: {reason}", out=str(out))
