"""The only module that knows the warehouse's paths.

WAREHOUSE/
  events/recipient_account_id=A/event_date=D/part-RUN-N.parquet   the event table (Hive)
  manifest/part-RUN-N.parquet        every source object seen, one row per sighting
  digests/part-RUN-N.parquet         CloudTrail digest objects (for the integrity check)
  quarantine/part-RUN-N.parquet      records that could not become rows, as found
  derived/CURRENT -> gen-*/          attribution outputs: sessions, MCP links, rules, the run,
                                     events_classified/ (events files + verdict columns)
  derived/source-cache/KEY/          the source events extracted from each events file
  iam/...                            imported IAM snapshots
  agenttrail.duckdb                  views over all of the above, for any DuckDB client
  _staging/RUN/                      work in progress; removed at the start of every run
  .lock                              held while a writer runs
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UsageError, WarehouseError
from pipeline.warehouse.disk import disk_failure, is_disk_failure

EVENTS_GLOB = "*/*/*.parquet"
# Characters DuckDB (2.0.1) reads as a file pattern in any path it is given (read_parquet,
# parquet_schema), even a path without a wildcard: 'wh[1]/f.parquet' reads 'wh1/f.parquet'.
# On POSIX a folder whose name holds a backslash is never found by a pattern at all
# (tests/warehouse/test_layout.py shows both).
GLOB_CHARACTERS = ("[", "*", "?", *(("\\",) if os.sep == "/" else ()))


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Layout:
        """The warehouse in the local folder `root`. Every writer gets its folder here, so a
        location that is no local folder (an s3:// URI, which only `sql` and `query run` read
        in place, or an empty string) is refused before anything is written."""
        text = str(root)
        if not text.strip():
            raise UsageError(
                "the warehouse location is empty",
                hint="name the warehouse folder, e.g. --warehouse /data/agenttrail",
            )
        if "://" in text:
            scheme = text.split("://", 1)[0]
            where = "in S3" if scheme == "s3" else f"a {scheme}:// URI, not a folder"
            raise UsageError(
                f"the warehouse {text} is {where}: agenttrail reads an s3:// warehouse in "
                "place (sql, query run) but writes only local folders",
                hint="run ingest, iam import, iam snapshot or attribute with --warehouse DIR, "
                "then upload DIR (e.g. aws s3 sync)",
                warehouse=text,
            )
        resolved = Path(root).expanduser().resolve()
        found = [c for c in GLOB_CHARACTERS if c in str(resolved)]
        if found:
            # The warehouse's files are read through DuckDB globs (views, the commit's eventID
            # check, the attribution), where these characters match other folders' names: the
            # views would read no files, or another warehouse's.
            shown = " and ".join(repr(c) for c in found)
            raise UsageError(
                f"the warehouse path {resolved} holds {shown}, which DuckDB reads as a file"
                " pattern: the views would read other folders' files, or none",
                hint="choose a warehouse folder whose path has none of [ * ?"
                + (" \\" if os.sep == "/" else ""),
                warehouse=text,
            )
        return cls(resolved)

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest"

    @property
    def digests(self) -> Path:
        return self.root / "digests"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def derived(self) -> Path:
        return self.root / "derived"

    @property
    def source_cache(self) -> Path:
        """What the attribution extracted from each events file, kept across rebuilds
        (attribute/source_cache.py)."""
        return self.derived / "source-cache"

    @property
    def attribution_marker(self) -> Path:
        """Holds the rules_version of the last complete attribution; absent while events are
        newer than the classification."""
        return self.derived / "ATTRIBUTED_WITH"

    @property
    def iam(self) -> Path:
        return self.root / "iam"

    @property
    def iam_roles(self) -> Path:
        return self.iam / "roles"

    @property
    def iam_users(self) -> Path:
        return self.iam / "users"

    @property
    def iam_groups(self) -> Path:
        return self.iam / "groups"

    @property
    def iam_policies(self) -> Path:
        return self.iam / "policies"

    @property
    def iam_snapshots(self) -> Path:
        """One row per imported snapshot; written last, so it lists only complete snapshots."""
        return self.iam / "snapshots"

    @property
    def iam_raw(self) -> Path:
        """Authorization-details JSON files taken live by `agenttrail iam snapshot`, kept as
        taken so an import can be repeated or audited."""
        return self.iam / "raw"

    @property
    def database(self) -> Path:
        return self.root / "agenttrail.duckdb"

    @property
    def staging(self) -> Path:
        return self.root / "_staging"

    @property
    def spill(self) -> Path:
        return self.root / "_staging" / "duckdb-spill"

    @property
    def schema_dir(self) -> Path:
        return self.root / "_schema"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def event_partition(self, account: str, day: str) -> Path:
        return self.events / f"recipient_account_id={account}" / f"event_date={day}"

    def ensure(self) -> None:
        """Create the warehouse's folders (a writer's first step)."""
        make_root(self.root)
        try:
            for folder in (self.events, self.manifest, self.digests, self.quarantine, self.derived):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unwritable(exc, self.root) from exc

    def is_warehouse(self) -> bool:
        return self.database.exists() or self.events.is_dir()


def make_root(root: Path) -> None:
    """Create the warehouse folder `root` if missing; a file in its place is the user's slip,
    and a folder that cannot be made (read-only, no permission, under a file) gets one line."""
    if root.exists() and not root.is_dir():
        raise WarehouseError(
            f"the warehouse {root} is a file, not a folder",
            hint="pass --warehouse a folder (created if missing)",
            warehouse=str(root),
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(exc, root) from exc


def unwritable(exc: OSError, root: Path) -> WarehouseError:
    """The one line for a warehouse folder that cannot be created or written at all: the
    disk's message (warehouse/disk.py) for a read-only or full disk, else what stood in the
    way (no permission, a file where a folder should be)."""
    if is_disk_failure(exc):
        return disk_failure(exc, root)
    return WarehouseError(
        f"cannot write the warehouse {root}: {exc.strerror or exc}",
        hint="point --warehouse at a folder you can write",
        warehouse=str(root),
        error=str(exc),
    )
