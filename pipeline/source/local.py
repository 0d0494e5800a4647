"""Local folders and single files (a synced copy of a trail bucket, or SIEM exports)."""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from pipeline.errors import SourceError
from pipeline.source import Fetched, Filters, SourceObject
from pipeline.source.keys import KeyInfo, ObjectKind, classify_key

# The uri of a file whose path is not valid UTF-8 (a Latin-1 name from an old export, say):
# the path's bytes percent-encoded after this prefix. Every other local uri is the absolute
# path itself, which never starts with it, so each uri names one file and back.
FILE_URI = "file://"


def path_uri(path: str) -> str:
    """The uri of the local file at `path` (an absolute path, as os.walk gives it).

    A path whose name is not UTF-8 comes from the OS with its undecodable bytes as lone
    surrogates, which no Parquet string (nor a terminal) can hold: its uri is a file:// URI of
    its bytes, percent-encoded (`%` too), from which local_path gets the path back."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return FILE_URI + quote(os.fsencode(path), safe="/")
    return path


def shown(text: str) -> str:
    """`text` (an OS message or a path) with any undecodable bytes of a file name as \\xNN
    escapes: what a manifest reason or a terminal can hold."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # a file name's bytes, as they were
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")  # a surrogate of no file name
    return raw.decode("utf-8", "backslashreplace")


def local_path(uri: str) -> str:
    """The path of the local file a path_uri names."""
    if uri.startswith(FILE_URI):
        return os.fsdecode(unquote_to_bytes(uri[len(FILE_URI) :]))
    return uri


class LocalSource:
    """Every file under a folder (recursively), or one file: names starting with a dot too
    (a `.DS_Store` is read, and quarantined, like any file that holds no records). A folder
    whose files cannot be listed (permission denied) is one object that cannot be read, as a
    dangling symbolic link is: quarantined, not passed over without a word."""

    def __init__(self, path: str | Path, *, leave_out: Path | None = None) -> None:
        self.root = Path(path).expanduser().resolve()
        self.uri = str(self.root)
        # The warehouse, where it sits inside the folder read (`ingest ~/logs -w
        # ~/logs/warehouse`): its own files are no logs, and each run writes new ones, which
        # every later run would quarantine.
        self.leave_out = str(leave_out.resolve()) if leave_out is not None else None
        if not self.root.exists():
            raise SourceError(
                f"source not found: {path}",
                hint="give an s3://bucket[/prefix] URI, a folder or a file",
                source=str(path),
            )

    def list(self, filters: Filters) -> Iterator[SourceObject]:
        if self.root.is_file():
            yield self._object(str(self.root))
            return
        # Paths as plain strings: a Path per file cost half of listing a 2,000-file trail, which
        # every ingest does before its first object is parsed.
        # os.walk passes over a folder it cannot list (scandir fails) unless told: each such
        # folder is listed in its place, as one object that cannot be read.
        failed: list[OSError] = []
        # Symbolic links to folders are followed (logs/2026 -> /mnt/archive/2026), each folder
        # listed once: a link back to one already listed (a cycle, a second path) is not.
        listed = {_identity(str(self.root))}
        walk = os.walk(self.root, onerror=failed.append, followlinks=True)
        for folder, dirs, files in walk:
            yield from _unlisted(failed, filters)
            dirs[:] = [d for d in sorted(dirs) if self._descend(os.path.join(folder, d), listed)]
            for name in sorted(files):
                obj = self._object(os.path.join(folder, name))
                if filters.admits(obj.account, obj.region, obj.day):
                    yield obj
        yield from _unlisted(failed, filters)

    def _descend(self, path: str, listed: set[tuple[int, int] | None]) -> bool:
        """Whether to walk into the folder at `path`: not the warehouse, not a folder listed
        already. One that cannot be looked at is walked into, so os.walk reports it."""
        if self.leave_out is not None and os.path.realpath(path) == self.leave_out:
            return False
        identity = _identity(path)
        if identity is None:
            return True
        if identity in listed:
            return False
        listed.add(identity)
        return True

    @staticmethod
    def _object(path: str) -> SourceObject:
        info = classify_key(path if os.sep == "/" else path.replace(os.sep, "/"))
        try:
            stat = os.stat(path)
        except OSError as exc:
            # A symbolic link to nothing (or a file gone since the folder was listed): one
            # object that cannot be read, not the end of the run.
            return _unreadable(path, info, info.kind, _stat_failure(path, exc))
        return SourceObject(
            uri=path_uri(path),
            kind=info.kind,
            size=stat.st_size,
            version=f"mtime_ns:{stat.st_mtime_ns}",
            account=info.account,
            region=info.region,
            day=info.day,
        )

    def fetch(self, obj: SourceObject, spool_dir: Path, spool_above: int) -> Fetched:
        return Fetched(path=Path(local_path(obj.uri)))


