"""The source events kept per events file (pipeline/attribute/source_cache.py): a rebuild
extracts only the files no earlier one did, and what it reads back gives the answers a
rebuild from scratch gives, whatever a killed rebuild left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.attribute import source_cache
from pipeline.attribute.classify import AttributionSummary, attribute_warehouse
from pipeline.attribute.source_cache import cache_key, open_cache
from pipeline.errors import WarehouseError
from pipeline.warehouse.files import EVENTS_PARQUET, write_parquet
from pipeline.warehouse.layout import EVENTS_GLOB, Layout
from tests.attribute.helpers import CASES, ingest, rows, settings_for

# Cases with sessions, chains, MCP links and grants, role tags and federated principals:
# every consumer of the source events.
CASE_NAMES = (
    "agent_chain",
    "transitive_tags_second_account",
    "managed_mcp_documented_shape",
    "oauth_grant_links_later_events",
    "tag_role_during_period",
    "saml_sessions",
    "agent_untags_own_role",
)
# Every derived table and the verdicts.
TABLES = (
    "sessions",
    "mcp_tool_calls",
    "mcp_grants",
    "role_agent_observations",
    "role_agent_intervals",
    "events_classified",
)


def case(name: str) -> Path:
    return CASES / f"{name}.json"


def everything(warehouse: Path) -> dict[str, list[dict[str, Any]]]:
    return {t: rows(warehouse, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def attribute(warehouse: Path) -> AttributionSummary:
    return attribute_warehouse(settings_for(warehouse))


def batches(warehouse: Path) -> list[str]:
    folders = list(Layout.at(warehouse).source_cache.iterdir())
    assert len(folders) == 1
    return sorted(p.name for p in folders[0].iterdir())


def from_scratch(warehouse: Path) -> dict[str, list[dict[str, Any]]]:
    """What a rebuild that extracts every file gives."""
    shutil.rmtree(Layout.at(warehouse).source_cache)
    summary = attribute(warehouse)
    assert summary.source_files["kept"] == 0
    return everything(warehouse)


def test_a_second_rebuild_extracts_nothing_and_answers_the_same(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    ingest([case(n) for n in CASE_NAMES], root)
    files = len(list(Layout.at(root).events.glob(EVENTS_GLOB)))
    kept = everything(root)
    assert sum(len(t) for t in kept.values()) > 50
    summary = attribute(root)
    assert summary.source_files == {"kept": files, "extracted": 0}
    assert everything(root) == kept
    assert from_scratch(root) == kept


def test_an_ingest_extracts_only_its_new_files(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    first, second = CASE_NAMES[:3], CASE_NAMES[3:]
    ingest([case(n) for n in first], root)
    before = len(list(Layout.at(root).events.glob(EVENTS_GLOB)))
    assert len(batches(root)) == 3  # one batch: its source rows, values and manifest
    ingest([case(n) for n in second], root)
    after = len(list(Layout.at(root).events.glob(EVENTS_GLOB)))
    # The ingest's rebuild kept the first files' rows and extracted the new files'.
    summary = attribute(root)
    assert summary.source_files == {"kept": after, "extracted": 0}
    assert after > before
    assert len(batches(root)) == 6
    incremental = everything(root)
    all_at_once = tmp_path / "all"
    ingest([case(n) for n in CASE_NAMES], all_at_once)
    assert _by_event(incremental) == _by_event(everything(all_at_once))
    assert from_scratch(root) == incremental


def _by_event(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """Warehouses ingested in different runs differ in their ingest runs only."""
    out: dict[str, list[Any]] = {}
    for table, found in tables.items():
        out[table] = [{k: v for k, v in r.items() if k != "ingest_run_id"} for r in found]
    return out


def test_what_a_killed_rebuild_left_is_never_read(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    ingest([case(n) for n in CASE_NAMES], root)
    expected = everything(root)
    cache = Layout.at(root).source_cache
    (folder,) = cache.iterdir()
    (manifest,) = folder.glob("batch-*.json")
    batch = manifest.name.removesuffix(".json")
    # A batch whose manifest was never written (killed between its files and its manifest),
    # holding wrong rows: copies of the real batch's.
    for suffix in ("source", "values"):
        shutil.copy(folder / f"{batch}.{suffix}.parquet", folder / f"batch-9{suffix}.parquet")
        shutil.copy(
            folder / f"{batch}.{suffix}.parquet",
            folder / f"batch-99999999999999999999-x.{suffix}.parquet",
        )
    # A manifest whose files are gone, listing every file (newer than the real one).
    listed = json.loads(manifest.read_text())
    (folder / "batch-99999999999999999999-y.json").write_text(json.dumps(listed))
    # The cache of SQL that is no longer the extraction's.
    (cache / "0123456789abcdef").mkdir()
    (cache / "0123456789abcdef" / "batch-1.json").write_text("{}")
    summary = attribute(root)
    files = len(list(Layout.at(root).events.glob(EVENTS_GLOB)))
    assert summary.source_files == {"kept": files, "extracted": 0}
    assert everything(root) == expected
    assert batches(root) == sorted(
        [manifest.name, f"{batch}.source.parquet", f"{batch}.values.parquet"]
    )
    assert [p.name for p in cache.iterdir()] == [folder.name]


def test_an_unreadable_manifest_is_extracted_again(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    ingest([case(n) for n in CASE_NAMES], root)
    expected = everything(root)
    (folder,) = Layout.at(root).source_cache.iterdir()
    (manifest,) = folder.glob("batch-*.json")
    manifest.write_text('{"format": 1, "files": ')
    summary = attribute(root)
    assert summary.source_files["kept"] == 0
    assert everything(root) == expected
    assert len(batches(root)) == 3


def test_batches_past_the_bound_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_cache, "MAX_BATCHES", 2)
    root = tmp_path / "warehouse"
    for name in CASE_NAMES:
        ingest([case(name)], root)
        # Never more than the bound: the third batch merged all into one.
        assert len(batches(root)) // 3 <= 2
    incremental = everything(root)
    summary = attribute(root)
    assert summary.source_files["extracted"] == 0
    assert everything(root) == incremental
    assert from_scratch(root) == incremental


def test_another_extraction_starts_afresh(tmp_path: Path) -> None:
    events = tmp_path / "events"
    (events / "a=1" / "b=2").mkdir(parents=True)
    one = events / "a=1" / "b=2" / "part-1.parquet"
    one.write_bytes(b"x" * 10)
    root = tmp_path / "cache"
    cache = open_cache(root, events, [one], "SELECT 1")
    assert cache.new == [0]
    assert cache.folder.name == cache_key("SELECT 1")
    (cache.folder / "batch-1.json").write_text("{}")
    other = open_cache(root, events, [one], "SELECT 2")
    assert [p.name for p in root.iterdir()] == [cache_key("SELECT 2")]
    assert other.new == [0]
    # A file of the same name and another size is another file.
    before = source_cache.file_key(events, one)
    one.write_bytes(b"y" * 11)
    assert source_cache.file_key(events, one) != before


def test_a_cache_that_cannot_be_written_names_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    ingest([case(CASE_NAMES[0])], root)
    cache = Layout.at(root).source_cache
    shutil.rmtree(cache)
    cache.write_text("not a folder")
    with pytest.raises(WarehouseError) as caught:
        attribute(root)
    assert str(cache) in str(caught.value)


@pytest.mark.parametrize(("kind", "keep"), [("source", 0), ("values", 0.5)])
def test_a_damaged_kept_batch_is_extracted_again(tmp_path: Path, kind: str, keep: float) -> None:
    """A batch whose manifest was written but whose Parquet file is not whole (a power cut
    before the file reached the disk, a disk error): the rebuild extracts its files again,
    instead of failing every later rebuild on it."""
    root = tmp_path / "warehouse"
    ingest([case(n) for n in CASE_NAMES], root)
    expected = everything(root)
    (folder,) = Layout.at(root).source_cache.iterdir()
    (damaged,) = folder.glob(f"batch-*.{kind}.parquet")
    data = damaged.read_bytes()
    damaged.write_bytes(data[: int(len(data) * keep)])
    summary = attribute(root)
    assert summary.source_files["kept"] == 0
    assert everything(root) == expected
    assert damaged.name not in batches(root)


def test_a_file_rewritten_at_its_size_is_extracted_again(tmp_path: Path) -> None:
    """An events file written again under its name with other contents and, as it happens,
    the same size: its kept rows are not taken for its own."""
    root = tmp_path / "warehouse"
    ingest([case("agent_chain")], root)
    layout = Layout.at(root)
    path = next(
        f
        for f in sorted(layout.events.glob(EVENTS_GLOB))
        if any(
            '"Agent"' in (v or "")
            for v in pq.read_table(f, columns=["request_parameters"]).column(0).to_pylist()
        )
    )
    size = path.stat().st_size
    table = pq.read_table(path, partitioning=None)
    column = table.schema.get_field_index("request_parameters")
    for other in ("Agenx", "Agenz", "Agenq", "Agenw", "Agenv", "Agenk"):
        changed = table.set_column(
            column,
            table.schema.field(column),
            pc.replace_substring(table.column(column), '"Agent"', f'"{other}"'),
        )
        write_parquet(changed, path, row_group_rows=122_880, options=EVENTS_PARQUET)
        if path.stat().st_size == size:
            break
    assert path.stat().st_size == size, "no rewrite of the same size"
    attribute(root)
    rebuilt = everything(root)
    assert from_scratch(root) == rebuilt


def test_a_warehouse_under_a_key_value_folder(tmp_path: Path) -> None:
    """Kept rows are read as written, whatever `key=value` folders the warehouse's path holds
    (DuckDB would read them as Hive partition columns)."""
    root = tmp_path / "file_key=1" / "warehouse"
    ingest([case(n) for n in CASE_NAMES[:2]], root)
    attribute(root)
    kept = everything(root)
    assert from_scratch(root) == kept


def test_kept_rows_that_cannot_be_read_name_the_cache(tmp_path: Path) -> None:
    """A kept batch whose footer reads but whose pages do not (a disk error): the one line the
    user sees says what to remove."""
    root = tmp_path / "warehouse"
    ingest([case(n) for n in CASE_NAMES], root)
    (folder,) = Layout.at(root).source_cache.iterdir()
    (damaged,) = folder.glob("batch-*.source.parquet")
    data = bytearray(damaged.read_bytes())
    data[4 : len(data) // 8] = bytes(len(data) // 8 - 4)
    damaged.write_bytes(bytes(data))
    with pytest.raises(WarehouseError) as caught:
        attribute(root)
    assert caught.value.hint is not None
    assert str(folder) in caught.value.hint
    assert "\n" not in caught.value.one_line()
