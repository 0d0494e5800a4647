"""Committing staged rows: exactly one row per eventID, the documented copy kept, duplicates
counted per source object, files renamed into events/ whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from ingest_fixtures import CASES

from pipeline.parse import ObjectParser
from pipeline.sqlfile import SqlFile
from pipeline.warehouse import manifest
from pipeline.warehouse.commit import KnownIds, commit_batch
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from pipeline.warehouse.manifest import ManifestEntry
from pipeline.warehouse.stage import StagedFile, stage_table

ROW_GROUP = 1000


def staged(layout: Layout, name: str, run: str, task: int) -> list[StagedFile]:
    path = CASES / "dedup" / name
    parser = ObjectParser(str(path), run)
    table = next(iter(parser.tables(path)))
    return stage_table(table, layout.staging / run, f"{run}-{task}", row_group_rows=ROW_GROUP)


def kept(layout: Layout) -> list[tuple[str, str, str, int]]:
    with duckdb.connect() as con:
        return con.execute(
            "SELECT event_id, event_name, regexp_extract(source_uri, '[^/]+$'), "
            "source_record_index FROM read_parquet(?, hive_partitioning = true) ORDER BY 1",
            [str(layout.events / EVENTS_GLOB)],
        ).fetchall()


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout.at(tmp_path / "wh")
    layout.ensure()
    return layout


def test_one_row_per_event_id_within_a_batch(layout: Layout) -> None:
    # b is staged first: the kept copy depends on source_uri, not on staging order.
    files = staged(layout, "b.json", "run1", 0) + staged(layout, "a.json", "run1", 1)
    with duckdb.connect() as con:
        result = commit_batch(files, layout, con, ROW_GROUP)
    assert (result.written, result.duplicates_in_batch, result.duplicates_in_warehouse) == (4, 3, 0)
    assert dict(result.dropped_by_uri) == {str(CASES / "dedup" / "b.json"): 3}
    assert kept(layout) == [
        ("dup-1", "FromA", "a.json", 0),
        ("dup-2", "FromA", "a.json", 1),
        ("dup-3", "FromA", "a.json", 2),
        # Two copies in one file: the first record wins.
        ("dup-4", "FromB-first", "b.json", 2),
    ]
    # Every staged file was renamed or removed; nothing half-written in events/.
    assert [p for p in (layout.staging / "run1").rglob("*") if p.is_file()] == []
    assert [
        p.name for p in layout.events.rglob("*") if p.is_file() and not p.name.endswith(".parquet")
    ] == []
    for path in layout.events.rglob("*.parquet"):
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_copy_already_in_the_warehouse_wins_across_runs(layout: Layout) -> None:
    with duckdb.connect() as con:
        first = commit_batch(staged(layout, "b.json", "run1", 0), layout, con, ROW_GROUP)
        second = commit_batch(staged(layout, "a.json", "run2", 0), layout, con, ROW_GROUP)
        again = commit_batch(staged(layout, "a.json", "run3", 0), layout, con, ROW_GROUP)
    assert (first.written, first.duplicates_in_batch, first.duplicates_in_warehouse) == (3, 1, 0)
    assert (second.written, second.duplicates_in_batch, second.duplicates_in_warehouse) == (1, 0, 2)
    assert (again.written, again.duplicates_in_batch, again.duplicates_in_warehouse) == (0, 0, 3)
    assert dict(again.dropped_by_uri) == {str(CASES / "dedup" / "a.json"): 3}
    assert kept(layout) == [
        ("dup-1", "FromA", "a.json", 0),
        ("dup-2", "FromB", "b.json", 0),
        ("dup-3", "FromB", "b.json", 1),
        ("dup-4", "FromB-first", "b.json", 2),
    ]
    # A fully duplicate staged file never reaches events/.
    assert sorted(p.name for p in layout.events.rglob("*.parquet")) == [
        "part-run1-0.parquet",
        "part-run2-0.parquet",
    ]


def test_hashes_carried_between_the_commits_of_a_run(layout: Layout) -> None:
    # One run, three commits sharing KnownIds: the first reads events/ (empty), the later ones
    # must see the first one's eventIDs through the hashes it added, exactly as a fresh read.
    known = KnownIds()
    with duckdb.connect() as con:
        first = commit_batch(staged(layout, "b.json", "run1", 0), layout, con, ROW_GROUP, known)
        assert known.hashes is not None
        assert sum(t.num_rows for t in known.hashes) == 4
        second = commit_batch(staged(layout, "a.json", "run1", 1), layout, con, ROW_GROUP, known)
        again = commit_batch(staged(layout, "b.json", "run1", 2), layout, con, ROW_GROUP, known)
    assert (first.written, first.duplicates_in_batch, first.duplicates_in_warehouse) == (3, 1, 0)
    assert (second.written, second.duplicates_in_batch, second.duplicates_in_warehouse) == (1, 0, 2)
    # b.json holds dup-4 twice: its second copy counts as a repeat within the batch.
    assert (again.written, again.duplicates_in_batch, again.duplicates_in_warehouse) == (0, 1, 3)
    assert [row[0] for row in kept(layout)] == ["dup-1", "dup-2", "dup-3", "dup-4"]


def test_batch_without_repeated_hashes_is_renamed_without_the_exact_check(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.warehouse.commit as commit_module

    real_load = commit_module.load_internal
    loaded: list[str] = []

    def load(relative: str) -> SqlFile:
        loaded.append(relative)
        return real_load(relative)

    monkeypatch.setattr(commit_module, "load_internal", load)
    with duckdb.connect() as con:
        result = commit_batch(staged(layout, "a.json", "run1", 0), layout, con, ROW_GROUP)
    assert (result.written, result.duplicates_in_batch, result.duplicates_in_warehouse) == (3, 0, 0)
    assert "warehouse/staged_duplicates" not in loaded


def test_staged_files_without_their_event_ids_are_read(layout: Layout) -> None:
    # StagedFile.event_ids is an optimisation: without it the commit reads the files.
    files = [
        replace(f, event_ids=None)
        for f in staged(layout, "b.json", "run1", 0) + staged(layout, "a.json", "run1", 1)
    ]
    with duckdb.connect() as con:
        result = commit_batch(files, layout, con, ROW_GROUP)
    assert (result.written, result.duplicates_in_batch, result.duplicates_in_warehouse) == (4, 3, 0)
    assert [row[:2] for row in kept(layout)] == [
        ("dup-1", "FromA"),
        ("dup-2", "FromA"),
        ("dup-3", "FromA"),
        ("dup-4", "FromB-first"),
    ]


def test_empty_batch_writes_nothing(layout: Layout) -> None:
    with duckdb.connect() as con:
        result = commit_batch([], layout, con, ROW_GROUP)
    assert (result.written, result.duplicates_in_batch, result.duplicates_in_warehouse) == (0, 0, 0)
    assert list(layout.events.iterdir()) == []


def _record(layout: Layout, run: str, names: list[str]) -> None:
    """The manifest entries a run writes after its commit, for dedup case files `names`."""
    entries = []
    for name in names:
        path = CASES / "dedup" / name
        parser = ObjectParser(str(path), run)
        list(parser.tables(path))
        entries.append(
            ManifestEntry(uri=str(path), kind="events", size=1, version="v",
                          sha256=parser.sha256, status="ingested", reason=None, records=0,
                          events_written=0, duplicates=0, quarantined_records=0,
                          outside_period=0, period_since=None, period_until=None, run_id=run,
                          recorded_at=datetime.now(UTC))
        )  # fmt: skip
    manifest.append(layout.manifest, f"part-{run}", entries)


def test_rows_a_killed_run_committed_are_recovered_not_duplicates(layout: Layout) -> None:
    """A run killed after renaming its staged files into events/, before its manifest: the next
    run reads those objects again. Their rows in events/ are the same records (eventID, object,
    content hash, record index) written by a run no manifest entry accounts for: recovered
    (written), not duplicates. Once a run has recorded the object, they are its own: read
    again, they are duplicates."""
    killed, rerun, later = (f"2024030{d}T080000Z-0000000{d}" for d in (1, 2, 3))
    a = str(CASES / "dedup" / "a.json")
    b = str(CASES / "dedup" / "b.json")
    with duckdb.connect() as con:
        first = commit_batch(staged(layout, "b.json", killed, 0), layout, con, ROW_GROUP)
        assert (first.written, first.duplicates_in_batch, first.recovered) == (3, 1, 0)
        # killed here: no manifest. The re-run reads b.json again, and a.json with it.
        files = staged(layout, "a.json", rerun, 0) + staged(layout, "b.json", rerun, 1)
        again = commit_batch(files, layout, con, ROW_GROUP)
        _record(layout, rerun, ["a.json", "b.json"])
        touched = commit_batch(staged(layout, "b.json", later, 0), layout, con, ROW_GROUP)
    # b.json's three rows in events/ are recovered, though a.json's copies of dup-2 and dup-3
    # come first in the batch's order: those are the duplicates (of the copies in events/).
    assert (again.written, again.recovered, again.duplicates_in_batch) == (1, 3, 1)
    assert again.duplicates_in_warehouse == 2
    assert (dict(again.recovered_by_uri), dict(again.dropped_by_uri)) == ({b: 3}, {a: 2, b: 1})
    assert (touched.written, touched.recovered, touched.duplicates_in_warehouse) == (0, 0, 3)
    assert touched.duplicates_in_batch == 1
    assert kept(layout) == [
        ("dup-1", "FromA", "a.json", 0),
        ("dup-2", "FromB", "b.json", 0),
        ("dup-3", "FromB", "b.json", 1),
        ("dup-4", "FromB-first", "b.json", 2),
    ]


def test_rows_of_another_version_of_the_object_stay_duplicates(layout: Layout) -> None:
    """The same eventIDs at the same places of the same object, but from other content (the
    object was rewritten since): those rows are no recovered commit."""
    killed, rerun = "20240301T080000Z-00000001", "20240302T080000Z-00000002"
    path = layout.root.parent / "a.json"
    text = (CASES / "dedup" / "a.json").read_text()
    path.write_text(text)
    with duckdb.connect() as con:
        parser = ObjectParser(str(path), killed)
        table = next(iter(parser.tables(path)))
        commit_batch(
            stage_table(table, layout.staging / killed, killed, row_group_rows=ROW_GROUP),
            layout,
            con,
            ROW_GROUP,
        )
        path.write_text(text.replace("FromA", "FromA-rewritten"))
        parser = ObjectParser(str(path), rerun)
        table = next(iter(parser.tables(path)))
        again = commit_batch(
            stage_table(table, layout.staging / rerun, rerun, row_group_rows=ROW_GROUP),
            layout,
            con,
            ROW_GROUP,
        )
    assert (again.written, again.recovered, again.duplicates_in_warehouse) == (0, 0, 3)