def _identity(path: str) -> tuple[int, int] | None:
    """The folder a path leads to (device and inode, whatever links lead there)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _unlisted(failed: list[OSError], filters: Filters) -> Iterator[SourceObject]:
    """The folders os.walk could not list since it was last asked (`failed` is emptied)."""
    errors = failed[:]
    failed.clear()
    for exc in errors:
        if isinstance(exc, FileNotFoundError) or not isinstance(exc.filename, str):
            continue  # removed since its parent was listed: no files left to read
        obj = _folder_object(exc.filename, exc)
        if filters.admits(obj.account, obj.region, obj.day):
            yield obj


def _folder_object(path: str, exc: OSError) -> SourceObject:
    """A folder whose files cannot be listed, as one object that cannot be read (quarantined).
    It may hold event files unless the layout says otherwise (a digest, Insight or Aggregated
    folder): its account, region and day come from its path, as a file's in it would. Its
    version is the folder's own, marked, as a dangling link's: once it can be listed, its
    files are objects of their own, and read."""
    info = classify_key((path if os.sep == "/" else path.replace(os.sep, "/")) + "/")
    kind = info.kind if info.kind in ("digest", "insight", "aggregated") else "events"
    return _unreadable(path, info, kind, f"a folder whose files cannot be listed ({_reason(exc)})")


def _unreadable(path: str, info: KeyInfo, kind: ObjectKind, why: str) -> SourceObject:
    """An object listed but not openable (a dangling link, a folder that cannot be listed),
    which is quarantined unread. Its version is the path's own, marked: once it can be read,
    its version is that of what it leads to, and the next run reads it."""
    return SourceObject(
        uri=path_uri(path),
        kind=kind,
        size=0,
        version=_unreadable_version(path),
        account=info.account,
        region=info.region,
        day=info.day,
        unreadable=f"cannot read: {why}",
    )


def _reason(exc: OSError) -> str:
    return shown(exc.strerror) if exc.strerror else type(exc).__name__


UNREADABLE_VERSION = "unreadable"


def unread_version(version: str) -> str:
    """The manifest version of an object listed as `version` whose file could not be read
    (permission refused, an I/O error): marked as a dangling link's is, so that it differs from
    any version a listing gives and the next run reads the object again. Its mtime stays when
    it is made readable (chmod), so its own version would have counted it unchanged for good."""
    return f"{UNREADABLE_VERSION}:{version}"


def _unreadable_version(path: str) -> str:
    try:
        return f"{UNREADABLE_VERSION}:mtime_ns:{os.lstat(path).st_mtime_ns}"
    except OSError:
        return UNREADABLE_VERSION


def _stat_failure(path: str, exc: OSError) -> str:
    """Why os.stat failed, without the path (the manifest names the object already)."""
    try:
        if stat_module.S_ISLNK(os.lstat(path).st_mode):
            target = shown(os.readlink(path))
            return f"symbolic link to {target}, which cannot be opened ({exc.strerror})"
    except OSError:
        pass
    return exc.strerror or type(exc).__name__
