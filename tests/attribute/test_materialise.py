"""events_classified as materialised: every column of events, unchanged, plus the verdicts; for
files written by an older version with fewer columns, and for an empty warehouse."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.attribute import classified_files, classify
from pipeline.attribute.classify import attribute_warehouse
from pipeline.attribute.verdict_stream import PartitionVerdicts
from pipeline.errors import OutOfMemoryError
from pipeline.warehouse.connect import CLASSIFIED_FOLDER, UNIFORM_SCHEMA
from pipeline.warehouse.layout import EVENTS_GLOB, Layout

from .helpers import CASES, ingest, rows, settings_for

VERDICT_COLUMNS = [
    "actor_kind",
    "access_path",
    "client",
    "agent_name",
    "human_id",
    "mcp_tool",
    "session_joined",
    "session_root",
    "classified_by",
    "evidence",
    "confidence",
    "rules_version",
]
# Composed by the view from the event's identity columns (queries/views/50_events_classified.sql).
VIEW_COLUMNS = ["principal", "role_account_id", "role_name"]
FILES = [CASES / "transitive_tags_second_account.json", CASES / "console_session.json"]


def columns(warehouse: Path, view: str) -> list[str]:
    return [r["column_name"] for r in rows(warehouse, f"DESCRIBE {view}")]


def differences(warehouse: Path) -> int:
    """Rows of events and of events_classified without its verdicts that the other lacks."""
    verdicts = ", ".join([*VERDICT_COLUMNS, *VIEW_COLUMNS])
    found = rows(
        warehouse,
        f"SELECT count(*) AS n FROM ("
        f"(SELECT * FROM events EXCEPT ALL"
        f" SELECT * EXCLUDE ({verdicts}) FROM events_classified)"
        f" UNION ALL (SELECT * EXCLUDE ({verdicts}) FROM events_classified EXCEPT ALL"
        f" SELECT * FROM events))",
    )
    return int(found[0]["n"])


def test_every_event_column_is_kept(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    ingest(FILES, warehouse)
    event_columns = columns(warehouse, "events")
    classified = columns(warehouse, "events_classified")
    assert sorted(classified) == sorted([*event_columns, *VERDICT_COLUMNS, *VIEW_COLUMNS])
    assert differences(warehouse) == 0
    # One events_classified file per partition folder of events/, named after its first events
    # file, holding that folder's events files' rows in order.
    layout = Layout.at(warehouse)
    current = layout.derived / (layout.derived / "CURRENT").read_text().strip()
    classified = current / CLASSIFIED_FOLDER
    partitions: dict[Path, list[Path]] = {}
    for events_file in sorted(layout.events.glob(EVENTS_GLOB)):
        partitions.setdefault(events_file.parent, []).append(events_file)
    assert sorted(classified.glob(EVENTS_GLOB)) == sorted(
        classified / files[0].relative_to(layout.events) for files in partitions.values()
    )
    for files in partitions.values():
        ids = pq.read_table(classified / files[0].relative_to(layout.events), columns=["event_id"])
        expected = [i for f in files for i in pq.read_table(f, columns=["event_id"])[0].to_pylist()]
        assert ids.column(0).to_pylist() == expected


def test_events_added_after_the_rebuild_wait_for_the_next(tmp_path: Path) -> None:
    """A file that reaches events/ after a rebuild (an ingest killed before its attribution)
    is not in events_classified, and the rows that are keep their own verdicts."""
    warehouse = tmp_path / "warehouse"
    settings = ingest(FILES[:1], warehouse)
    before = rows(warehouse, "SELECT event_id, classified_by FROM events_classified ORDER BY 1")
    later = tmp_path / "later"
    ingest(FILES[1:], later)
    layout = Layout.at(warehouse)
    for path in Layout.at(later).events.glob(EVENTS_GLOB):
        target = layout.events / path.relative_to(Layout.at(later).events)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert rows(warehouse, "SELECT count(*) AS n FROM events") == [{"n": 15}]
    assert (
        rows(warehouse, "SELECT event_id, classified_by FROM events_classified ORDER BY 1")
        == before
    )
    attribute_warehouse(settings)
    assert rows(warehouse, "SELECT count(*) AS n FROM events_classified") == [{"n": 15}]
    assert differences(warehouse) == 0


READ_NOW = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
"""


