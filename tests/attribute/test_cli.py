"""`agenttrail sql "select event_id, actor_kind, access_path from events_classified" --format csv`
works on a warehouse right after `agenttrail ingest`, and again after `agenttrail iam import`
(which re-classifies: a role tagged only in the snapshot becomes an agent role)."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from ingest_fixtures import agenttrail

import pipeline.attribute.classify
import pipeline.ingest
from pipeline.errors import AttributionPendingError

from .helpers import CASES, SAMPLE, ingest

QUERY = "select event_id, actor_kind, access_path from events_classified"
FILES = [CASES / "snapshot_agent_role.json", CASES / "managed_mcp_observed_shape.json"]
SNAPSHOT = CASES / "snapshot_agent_role.iam.json"
BEFORE = {
    "snap-assume-agent": ("human", "direct"),
    "snap-call-agent": ("human", "direct"),
    "snap-assume-human": ("human", "direct"),
    "snap-call-human": ("human", "direct"),
    "mcpobs-grant": ("agent", "mcp_managed"),
    "mcpobs-tool-1": ("agent", "mcp_managed"),
    "mcpobs-down-1": ("agent", "mcp_managed"),
    "mcpobs-tool-2": ("agent", "mcp_managed"),
    "mcpobs-refresh": ("agent", "mcp_managed"),
    "mcpobs-session-call": ("agent", "mcp_managed"),
}


def sql_csv(warehouse: Path, cwd: Path) -> dict[str, tuple[str, str]]:
    result = agenttrail("sql", QUERY, "--format", "csv", "-w", str(warehouse), cwd=cwd)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "event_id,actor_kind,access_path"
    assert len(lines) == 1 + len(BEFORE)
    return {r[0]: (r[1], r[2]) for r in csv.reader(lines[1:])}


def test_sql_csv_after_ingest_and_iam_import(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    ingested = agenttrail(
        "ingest", *map(str, FILES), "--workers", "1", "-w", str(warehouse), cwd=tmp_path
    )
    assert ingested.returncode == 0, ingested.stderr
    assert sql_csv(warehouse, tmp_path) == BEFORE

    imported = agenttrail(
        "iam", "import", str(SNAPSHOT), "--taken-at", "2026-10-15T00:00:00Z",
        "-w", str(warehouse), cwd=tmp_path,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    # The snapshot tags SnapAgentRole Usage=Agent: its untagged shell session is the bypass.
    assert sql_csv(warehouse, tmp_path) == {**BEFORE, "snap-call-agent": ("agent", "direct")}


def test_attribute_repairs_a_first_ingest_whose_attribution_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ingest committed its events but its rebuild met a full disk: no database, no
    views yet. Readers say what happened and what to run; `agenttrail attribute` (which the
    ingest's error suggests) then works."""

    def full(*args: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "derived/gen-x/part-0.parquet")

    warehouse = tmp_path / "warehouse"
    monkeypatch.setattr(pipeline.attribute.classify, "refresh_attribution", full)
    with pytest.raises(AttributionPendingError):
        ingest(FILES, warehouse)
    monkeypatch.undo()
    assert not (warehouse / "agenttrail.duckdb").exists()
    told = agenttrail("sql", QUERY, "-w", str(warehouse), cwd=tmp_path)
    assert (told.returncode, told.stderr) == (
        1,
        f"error: the warehouse {warehouse} has events but no views yet: its first attribution "
        f"did not finish (run 'agenttrail attribute --warehouse {warehouse}' (with the ingest's "
        "--config, if it had one))\n",
    )
    done = agenttrail("attribute", "-w", str(warehouse), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("classified 10 events (agent 6, human 4); ")
    assert sql_csv(warehouse, tmp_path) == BEFORE


def test_import_of_a_present_snapshot_and_attribute_without_events_say_so_plainly(
    tmp_path: Path,
) -> None:
    """A snapshot imported twice is not re-classified again (nothing changed), and a warehouse
    with no events is classified as '0 events', not '0 events ()'."""
    warehouse = tmp_path / "warehouse"
    args = ["iam", "import", str(SNAPSHOT), "--taken-at", "2026-10-15T00:00:00Z"]
    first = agenttrail(*args, "-w", str(warehouse), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "re-classified 0 events"
    again = agenttrail(*args, "-w", str(warehouse), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].startswith(f"already present: {SNAPSHOT} -> account ")
    assert again.stdout.splitlines()[-1] == "nothing new: events_classified is up to date"
    done = agenttrail("attribute", "-w", str(warehouse), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"classified 0 events; 0 sessions; rules [0-9a-f]{12}; \d+\.\d s\n", done.stdout
    ), done.stdout


def test_attribute_json_says_where_the_seconds_went(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    ingest(FILES, warehouse)
    done = agenttrail("attribute", "-w", str(warehouse), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["events"], summary["by_actor"]) == (10, {"agent": 6, "human": 4})
    assert list(summary["phases"]) == ["tables", "events", "publish"]
    assert all(seconds > 0 for seconds in summary["phases"].values())
    assert sum(summary["phases"].values()) == pytest.approx(summary["seconds"], abs=0.002)


def test_keys_several_sts_calls_issued_are_said_by_ingest_and_attribute(tmp_path: Path) -> None:
    """A key that two STS calls issued (a masked export) is no session: the ingest and
    `attribute` say how many such keys there were, on stderr, and where to see them."""
    warehouse = tmp_path / "warehouse"
    notice = (
        "notice: 1 access key was issued by more than one STS call (keys masked by an export,"
        " or reused examples): no session is assumed for them and their calls join none; query"
        " run unjoined_sessions lists them (reason reused_issued_key)"
    )
    case = str(CASES / "reused_issued_keys.json")
    ingested = agenttrail("ingest", case, "--workers", "1", "-w", str(warehouse), cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    assert notice in ingested.stdout + ingested.stderr
    done = agenttrail("attribute", "-w", str(warehouse), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [notice]
    as_json = agenttrail("attribute", "-w", str(warehouse), "--json", cwd=tmp_path)
    assert json.loads(as_json.stdout)["reused_issued_keys"] == 1
    other = tmp_path / "other"
    ingest(FILES, other)
    plain = agenttrail("attribute", "-w", str(other), cwd=tmp_path)
    assert (plain.returncode, plain.stderr) == (0, "")


# DuckDB's own words vary with the allocation that failed; what agenttrail adds does not.
OUT_OF_MEMORY = re.compile(
    r"DuckDB ran out of memory \((?:failed|could not)[^()]*(?:\([^()]*\))?[^()]*\)"
)


@pytest.mark.parametrize(
    ("setting", "files", "where"),
    [
        # The tables of 10 events fit in the least memory a limit may be (config.MIN_MEMORY):
        # those of the sample's 5,469 do not.
        ("duckdb_memory_limit", [SAMPLE / "AWSLogs"], "attribution"),
        ("verdicts_duckdb_memory_limit", FILES, "classifying each event"),
    ],
)
def test_out_of_memory_names_the_setting_to_raise(
    tmp_path: Path, setting: str, files: list[Path], where: str
) -> None:
    """The rebuild's memory grows with the STS sessions: when DuckDB runs out, the one line
    says which limit to raise and how, without DuckDB's advice about its own settings."""
    warehouse = tmp_path / "warehouse"
    ingest(files, warehouse)
    before = agenttrail("sql", QUERY, "-f", "csv", "-w", str(warehouse), cwd=tmp_path)
    variable = f"AGENTTRAIL_ATTRIBUTION_{setting.upper()}"
    done = agenttrail("attribute", "-w", str(warehouse), cwd=tmp_path, env={variable: "16MB"})
    assert done.returncode == 1
    hint = f"(raise [attribution] {setting} (now 16MB) in agenttrail.toml or with {variable})"
    message = OUT_OF_MEMORY.sub("DuckDB ran out of memory (...)", done.stderr)
    # The tables run on two cursors: whichever statement DuckDB refuses first is named (its
    # SQL file), or the rebuild as a whole where the refusal comes outside a statement.
    if where == "attribution":
        message = re.sub(r"^error: \d\d_\w+\.sql: ", "error: attribution: ", message)
    assert message == f"error: {where}: DuckDB ran out of memory (...) {hint}\n", done.stderr
    # The classification in place is kept, and still answers.
    after = agenttrail("sql", QUERY, "-f", "csv", "-w", str(warehouse), cwd=tmp_path)
    assert (after.returncode, after.stdout) == (0, before.stdout)
    assert before.stdout.count("\n") > 10


def test_an_ingest_whose_attribution_runs_out_of_memory(tmp_path: Path) -> None:
    """The events are committed; the summary and the error say which limit to raise, then
    what to run."""
    warehouse = tmp_path / "warehouse"
    variable = "AGENTTRAIL_ATTRIBUTION_VERDICTS_DUCKDB_MEMORY_LIMIT"
    done = agenttrail(
        "ingest", *map(str, FILES), "--workers", "1", "-w", str(warehouse), "--json",
        cwd=tmp_path, env={variable: "16MB"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    line = OUT_OF_MEMORY.sub("DuckDB ran out of memory (...)", done.stderr)
    error = (
        "10 new events are committed, but attribution could not run: classifying each event:"
        " DuckDB ran out of memory (...) (raise [attribution] verdicts_duckdb_memory_limit"
        f" (now 16MB) in agenttrail.toml or with {variable}, then run 'agenttrail attribute"
        f" --warehouse {warehouse}' (the next ingest also catches up))"
    )
    assert line == f"error: {error}\n"
    summary = json.loads(done.stdout)
    assert summary["events_written"] == 10
    assert OUT_OF_MEMORY.sub("DuckDB ran out of memory (...)", summary["attribution"]["error"]) == (
        error
    )
    assert agenttrail("attribute", "-w", str(warehouse), cwd=tmp_path).returncode == 0
    assert sql_csv(warehouse, tmp_path) == BEFORE
