"""Side tables written by ingest: CloudTrail digests and quarantined records."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa

from pipeline.warehouse.files import write_parquet_atomic

DIGEST_SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        ("account", pa.string()),
        ("region", pa.string()),
        ("day", pa.date32()),
        ("size", pa.int64()),
        ("version", pa.string()),
        ("sha256", pa.string()),
        # From the S3 object's metadata; local copies lose it (NULL), so the integrity check
        # can only verify digests ingested from S3.
        ("signature", pa.string()),
        ("signature_algorithm", pa.string()),
        ("body", pa.string()),  # the gunzipped digest JSON, for verification without S3
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        ("record_index", pa.int64()),
        ("reason", pa.string()),
        ("text", pa.string()),  # the record as found; session tokens are redacted
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class DigestRow:
    uri: str
    account: str | None
    region: str | None
    day: date | None
    size: int
    version: str
    sha256: str
    signature: str | None
    signature_algorithm: str | None
    body: str
    run_id: str
    recorded_at: datetime


@dataclass(frozen=True)
class QuarantineRow:
    uri: str
    record_index: int
    reason: str
    text: str
    run_id: str
    recorded_at: datetime


def write_digests(folder: Path, name: str, rows: list[DigestRow]) -> None:
    if rows:
        table = pa.Table.from_pylist([asdict(r) for r in rows], schema=DIGEST_SCHEMA)
        write_parquet_atomic(table, folder / f"{name}.parquet")


def write_quarantine(folder: Path, name: str, rows: list[QuarantineRow]) -> None:
    if rows:
        table = pa.Table.from_pylist([asdict(r) for r in rows], schema=QUARANTINE_SCHEMA)
        write_parquet_atomic(table, folder / f"{name}.parquet")
