"""Import IAM snapshots into the warehouse: one Parquet file per snapshot per table.

Every snapshot is kept, because a period is judged by the snapshot in force at its end
(choice.py), and periods can be re-analysed later. Files are named by snapshot id, so importing
the same export with the same `taken_at` again finds its files and writes nothing. The
`iam_snapshots` file is written last: a snapshot is complete exactly when it is listed there.
The views read only listed snapshots (warehouse/connect.py), so the files of an import that
failed or was killed half-way count for nothing; the next import removes them (under the writer
lock, so no import is writing them then), and running the same import again completes it.

Two snapshots of one account at one `taken_at` must agree: one account exported twice at one
instant cannot differ, so differing ones mean a wrong --taken-at, and the import is refused
(UsageError naming both files). Agreeing ones (the same state in other bytes: re-indented, UTF-16)
are both kept. Where a warehouse holds two that differ (imported before this check), every
reader takes the one with the larger snapshot id (choice.py,
queries/attribute/10_role_agent_timeline.sql, queries/principals.sql).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.attribute.classify import AttributionSummary, refresh_attribution
from pipeline.attribute.freshness import is_current, mark_stale
from pipeline.config import Settings
from pipeline.errors import IamError, UsageError, WarehouseLockedError
from pipeline.iam import schema
from pipeline.iam.load import Snapshot, load_snapshot, require_utc
from pipeline.warehouse.connect import connect, repair_damaged_database
from pipeline.warehouse.files import write_parquet_atomic
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.lock import writer_lock

_EXPORT_HINT = "pass the output of `aws iam get-account-authorization-details --output json`"


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
    # Ids of snapshots an earlier import wrote files of but never listed (it failed or was
    # killed before its iam_snapshots file): this import removed those files.
    removed_incomplete: tuple[str, ...] = ()

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

    All files are read, checked and converted to their tables before anything is written, so one
    bad file imports nothing. Under the writer lock, the files of snapshots an earlier import
    left unlisted are removed, a file that contradicts a stored snapshot of its account at the
    same time is refused, and the snapshots are written; then the views are re-created and,
    given `settings`, attribution is rebuilt as after an ingest, since role tags decide who is
    an agent (rule 4). When every snapshot was present already it is rebuilt only if the
    classification lags (an import killed between its files and its attribution left it marked
    stale), as an ingest that finds nothing new does.
    """
    if not paths:
        raise UsageError(
            "no IAM snapshot file given",
            hint="pass files written by `aws iam get-account-authorization-details`",
        )
    when = require_utc(taken_at, "taken_at")
    snapshots = [load_snapshot(path, when) for path in paths]
    tables = {s.snapshot_id: _tables(s) for s in snapshots}
    _refuse_differing_among(snapshots, tables)
    results: list[ImportedSnapshot] = []
    with _import_lock(layout, snapshots, when):
        removed = _remove_incomplete(layout)
        _refuse_differing_from_stored(layout, snapshots, tables)
        if removed:
            # A classification made while the views still read such files may have used them.
            mark_stale(layout)
        written: set[str] = set()
        for snapshot in snapshots:
            present = snapshot.snapshot_id in written or _is_stored(layout, snapshot.snapshot_id)
            if not present:
                # Role tags change verdicts: events_classified lags until a rebuild finishes.
                mark_stale(layout)
                _write(layout, snapshot.snapshot_id, tables[snapshot.snapshot_id])
                written.add(snapshot.snapshot_id)
            results.append(_result(snapshot, already_present=present))
        if settings is None:
            with connect(layout, read_only=False):
                pass  # a writer's connection re-creates every view, the IAM ones included
            return ImportSummary(tuple(results), removed_incomplete=removed)
        if not written and not removed and is_current(layout, settings.attribution.rules_version()):
            repair_damaged_database(layout)
            return ImportSummary(tuple(results), current=True)
        attribution = refresh_attribution(layout, settings.attribution)  # re-creates the views
    return ImportSummary(tuple(results), attribution, removed_incomplete=removed)


@contextmanager
def _import_lock(layout: Layout, snapshots: Sequence[Snapshot], when: datetime) -> Iterator[None]:
    """The writer lock; where another writer holds it, its WarehouseLockedError with a hint that
    names the files and the command that imports them as taken at `when`. `iam snapshot` has
    written its file by then: re-running it would take another snapshot, and leave this one,
    taken at its own time, never imported."""
    held = False
    try:
        with writer_lock(layout.lock, "iam import"):
            held = True
            yield
    except WarehouseLockedError as exc:
        if held:
            raise
        files = list(dict.fromkeys(s.info.source_file for s in snapshots))
        command = shlex.join(
            [
                "agenttrail", "iam", "import", *files,
                "--taken-at", when.isoformat(), "--warehouse", str(layout.root),
            ]
        )  # fmt: skip
        raise WarehouseLockedError(
            exc.message,
            hint=f"nothing was imported: wait for it to finish, then run `{command}` (only one "
            "ingest or import runs at a time)",
            **exc.inputs,
            files=files,
        ) from None


# The tables of a snapshot in the order they are written; the snapshot row, which marks the
# others complete, last.
_TABLES = ("roles", "users", "groups", "policies", "snapshots")


def _folders(layout: Layout) -> dict[str, Path]:
    return {
        "roles": layout.iam_roles,
        "users": layout.iam_users,
        "groups": layout.iam_groups,
        "policies": layout.iam_policies,
        "snapshots": layout.iam_snapshots,
    }