def test_readers_can_open_the_database_while_the_rebuild_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild works on an in-memory connection; the database file is opened only to
    re-point the views, so an analyst's client is not shut out for the whole rebuild."""
    warehouse = tmp_path / "warehouse"
    settings = ingest(FILES, warehouse)
    seen: list[subprocess.CompletedProcess[str]] = []
    rebuild = classify.rebuild_attribution

    def rebuild_then_read(*args: Any, **kwargs: Any) -> classify.AttributionSummary:
        summary = rebuild(*args, **kwargs)
        database = str(Path(warehouse) / "agenttrail.duckdb")
        seen.append(
            subprocess.run(
                [sys.executable, "-c", READ_NOW, database],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        )
        return summary

    monkeypatch.setattr(classify, "rebuild_attribution", rebuild_then_read)
    attribute_warehouse(settings)
    [reader] = seen
    assert (reader.returncode, reader.stdout.strip()) == (0, "15"), reader.stderr


def test_a_file_without_a_newer_column(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    settings = ingest(FILES, warehouse)
    layout = Layout.at(warehouse)
    older = sorted(layout.events.glob(EVENTS_GLOB))[0]
    table = pq.read_table(older, partitioning=None)
    pq.write_table(table.drop_columns(["tls_version", "addendum"]), older)
    attribute_warehouse(settings)
    assert differences(warehouse) == 0
    assert len(rows(warehouse, "SELECT * FROM events_classified")) == 15


def test_an_empty_warehouse(tmp_path: Path) -> None:
    empty = tmp_path / "logs"
    empty.mkdir()
    warehouse = tmp_path / "warehouse"
    ingest([empty], warehouse)
    summary = attribute_warehouse(settings_for(warehouse))
    assert (summary.events, summary.sessions, summary.by_actor) == (0, 0, {})
    assert rows(warehouse, "SELECT count(*) AS n FROM events_classified") == [{"n": 0}]
    assert sorted(columns(warehouse, "events_classified")) == sorted(
        [*columns(warehouse, "events"), *VERDICT_COLUMNS, *VIEW_COLUMNS]
    )


def test_the_rules_and_the_run_are_published(tmp_path: Path) -> None:
    """attribution_rules lists every rule the README documents, in order; attribution_run ties
    the published verdicts to their generation and rules_version."""
    warehouse = tmp_path / "warehouse"
    settings = ingest(FILES, warehouse)
    rules = rows(warehouse, "SELECT * FROM attribution_rules ORDER BY rule")
    assert [r["rule"] for r in rules] == list(range(1, len(rules) + 1))
    assert sorted(r["classified_by"] for r in rules) == sorted(readme_rules())
    classified = rows(
        warehouse,
        "SELECT c.classified_by, c.actor_kind, c.access_path, c.confidence, count(*) AS n"
        " FROM events_classified AS c GROUP BY ALL",
    )
    by_rule = {r["classified_by"]: r for r in rules}
    for row in classified:
        rule = by_rule[row["classified_by"]]
        assert (row["actor_kind"], row["access_path"], row["confidence"]) == (
            rule["actor_kind"],
            rule["access_path"],
            rule["confidence"],
        )
    layout = Layout.at(warehouse)
    run = rows(
        warehouse,
        "SELECT generation, rules_version, events, sessions, agenttrail_version"
        " FROM attribution_run",
    )
    assert run == [
        {
            "generation": (layout.derived / "CURRENT").read_text().strip(),
            "rules_version": settings.attribution.rules_version(),
            "events": 15,
            "sessions": rows(warehouse, "SELECT count(*) AS n FROM sessions")[0]["n"],
            "agenttrail_version": project_version(),
        }
    ]


def project_version() -> str:
    """The version pyproject.toml gives the package (the one pipeline.__version__ must say)."""
    with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def readme_rules() -> list[str]:
    """The classified_by names of the README's rules table; a cell may abbreviate names that
    share the first one's prefix: `service.aws_service`, `.service_linked_role`."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("### Rules (first match wins)", 1)[1].split("\n\n", 2)[1]
    names: list[str] = []
    for line in table.splitlines()[2:]:
        cell = line.split("|")[2]
        prefix = ""
        for name in re.findall(r"`([a-z0-9_.]+)`", cell):
            if name.startswith("."):
                names.append(prefix + name)
            else:
                prefix = name.split(".")[0] if "." in name else ""
                names.append(name)
    return names


def test_partitions_with_several_events_files(tmp_path: Path) -> None:
    """Two ingests into the same partitions: each partition's events files become one
    events_classified file; a file with an older schema keeps its own."""
    records = json.loads(FILES[1].read_text())["Records"]
    halves = [records[: len(records) // 2], records[len(records) // 2 :]]
    warehouse = tmp_path / "warehouse"
    settings = None
    for i, half in enumerate(halves):
        path = tmp_path / f"half-{i}.json"
        path.write_text(json.dumps({"Records": half}))
        settings = ingest([path], warehouse)
    assert settings is not None
    layout = Layout.at(warehouse)
    events_files = sorted(layout.events.glob(EVENTS_GLOB))
    folders = {p.parent for p in events_files}
    assert len(events_files) > len(folders)  # some partition holds several events files
    current = layout.derived / (layout.derived / "CURRENT").read_text().strip()
    assert len(list((current / CLASSIFIED_FOLDER).glob(EVENTS_GLOB))) == len(folders)
    assert differences(warehouse) == 0
    # An older file (fewer columns) in a shared partition: classified on its own.
    shared = next(f for f in events_files if sum(p.parent == f.parent for p in events_files) > 1)
    table = pq.read_table(shared, partitioning=None)
    pq.write_table(table.drop_columns(["tls_version"]), shared)
    attribute_warehouse(settings)
    current = layout.derived / (layout.derived / "CURRENT").read_text().strip()
    assert len(list((current / CLASSIFIED_FOLDER).glob(EVENTS_GLOB))) == len(folders) + 1
    assert differences(warehouse) == 0
    assert rows(warehouse, "SELECT count(*) AS n FROM events_classified") == [{"n": len(records)}]


def test_small_windows_and_verdict_files_give_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Footers scanned one file ahead and a verdict file per partition (the knobs at their
    smallest) publish the same events_classified as the defaults."""
    files = [*FILES, CASES / "sso_cli.json", CASES / "iam_user_keys.json"]
    default = tmp_path / "default"
    ingest(files, default)
    monkeypatch.setattr(classified_files, "FOOTER_LOOKAHEAD", 1)
    monkeypatch.setattr(classified_files, "VERDICT_FILE_ROWS", 1)
    small = tmp_path / "small"
    ingest(files, small)
    # Everything but the run id each ingest stamps on its rows.
    query = "SELECT * EXCLUDE (ingest_run_id) FROM events_classified ORDER BY event_id"
    found = rows(small, query)
    expected = rows(default, query)
    assert len(found) == len(expected) > 10
    assert found == expected
    layout = Layout.at(small)
    current = layout.derived / (layout.derived / "CURRENT").read_text().strip()
    partitions = {p.parent for p in layout.events.glob(EVENTS_GLOB)}
    assert len(partitions) > 1
    assert len(list((current / CLASSIFIED_FOLDER).glob(EVENTS_GLOB))) == len(partitions)


def test_files_without_identity_provider_read_it_from_user_identity(tmp_path: Path) -> None:
    """Events files written before the identity_provider column: the attribution reads the
    provider from userIdentity, whether some files or all of them lack the column."""
    warehouse = tmp_path / "warehouse"
    settings = ingest([CASES / "ci_web_identity.json", FILES[1]], warehouse)
    query = (
        "SELECT event_id, actor_kind, access_path, classified_by, evidence"
        " FROM events_classified ORDER BY event_id"
    )
    expected = rows(warehouse, query)
    assert {r["classified_by"] for r in expected} >= {"workload.web_identity"}
    layout = Layout.at(warehouse)
    events_files = sorted(layout.events.glob(EVENTS_GLOB))
    providers = _files_with_values(events_files, "identity_provider")
    assert providers
    assert len(providers) < len(events_files)
    assert _uniform(layout) == {"marker": True, "union_by_name": False}
    for lacking, uniform in ((providers, False), (events_files, True)):  # some files, then all
        _drop_column(lacking, "identity_provider")
        attribute_warehouse(settings)
        assert rows(warehouse, query) == expected
        # Files of two schemas: the view unites them by name; of one: it need not.
        assert _uniform(layout) == {"marker": uniform, "union_by_name": not uniform}


def test_files_without_assumed_root_read_it_as_null(tmp_path: Path) -> None:
    """Events files written before the assumed_root column: the attribution reads it as NULL
    (a root session whose AssumeRoot is not in the logs is then the root user's), whether some
    files or all of them lack the column; every other verdict stays."""
    warehouse = tmp_path / "warehouse"
    settings = ingest([CASES / "assume_root_sessions.json", FILES[1]], warehouse)
    query = (
        "SELECT event_id, actor_kind, access_path, classified_by, human_id, evidence"
        " FROM events_classified ORDER BY event_id"
    )
    expected = rows(warehouse, query)
    unjoined = "aroot-unjoined-root-call"
    before = {r["event_id"]: r for r in expected}[unjoined]
    assert (before["actor_kind"], before["classified_by"], before["human_id"]) == (
        "unknown",
        "unknown",
        None,
    )
    layout = Layout.at(warehouse)
    events_files = sorted(layout.events.glob(EVENTS_GLOB))
    flagged = _files_with_values(events_files, "assumed_root")
    assert flagged
    assert len(flagged) < len(events_files)
    as_root_user = {
        **before,
        "actor_kind": "human",
        "access_path": "direct",
        "classified_by": "human.iam_user",
        "human_id": "root",
        "evidence": "userIdentity.type=Root",
    }
    for lacking, uniform in ((flagged, False), (events_files, True)):  # some files, then all
        _drop_column(lacking, "assumed_root")
        attribute_warehouse(settings)
        assert rows(warehouse, query) == [
            as_root_user if r["event_id"] == unjoined else r for r in expected
        ]
        assert _uniform(layout) == {"marker": uniform, "union_by_name": not uniform}


def _files_with_values(files: list[Path], column: str) -> list[Path]:
    """The events files where `column` holds a value."""
    return [
        f
        for f in files
        if pq.read_table(f, columns=[column]).column(0).null_count < pq.read_metadata(f).num_rows
    ]


def _drop_column(files: list[Path], column: str) -> None:
    """Rewrite `files` without `column`, as a version before it wrote them."""
    for path in files:
        table = pq.read_table(path, partitioning=None)
        if column in table.column_names:
            pq.write_table(table.drop_columns([column]), path)


def _uniform(layout: Layout) -> dict[str, bool]:
    """Whether the current generation says its files share one schema, and how the stored
    events_verdicts view reads them."""
    current = layout.derived / (layout.derived / "CURRENT").read_text().strip()
    with duckdb.connect(str(layout.database), read_only=True) as con:
        ((sql,),) = con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = 'events_verdicts'"
        ).fetchall()
    return {"marker": (current / UNIFORM_SCHEMA).exists(), "union_by_name": "union_by_name" in sql}


def test_verdicts_held_past_the_bound_go_to_disk_and_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When more verdicts of incomplete files would be held than HELD_VERDICT_ROWS, they are
    written to the spill folder and read back as their files complete: the same
    events_classified, and nothing left on disk."""
    files = [*FILES, CASES / "sso_cli.json", CASES / "iam_user_keys.json"]
    default = tmp_path / "default"
    ingest(files, default)
    monkeypatch.setattr(classify, "HELD_VERDICT_ROWS", 0)
    monkeypatch.setattr(classify, "VERDICT_BATCH_ROWS", 7)
    spilled: list[int] = []
    real = PartitionVerdicts.__exit__

    def recording(self: PartitionVerdicts, *exc: object) -> None:
        spilled.append(self.spilled_rows)
        real(self, *exc)

    monkeypatch.setattr(PartitionVerdicts, "__exit__", recording)
    bounded = tmp_path / "bounded"
    ingest(files, bounded)
    assert len(spilled) == 1
    assert spilled[0] > 0
    spill = Layout.at(bounded).spill / "verdicts"
    assert not spill.exists() or not any(spill.iterdir())
    query = "SELECT * EXCLUDE (ingest_run_id) FROM events_classified ORDER BY event_id"
    found = rows(bounded, query)
    assert len(found) > 10
    assert found == rows(default, query)


def test_a_derived_table_write_out_of_memory_is_an_out_of_memory_error(tmp_path: Path) -> None:
    """The rebuild turns it into one line naming duckdb_memory_limit (test_cli)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE sessions AS SELECT i, repeat('x', 200) || i AS s FROM range(200000) r(i)"
    )
    con.execute("SET memory_limit = '1MB'")
    with pytest.raises(OutOfMemoryError) as caught:
        classify._write_table("sessions", tmp_path, con.cursor())
    assert str(caught.value).startswith("writing sessions: DuckDB ran out of memory (")


def test_derived_writes_finish_before_the_per_event_pass_lowers_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB has one memory limit for the database: a write still running when the pass sets
    its own (lower) one ran out of it, 1 run in ~20 at 10M events."""
    warehouse = tmp_path / "warehouse"
    settings = ingest([CASES / "transitive_tags_second_account.json"], warehouse)
    order: list[str] = []
    write_table, write_classified = classify._write_table, classify._write_classified

    def slow_write(table: str, *args: Any) -> None:
        if table == "sessions":
            time.sleep(0.5)  # still writing when 50_classification has run
        write_table(table, *args)
        order.append(f"wrote {table}")

    def pass_(*args: Any, **kwargs: Any) -> Any:
        order.append("per-event pass")
        return write_classified(*args, **kwargs)

    monkeypatch.setattr(classify, "_write_table", slow_write)
    monkeypatch.setattr(classify, "_write_classified", pass_)
    attribute_warehouse(settings)
    assert order[-1] == "per-event pass"
    assert sorted(order[:-1]) == [f"wrote {t}" for t in sorted(classify.DERIVED_TABLES)]
