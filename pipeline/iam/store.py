"""Import IAM snapshots into the warehouse: one Parquet file per snapshot per table.

Every snapshot is kept, because a period is judged by the snapshot in force at its end
(choice.py), and periods can be re-analysed later. Files are named by snapshot id, so importing
the same export with the same `taken_at` again finds its files and writes nothing. The
`iam_snapshots` file is written last: a snapshot is complete exactly when it is listed there, and
an import killed half-way is completed by running it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.attribute.classify import AttributionSummary, refresh_attribution
from pipeline.attribute.freshness import is_current, mark_stale
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.iam import schema
from pipeline.iam.load import Snapshot, load_snapshot, require_utc
from pipeline.warehouse.connect import connect
from pipeline.warehouse.files import write_parquet_atomic
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.lock import writer_lock


@dataclass(frozen=True)
class ImportedSnapshot:
    """What one file became."""

    snapshot_id: str
    account_id: str
    taken_at: datetime
    source_file: str
    roles: int
    users: int
    groups: int
    policies: int
    already_present: bool  # the same export at the same time was imported before: nothing written


@dataclass(frozen=True)
class ImportSummary:
    snapshots: tuple[ImportedSnapshot, ...]  # in the order the files were given
    # The attribution rebuilt after the import; None when no settings were given, or when
    # nothing changed since the last complete classification (`current`).
    attribution: AttributionSummary | None = None
    current: bool = False  # every snapshot was present and events_classified is up to date

    @property
    def imported(self) -> int:
        """Snapshots written by this run."""
        return sum(not s.already_present for s in self.snapshots)

    @property
    def already_present(self) -> int:
        """Snapshots skipped because the warehouse held them already."""
        return sum(s.already_present for s in self.snapshots)

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({s.account_id for s in self.snapshots}))


def import_snapshots(
    paths: Sequence[str | Path],
    layout: Layout,
    taken_at: datetime,
    settings: Settings | None = None,
) -> ImportSummary:
    """Load each authorization-details file as taken at `taken_at` and store it.

    All files are read and checked before anything is written, so one bad file imports nothing.
    Under the same writer lock as the files, the views are re-created and, given `settings`,
    attribution is rebuilt as after an ingest, since role tags decide who is an agent (rule 4).
    When every snapshot was present already it is rebuilt only if the classification lags (an
    import killed between its files and its attribution left it marked stale), as an ingest
    that finds nothing new does.
    """
    if not paths:
        raise UsageError(
            "no IAM snapshot file given",
            hint="pass files written by `aws iam get-account-authorization-details`",
        )
    when = require_utc(taken_at, "taken_at")
    snapshots = [load_snapshot(path, when) for path in paths]
    results: list[ImportedSnapshot] = []
    with writer_lock(layout.lock, "iam import"):
        written: set[str] = set()
        for snapshot in snapshots:
            present = snapshot.snapshot_id in written or _is_stored(layout, snapshot)
            if not present:
                # Role tags change verdicts: events_classified lags until a rebuild finishes.
                mark_stale(layout)
                _write(layout, snapshot)
                written.add(snapshot.snapshot_id)
            results.append(_result(snapshot, already_present=present))
        if settings is None:
            with connect(layout, read_only=False):
                pass  # a writer's connection re-creates every view, the IAM ones included
            return ImportSummary(tuple(results))
        if not written and is_current(layout, settings.attribution.rules_version()):
            return ImportSummary(tuple(results), current=True)
        attribution = refresh_attribution(layout, settings.attribution)  # re-creates the views
    return ImportSummary(tuple(results), attribution)


def _is_stored(layout: Layout, snapshot: Snapshot) -> bool:
    return _file(layout.iam_snapshots, snapshot).exists()


def _file(folder: Path, snapshot: Snapshot) -> Path:
    return folder / f"{snapshot.snapshot_id}.parquet"


def _write(layout: Layout, snapshot: Snapshot) -> None:
    """The four entity tables first, then the snapshot row that marks them complete."""
    parts: list[tuple[Path, pa.Schema, Iterable[Any]]] = [
        (layout.iam_roles, schema.ROLES_SCHEMA, snapshot.roles),
        (layout.iam_users, schema.USERS_SCHEMA, snapshot.users),
        (layout.iam_groups, schema.GROUPS_SCHEMA, snapshot.groups),
        (layout.iam_policies, schema.POLICIES_SCHEMA, snapshot.policies),
        (layout.iam_snapshots, schema.SNAPSHOTS_SCHEMA, [snapshot.info]),
    ]
    for folder, table_schema, rows in parts:
        table = pa.Table.from_pylist([asdict(row) for row in rows], schema=table_schema)
        write_parquet_atomic(table, _file(folder, snapshot))


def _result(snapshot: Snapshot, *, already_present: bool) -> ImportedSnapshot:
    info = snapshot.info
    return ImportedSnapshot(
        snapshot_id=info.snapshot_id,
        account_id=info.account_id,
        taken_at=info.taken_at,
        source_file=info.source_file,
        roles=info.roles,
        users=info.users,
        groups=info.groups,
        policies=info.policies,
        already_present=already_present,
    )
