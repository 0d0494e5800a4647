"""Attribution generations (derived/gen-*/): a rebuild writes a new one and publishes it through
derived/CURRENT. Generations no reader can be reading must not pile up: each is about the size of
events/, so failed rebuilds on a full disk (or with the database held open) filled it until
freeing space no longer let a rebuild succeed. Readers keep reading what they read: the database's
views may still read the previous generation while CURRENT names a newer one (a rebuild that
could not re-point them)."""

from __future__ import annotations

import errno
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from ingest_fixtures import copy_cases, held_open, ingest, rows, settings

import pipeline.warehouse.connect
from pipeline.attribute import classify
from pipeline.attribute.classify import attribute_warehouse
from pipeline.attribute.freshness import attribute_command, reader_notice
from pipeline.attribute.rule_columns import VERDICT_COLUMNS
from pipeline.errors import AttributionPendingError, QueryError, WarehouseError
from pipeline.iam.store import import_snapshots
from pipeline.query.library import run_query
from pipeline.warehouse.connect import (
    DERIVED_VIEWS,
    GENERATION_FORMAT,
    has_attribution,
    remove_unused_generations,
)
from pipeline.warehouse.layout import Layout

_GENERATION = re.compile(r"derived[\\/](gen-[^\\/'\"]+)")
FIRST, SECOND, THIRD, FOURTH = (
    "good_cloudtrail.json.gz",  # 3 events
    "array_of_records.json",  # 2
    "bom_prefixed.json",  # 1
    "gzip_named.json",  # 1
)


def generations(warehouse: Path) -> list[str]:
    return sorted(p.name for p in (warehouse / "derived").glob("gen-*"))


def current(warehouse: Path) -> str:
    return (warehouse / "derived" / "CURRENT").read_text().strip()


def classified(warehouse: Path) -> int:
    """events_classified's rows, read as an analyst's DuckDB client reads them."""
    found: int = rows(warehouse, "SELECT count(*) AS n FROM events_classified")[0]["n"]
    return found


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    warehouse = tmp_path / "wh"
    ingest(copy_cases([FIRST], tmp_path / "first"), warehouse)
    assert len(generations(warehouse)) == 1
    return warehouse


def _leftovers(warehouse: Path) -> tuple[str, str]:
    """What killed rebuilds leave: one killed while writing its generation (no FORMAT, never
    published), and an older generation that one killed right after marking the warehouse
    current did not get to remove (published once, read by no one now)."""
    derived = warehouse / "derived"
    partial = derived / "gen-20990101T000000-dead01"
    (partial / "events_classified" / "recipient_account_id=1").mkdir(parents=True)
    (partial / "events_classified" / "recipient_account_id=1" / "part.parquet").write_bytes(
        b"x" * 100_000
    )
    old = derived / "gen-20000101T000000-old001"
    shutil.copytree(derived / current(warehouse), old)
    return partial.name, old.name