_SCHEMAS = {
    "roles": schema.ROLES_SCHEMA,
    "users": schema.USERS_SCHEMA,
    "groups": schema.GROUPS_SCHEMA,
    "policies": schema.POLICIES_SCHEMA,
    "snapshots": schema.SNAPSHOTS_SCHEMA,
}


def _file(folder: Path, snapshot_id: str) -> Path:
    return folder / f"{snapshot_id}.parquet"


def _is_stored(layout: Layout, snapshot_id: str) -> bool:
    return _file(layout.iam_snapshots, snapshot_id).exists()


@dataclass(frozen=True)
class _Converted:
    """One snapshot's tables, ready to write, and a fingerprint of what it says."""

    tables: dict[str, pa.Table]  # by name in _TABLES
    content: str


def _tables(snapshot: Snapshot) -> _Converted:
    """Every table of `snapshot` as Arrow; a value that a column cannot hold is an IamError
    naming the file and the table (load.py already refuses the known cases, naming the
    element), raised before any file of any snapshot is written."""
    source = snapshot.info.source_file
    rows: dict[str, Iterable[Any]] = {
        "roles": snapshot.roles,
        "users": snapshot.users,
        "groups": snapshot.groups,
        "policies": snapshot.policies,
        "snapshots": [snapshot.info],
    }
    tables: dict[str, pa.Table] = {}
    for name in _TABLES:
        try:
            tables[name] = pa.Table.from_pylist(
                [asdict(row) for row in rows[name]], schema=_SCHEMAS[name]
            )
        except (pa.ArrowException, OverflowError, UnicodeError, ValueError, TypeError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise IamError(
                f"{source}: its {name} cannot be stored: {text}", hint=_EXPORT_HINT, file=source
            ) from None
    return _Converted(tables, _fingerprint([tables[n] for n in _TABLES if n != "snapshots"]))


def _fingerprint(tables: Sequence[pa.Table]) -> str:
    """What a snapshot says about its account, whatever its bytes, file name or list order: the
    rows of its four entity tables without snapshot_id and source_file, sorted."""
    digest = hashlib.sha256()
    for table in tables:
        kept = table.drop_columns(["snapshot_id", "source_file"])
        lines = sorted(
            json.dumps(row, sort_keys=True, default=str, ensure_ascii=False)
            for row in kept.to_pylist()
        )
        digest.update(("\n".join(lines) + "\n\x00").encode())
    return digest.hexdigest()


def _remove_incomplete(layout: Layout) -> tuple[str, ...]:
    """Remove the files of snapshots that no iam_snapshots file lists, and staged files left by
    a killed write: an earlier import failed or was killed before it finished them. Called under
    the writer lock, so no other import is half-way through writing them."""
    folders = _folders(layout)
    listed = {p.stem for p in folders["snapshots"].glob("*.parquet")}
    removed: set[str] = set()
    for name, folder in folders.items():
        for staged in folder.glob(".*.parquet.tmp"):
            staged.unlink(missing_ok=True)
        if name == "snapshots":
            continue
        for path in folder.glob("*.parquet"):
            if path.stem not in listed:
                path.unlink(missing_ok=True)
                removed.add(path.stem)
    return tuple(sorted(removed))


def _differing(snapshot: Snapshot, other_file: str, other: str) -> UsageError:
    info = snapshot.info
    return UsageError(
        f"{info.source_file} and {other_file} ({other}) are both snapshots of account "
        f"{info.account_id} taken at {info.taken_at.isoformat()}, but they differ",
        hint="import each with --taken-at set to when it was exported",
        files=[info.source_file, other_file],
        account=info.account_id,
    )


def _refuse_differing_among(
    snapshots: Sequence[Snapshot], converted: dict[str, _Converted]
) -> None:
    """Two files given together for one account at one time must say the same."""
    first: dict[str, Snapshot] = {}
    for snapshot in snapshots:
        other = first.setdefault(snapshot.info.account_id, snapshot)
        if converted[other.snapshot_id].content != converted[snapshot.snapshot_id].content:
            raise _differing(snapshot, other.info.source_file, "given in the same import")


def _refuse_differing_from_stored(
    layout: Layout, snapshots: Sequence[Snapshot], converted: dict[str, _Converted]
) -> None:
    """A file must say the same as the stored snapshots of its account at its time (only those
    are read back)."""
    accounts = {s.info.account_id for s in snapshots}
    taken_at = snapshots[0].info.taken_at  # one import, one time
    columns = ["snapshot_id", "account_id", "taken_at", "source_file"]
    for path in sorted(layout.iam_snapshots.glob("*.parquet")):
        for row in pq.read_table(path, columns=columns).to_pylist():
            if row["account_id"] not in accounts or row["taken_at"] != taken_at:
                continue
            stored = _stored_content(layout, row["snapshot_id"])
            for snapshot in snapshots:
                if (
                    snapshot.info.account_id == row["account_id"]
                    and snapshot.snapshot_id != row["snapshot_id"]
                    and converted[snapshot.snapshot_id].content != stored
                ):
                    raise _differing(
                        snapshot,
                        str(row["source_file"]),
                        f"imported before as snapshot {row['snapshot_id']}",
                    )


def _stored_content(layout: Layout, snapshot_id: str) -> str:
    folders = _folders(layout)
    return _fingerprint(
        [
            pq.read_table(_file(folders[name], snapshot_id), schema=_SCHEMAS[name])
            for name in _TABLES
            if name != "snapshots"
        ]
    )


def _write(layout: Layout, snapshot_id: str, converted: _Converted) -> None:
    """The four entity tables first, then the snapshot row that marks them complete."""
    folders = _folders(layout)
    for name in _TABLES:
        write_parquet_atomic(converted.tables[name], _file(folders[name], snapshot_id))


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
