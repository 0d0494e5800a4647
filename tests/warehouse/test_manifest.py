"""The manifest: newest entry per uri wins, and when an earlier outcome covers a new period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.warehouse import manifest
from pipeline.warehouse.connect import connect
from pipeline.warehouse.layout import Layout
from pipeline.warehouse.manifest import ManifestEntry

ENTRY = ManifestEntry(
    uri="/logs/a.json.gz",
    kind="events",
    size=10,
    version="mtime_ns:1",
    sha256="00" * 32,
    status="ingested",
    reason=None,
    records=4,
    events_written=4,
    duplicates=0,
    quarantined_records=0,
    outside_period=0,
    period_since=None,
    period_until=None,
    run_id="run-1",
    recorded_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
)


def test_newest_entry_per_uri_wins_whatever_the_file_order(tmp_path: Path) -> None:
    later = replace(
        ENTRY, version="mtime_ns:2", run_id="run-2", recorded_at=datetime(2024, 3, 2, tzinfo=UTC)
    )
    other = replace(
        ENTRY, uri="/logs/b.json.gz", status="quarantined", reason="empty file: no records"
    )
    # File names sort the later run first: the time, not the name, decides.
    manifest.append(tmp_path, "part-z", [ENTRY, other])
    manifest.append(tmp_path, "part-a", [later])
    latest = manifest.load_latest(tmp_path)
    assert latest == {"/logs/a.json.gz": later, "/logs/b.json.gz": other}


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    assert manifest.load_latest(tmp_path / "missing") == {}
    manifest.append(tmp_path, "part-0", [])
    assert list(tmp_path.iterdir()) == []


def test_manifest_view_matches_load_latest(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path / "wh")
    layout.ensure()
    later = replace(
        ENTRY, version="mtime_ns:2", run_id="run-2", recorded_at=datetime(2024, 3, 2, tzinfo=UTC)
    )
    manifest.append(layout.manifest, "part-1", [ENTRY])
    manifest.append(layout.manifest, "part-2", [later])
    with connect(layout, read_only=False):
        pass
    with duckdb.connect(str(layout.database), read_only=True) as con:
        assert con.sql("SELECT uri, version, run_id FROM manifest").fetchall() == [
            ("/logs/a.json.gz", "mtime_ns:2", "run-2")
        ]
        assert con.sql("SELECT count(*) FROM manifest_history").fetchall() == [(2,)]


D1, D2, D3, D4 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3), date(2024, 3, 4)


@pytest.mark.parametrize(
    ("dropped", "earlier", "asked", "covered"),
    [
        # Nothing was dropped: the outcome stands for any period.
        (0, (D2, D3), (None, None), True),
        # Records were dropped by [D2, D3]: a period inside it is covered, a wider one is not.
        (2, (D2, D3), (D2, D3), True),
        (2, (D2, D3), (D2, D2), True),
        (2, (D2, D3), (D1, D3), False),
        (2, (D2, D3), (D2, D4), False),
        (2, (D2, D3), (None, D3), False),
        (2, (D2, D3), (D2, None), False),
        (2, (D2, D3), (None, None), False),
        # Only a lower bound was applied.
        (2, (D2, None), (D3, None), True),
        (2, (D2, None), (D3, D4), True),
        (2, (D2, None), (D1, None), False),
    ],
)
def test_covers(
    dropped: int,
    earlier: tuple[date | None, date | None],
    asked: tuple[date | None, date | None],
    covered: bool,
) -> None:
    entry = replace(ENTRY, outside_period=dropped, period_since=earlier[0], period_until=earlier[1])
    assert manifest.covers(entry, *asked) is covered


@pytest.mark.parametrize(
    ("applied", "asked", "covered"),
    [
        # --account A --region R dropped records: the same or a narrower run is covered ...
        ((("A",), ("R",)), ((("A",), ("R",))), True),
        ((("A", "B"), ()), ((("B",), ("R",))), True),
        # ... a run asking for another account or region, or for all of them, is not.
        ((("A",), ("R",)), ((("A",), ())), False),
        ((("A",), ("R",)), ((("A", "B"), ("R",))), False),
        ((("A",), ()), (((), ())), False),
        (((), ("R",)), ((("A",), ("S",))), False),
    ],
)
def test_covers_accounts_and_regions(
    applied: tuple[tuple[str, ...], tuple[str, ...]],
    asked: tuple[tuple[str, ...], tuple[str, ...]],
    covered: bool,
) -> None:
    entry = replace(ENTRY, outside_scope=3, scope_accounts=applied[0], scope_regions=applied[1])
    assert manifest.covers(entry, None, None, *asked) is covered
    # Nothing dropped: any run is covered.
    assert manifest.covers(replace(ENTRY, outside_scope=0), None, None, *asked) is True


def test_scope_columns_round_trip_and_old_files_read_as_none_dropped(tmp_path: Path) -> None:
    scoped = replace(ENTRY, outside_scope=2, scope_accounts=("A",), scope_regions=("R", "S"))
    manifest.append(tmp_path, "part-new", [scoped])
    assert manifest.load_latest(tmp_path) == {scoped.uri: scoped}
    # A file written before the columns existed.
    old = pq.read_table(tmp_path / "part-new.parquet").drop_columns(
        ["outside_scope", "scope_accounts", "scope_regions"]
    )
    (tmp_path / "part-new.parquet").unlink()
    pq.write_table(old, tmp_path / "part-old.parquet")
    assert manifest.load_latest(tmp_path) == {ENTRY.uri: replace(scoped, outside_scope=0,
                                                                scope_accounts=(),
                                                                scope_regions=())}  # fmt: skip