def test_a_rebuild_first_removes_the_generations_no_reader_reads(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = current(warehouse)
    _leftovers(warehouse)
    seen: list[list[str]] = []
    rebuild = classify._rebuild_and_repoint

    def seeing(*args: Any) -> classify.AttributionSummary:
        seen.append(generations(warehouse))
        return rebuild(*args)

    monkeypatch.setattr(classify, "_rebuild_and_repoint", seeing)
    summary = attribute_warehouse(settings(warehouse))
    assert seen == [[published]]  # before it wrote anything
    assert generations(warehouse) == [summary.generation] == [current(warehouse)]
    assert classified(warehouse) == 3


def test_a_failed_rebuild_removes_its_own_generation(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk as the rebuild publishes (everything else written): its generation goes on
    the way out; the published one stays, and readers read it as before."""
    published = current(warehouse)

    def full_disk(layout: Layout, generation: str) -> None:
        assert generations(warehouse) == sorted([published, generation])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(classify, "_publish", full_disk)
    with pytest.raises(WarehouseError) as caught:
        attribute_warehouse(settings(warehouse))
    assert caught.value.message == f"cannot write the warehouse {warehouse}: its disk is full"
    assert generations(warehouse) == [published] == [current(warehouse)]
    assert classified(warehouse) == 3


@pytest.mark.parametrize("read_only", [True, False], ids=["held-read-only", "held-for-writing"])
def test_a_rebuild_that_could_not_re_point_the_views_keeps_what_readers_read(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool
) -> None:
    """An analyst's DuckDB client holds the database (`duckdb FILE` holds it for writing): each
    ingest rebuilds but cannot re-point the views, which still read the first generation. Each
    left a whole generation behind (held for writing, every one: which one the views read could
    not be looked at); now CURRENT names the first again and the new one goes, the warehouse
    is marked stale (readers are told), and the analyst's client goes on reading."""
    first = current(warehouse)
    monkeypatch.setattr(pipeline.warehouse.connect, "DATABASE_WAIT_SECONDS", 0.2)
    with held_open(warehouse / "agenttrail.duckdb", read_only=read_only):
        for n, case in enumerate([SECOND, THIRD, FOURTH]):
            with pytest.raises(AttributionPendingError) as caught:
                ingest(copy_cases([case], tmp_path / f"later{n}"), warehouse)
            assert " new events are committed, but attribution could not run: " in (
                caught.value.message
            )
            assert generations(warehouse) == [first] == [current(warehouse)]
            assert not (warehouse / "derived" / "ATTRIBUTED_WITH").exists()
    assert classified(warehouse) == 3  # the views still read the first generation
    caught_up = ingest([tmp_path / "later2"], warehouse)
    assert (caught_up.objects_unchanged, caught_up.attribution["events"]) == (1, 7)
    assert generations(warehouse) == [current(warehouse)]
    assert classified(warehouse) == 7


def test_a_generation_left_after_marking_current_goes_with_the_next_ingest(
    warehouse: Path, tmp_path: Path
) -> None:
    """A rebuild killed between marking the warehouse current and removing the older
    generation: the next ingest finds nothing to classify, and removes it all the same."""
    _leftovers(warehouse)
    again = ingest([tmp_path / "first"], warehouse)
    assert again.attribution == {"skipped": "no new events since the last classification"}
    assert generations(warehouse) == [current(warehouse)]
    assert classified(warehouse) == 3


def test_where_the_database_cannot_be_read_published_generations_stay(warehouse: Path) -> None:
    """Which generation the views read is known from the database only: where it cannot be
    read, a generation once published may be in use, and only unpublished ones go."""
    _, old = _leftovers(warehouse)
    (warehouse / "agenttrail.duckdb").write_bytes(b"")
    remove_unused_generations(Layout.at(warehouse))
    assert generations(warehouse) == sorted([old, current(warehouse)])


def test_a_rebuild_interrupted_as_it_re_points_leaves_the_views_on_one_generation_marked_stale(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or any failure) between two of the views the re-pointing re-creates: the views
    all still read the first generation (one transaction), CURRENT names it again, the new one
    goes, and the warehouse is marked stale, so that readers are told and the next ingest,
    with nothing new to read, rebuilds."""
    first = current(warehouse)
    original = pipeline.warehouse.connect._create_view
    made: list[str] = []

    def interrupted(con: Any, statement: str, files: Any) -> None:
        made.append(statement)
        if len(made) == 3:
            raise KeyboardInterrupt
        original(con, statement, files)

    logs = copy_cases([SECOND], tmp_path / "later")
    connect = classify.connect

    def re_pointing(layout: Layout, **options: Any) -> Any:
        """The writer's connection that re-points the views, after the rebuild."""
        monkeypatch.setattr(pipeline.warehouse.connect, "_create_view", interrupted)
        return connect(layout, **options)

    monkeypatch.setattr(classify, "connect", re_pointing)
    with pytest.raises(KeyboardInterrupt):
        ingest(logs, warehouse)
    monkeypatch.undo()
    assert len(made) == 3
    assert generations(warehouse) == [first] == [current(warehouse)]
    assert not (warehouse / "derived" / "ATTRIBUTED_WITH").exists()
    viewed = {
        name
        for r in rows(warehouse, "SELECT sql FROM duckdb_views() WHERE NOT internal")
        for name in _GENERATION.findall(str(r["sql"]))
    }
    assert viewed == {first}
    assert classified(warehouse) == 3
    again = ingest(logs, warehouse)
    assert (again.objects_unchanged, again.attribution["events"]) == (1, 5)
    assert classified(warehouse) == 5


def test_an_ingest_with_nothing_new_makes_a_damaged_database_again(
    warehouse: Path, tmp_path: Path
) -> None:
    """The database emptied (a disk error, a run killed as it created it): an ingest that
    finds nothing new and nothing to classify makes it again, views and all."""
    (warehouse / "agenttrail.duckdb").write_bytes(b"")
    again = ingest([tmp_path / "first"], warehouse)
    assert again.attribution == {"skipped": "no new events since the last classification"}
    assert classified(warehouse) == 3


def test_an_import_with_nothing_new_makes_a_damaged_database_again(warehouse: Path) -> None:
    """The same for an IAM import of a snapshot already present."""
    snapshot = Path(__file__).parent.parent / "cases" / "attribute" / "snapshot_agent_role.iam.json"
    taken_at = datetime(2026, 10, 15, tzinfo=UTC)
    layout = Layout.at(warehouse)
    import_snapshots([snapshot], layout, taken_at, settings(warehouse))
    (warehouse / "agenttrail.duckdb").write_bytes(b"")
    again = import_snapshots([snapshot], layout, taken_at, settings(warehouse))
    assert again.current
    assert classified(warehouse) == 3


def test_a_generation_without_the_role_columns_is_rebuilt_by_the_next_ingest(
    warehouse: Path, tmp_path: Path
) -> None:
    """A generation of FORMAT 4, written before the verdict columns role_account_id_fallback
    and role_name_fallback (rules revision 13): this version's events_classified view cannot
    read its files. It counts as no generation (readers are told to classify, not that a file
    is damaged), and the next ingest, with nothing new to read, rebuilds it."""
    folder = warehouse / "derived" / current(warehouse)
    for path in (folder / "events_classified").rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop(["role_account_id_fallback", "role_name_fallback"]), path)
    (folder / "FORMAT").write_text("4")
    assert not has_attribution(Layout.at(warehouse))
    # Readers are told why (the query's own error only says there is no attribution).
    assert reader_notice(settings(warehouse)) == (
        "events_classified was written by another version of agenttrail (generation format 4;"
        " this version reads 6), so it cannot be read until it is rebuilt;"
        f" run {attribute_command(settings(warehouse))} for complete verdicts"
    )
    # A named query fails before its notices are printed: its error says the same.
    with pytest.raises(QueryError) as caught:
        run_query(settings(warehouse), "principals")
    assert caught.value.hint == (
        "events_classified was written by another version of agenttrail (generation format 4;"
        f" this version reads 6): run {attribute_command(settings(warehouse))}"
    )
    again = ingest([tmp_path / "first"], warehouse)
    assert (again.objects_unchanged, again.attribution["events"]) == (1, 3)
    assert (warehouse / "derived" / current(warehouse) / "FORMAT").read_text() == "6"
    assert reader_notice(settings(warehouse)) is None
    assert len(run_query(settings(warehouse), "principals").table) > 0
    assert rows(warehouse, "SELECT count(role_name) AS n FROM events_classified") == [{"n": 0}]


def test_a_generation_of_the_previous_format_is_rebuilt_by_the_next_ingest(
    warehouse: Path, tmp_path: Path
) -> None:
    """A warehouse whose published generation an earlier version wrote, of FORMAT 3: it has no
    role_agent_intervals.parquet (format 4 added it), so its view cannot be defined. It counts
    as no generation: this version's readers are told to classify (not a failure on that view),
    an analyst's DuckDB client still reads the old generation through the stored views, and the
    next ingest, with nothing new to read, rebuilds it."""
    published = current(warehouse)
    folder = warehouse / "derived" / published
    (folder / "role_agent_intervals.parquet").unlink()
    (folder / "FORMAT").write_text("3")
    with duckdb.connect(str(warehouse / "agenttrail.duckdb")) as con:
        con.execute("DROP VIEW role_agent_intervals")  # the earlier version made none
    layout = Layout.at(warehouse)
    assert not has_attribution(layout)
    with pytest.raises(QueryError) as caught:
        run_query(settings(warehouse), "principals")
    assert caught.value.hint == (
        "events_classified was written by another version of agenttrail (generation format 3;"
        f" this version reads 6): run {attribute_command(settings(warehouse))}"
    )
    assert classified(warehouse) == 3
    again = ingest([tmp_path / "first"], warehouse)
    assert (again.objects_unchanged, again.attribution["events"]) == (1, 3)
    rebuilt = current(warehouse)
    assert generations(warehouse) == [rebuilt] != [published]
    assert (warehouse / "derived" / rebuilt / "FORMAT").read_text() == GENERATION_FORMAT == "6"
    assert (warehouse / "derived" / rebuilt / "role_agent_intervals.parquet").is_file()
    assert has_attribution(layout)
    assert len(run_query(settings(warehouse), "principals").table) > 0
    assert rows(warehouse, "SELECT count(*) AS n FROM role_agent_intervals") == [{"n": 0}]


def test_the_generation_format_names_the_verdict_columns() -> None:
    """A tripwire: the events_classified view reads every verdict column, so a generation
    written without one of them must count as none (a FORMAT of its own), or the view fails
    on it as if a file were damaged. Changing VERDICT_COLUMNS means raising GENERATION_FORMAT
    in pipeline/warehouse/connect.py and updating both here."""
    assert (GENERATION_FORMAT, VERDICT_COLUMNS) == (
        "6",
        (
            "actor_kind",
            "access_path",
            "client",
            "agent_name",
            "human_id",
            "mcp_tool",
            "session_joined",
            "session_root",
            "role_account_id_fallback",
            "role_name_fallback",
            "classified_by",
            "evidence_detail",
            "confidence",
            "rules_version",
        ),
    )



def test_the_generation_format_names_the_derived_views() -> None:
    """A tripwire as above: a view per derived file, so a generation written without one of
    them must count as none. Changing DERIVED_VIEWS means raising GENERATION_FORMAT."""
    assert (GENERATION_FORMAT, DERIVED_VIEWS) == (
        "6",
        (
            "sessions",
            "mcp_tool_calls",
            "mcp_grants",
            "role_agent_observations",
            "role_agent_intervals",
            "attribution_rules",
            "attribution_run",
            "session_key_conflicts",
        ),
    )
