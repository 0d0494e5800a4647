"""Stage 1, source: where CloudTrail objects come from (S3 or local folders).

Entry point: `open_source(uri, ...)` returns a Source whose `list()` yields SourceObjects
(pruned by account, region and day folders) and whose `read()` returns an object's bytes or local
path. Listing order never matters: the warehouse manifest decides what is new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from pipeline.source.keys import ObjectKind


@dataclass(frozen=True)
class Filters:
    """What to list. Dates are inclusive UTC days; empty tuples mean "all"."""

    since: date | None = None
    until: date | None = None
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    # Days of slack around since/until when pruning by date folders (late delivery).
    slack_days: int = 1

    def admits(self, account: str | None, region: str | None, day: date | None) -> bool:
        """Whether an object found under these layout folders can hold wanted records.

        Unknown parts (a file outside the AWSLogs layout) are admitted: its records are then
        kept or dropped by their own eventTime.
        """
        if account and self.accounts and account not in self.accounts:
            return False
        if region and self.regions and region not in self.regions:
            return False
        if day is None:
            return True
        if self.since and day < shifted(self.since, -self.slack_days):
            return False
        return not (self.until and day > shifted(self.until, self.slack_days))


def shifted(day: date, days: int) -> date:
    """`day` moved by `days`, held to the calendar Python has: the slack around `--until
    9999-12-31` (an open end, as in `query run`) or `--since 0001-01-01` stops at its edge."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


@dataclass(frozen=True)
class SourceObject:
    uri: str  # s3://bucket/key, or the absolute local path
    kind: ObjectKind
    size: int
    version: str  # S3 ETag, or "mtime_ns:<n>" for local files: a change means "re-ingest"
    account: str | None = None  # from the key, a fallback only
    region: str | None = None
    day: date | None = None
    metadata: dict[str, str] = field(default_factory=dict, compare=False)
    # Why the object cannot be read, when listing found it but not its content (a symbolic
    # link to nothing): it is quarantined unread, with this reason.
    unreadable: str | None = None


@dataclass(frozen=True)
class Fetched:
    """An object's content: bytes in memory, or a local path for files read in place."""

    data: bytes | None = None
    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # `path` is a copy this fetch made in spool_dir (a large download), which the caller
    # deletes once read; otherwise it is the user's own file, never to be deleted.
    spooled: bool = False


class Source(Protocol):
    uri: str

    def list(self, filters: Filters) -> Iterator[SourceObject]: ...

    def fetch(self, obj: SourceObject, spool_dir: Path, spool_above: int) -> Fetched:
        """The object's content; objects larger than spool_above bytes are written to a file in
        spool_dir and returned as a path (`spooled`), so memory stays flat."""
        ...
