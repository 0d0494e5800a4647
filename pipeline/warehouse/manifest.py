"""The manifest: every source object ever seen, with what became of it.

Append-only Parquet files; the newest row per uri is the object's state. "Already ingested" means
the same uri with the same version (ETag or mtime) whose last outcome is final: ingested, skipped
or quarantined. Keeping every key, rather than a "last key seen" watermark, is what makes ingest
immune to S3 listing order (facts doc s.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.warehouse.files import write_parquet_atomic

Status = Literal["ingested", "skipped", "quarantined"]


@dataclass(frozen=True)
class ManifestEntry:
    uri: str
    kind: str  # events, digest, insight, aggregated, other
    size: int
    version: str  # S3 ETag or local mtime
    sha256: str | None
    status: Status
    reason: str | None  # why skipped or quarantined (or which records were)
    records: int  # records found in the object
    events_written: int  # new rows added to events/
    duplicates: int  # records dropped as copies of an eventID already kept
    quarantined_records: int
    outside_period: int  # records dropped by --since/--until
    period_since: date | None  # the period applied when records were dropped, else None
    period_until: date | None
    run_id: str
    recorded_at: datetime
    # Records dropped by --account/--region (files outside CloudTrail's key layout are filtered
    # record by record), and the filters applied when some were, else empty: like a period, a
    # filter never loses records, so a run asking for more reads the object again.
    outside_scope: int = 0
    scope_accounts: tuple[str, ...] = ()
    scope_regions: tuple[str, ...] = ()


SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        ("kind", pa.string()),
        ("size", pa.int64()),
        ("version", pa.string()),
        ("sha256", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("records", pa.int64()),
        ("events_written", pa.int64()),
        ("duplicates", pa.int64()),
        ("quarantined_records", pa.int64()),
        ("outside_period", pa.int64()),
        ("period_since", pa.date32()),
        ("period_until", pa.date32()),
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        # Added later: files written before lack them (read as 0 and empty).
        ("outside_scope", pa.int64()),
        ("scope_accounts", pa.list_(pa.string())),
        ("scope_regions", pa.list_(pa.string())),
    ]
)


def append(folder: Path, name: str, entries: list[ManifestEntry]) -> None:
    if not entries:
        return
    # Column by column: dataclasses.asdict deep-copies every field, ~0.1 ms per entry, which
    # was a third of the parent's commit time at 2,000 objects per commit.
    table = pa.Table.from_pydict(
        {name: [getattr(e, name) for e in entries] for name in SCHEMA.names}, schema=SCHEMA
    )
    write_parquet_atomic(table, folder / f"{name}.parquet")


def load_latest(folder: Path) -> dict[str, ManifestEntry]:
    """uri -> its newest entry."""
    latest: dict[str, ManifestEntry] = {}
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return latest
    table = pa.concat_tables([pq.read_table(f, schema=SCHEMA) for f in files])
    names = [f.name for f in fields(ManifestEntry)]
    for row in table.sort_by([("recorded_at", "ascending")]).to_pylist():
        values = {k: row[k] for k in names}
        values["outside_scope"] = values["outside_scope"] or 0
        values["scope_accounts"] = tuple(values["scope_accounts"] or ())
        values["scope_regions"] = tuple(values["scope_regions"] or ())
        entry = ManifestEntry(**values)
        latest[entry.uri] = entry
    return latest


def covers(
    entry: ManifestEntry,
    since: date | None,
    until: date | None,
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
) -> bool:
    """Whether an earlier outcome stands for a run over [since, until] of `accounts` and
    `regions` (empty: all).

    An object whose records were partly dropped by an earlier, narrower period, account or
    region filter must be read again when a run asks for more; dropping is never a loss.
    """
    if entry.outside_period:
        lower_ok = entry.period_since is None or (since is not None and since >= entry.period_since)
        upper_ok = entry.period_until is None or (until is not None and until <= entry.period_until)
        if not (lower_ok and upper_ok):
            return False
    if entry.outside_scope:
        return _within(accounts, entry.scope_accounts) and _within(regions, entry.scope_regions)
    return True


def _within(asked: Sequence[str], applied: Sequence[str]) -> bool:
    """Whether a run asking for `asked` (empty: all) wants nothing an earlier filter
    `applied` (empty: none on this axis) dropped."""
    return not applied or (bool(asked) and set(asked) <= set(applied))
