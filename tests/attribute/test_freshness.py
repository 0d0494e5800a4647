"""Whether events_classified covers the warehouse under the rules in force, and what readers
are told when it does not (attribute/freshness.py)."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ingest_fixtures import agenttrail, held_open

import pipeline.warehouse.connect
from pipeline.attribute.classify import attribute_warehouse
from pipeline.attribute.freshness import attribute_command, is_current
from pipeline.config import load_settings
from pipeline.errors import DatabaseInUseError
from pipeline.iam.store import import_snapshots
from pipeline.warehouse.layout import Layout

from .helpers import CASES, ingest

EVENTS = CASES / "snapshot_agent_role.json"
SNAPSHOT = CASES / "snapshot_agent_role.iam.json"
QUERY = "SELECT count(*) AS n FROM events_classified"


def stale_line(warehouse: Path) -> str:
    return (
        "notice: events_classified predates the latest ingest or IAM import (its attribution "
        "did not finish), so newer events and role tags are missing from it; run 'agenttrail "
        f"attribute --warehouse {warehouse}' for complete verdicts\n"
    )


def test_an_import_whose_rebuild_fails_leaves_readers_told_until_a_rebuild_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse"
    settings = ingest([EVENTS], warehouse)
    layout = Layout.at(warehouse)
    assert is_current(layout, settings.attribution.rules_version())
    quiet = agenttrail("sql", QUERY, "-w", str(warehouse), "-f", "csv", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")

    monkeypatch.setattr(pipeline.warehouse.connect, "DATABASE_WAIT_SECONDS", 0.3)
    with held_open(layout.database), pytest.raises(DatabaseInUseError):
        import_snapshots([SNAPSHOT], layout, datetime(2026, 1, 1, tzinfo=UTC), settings)
    assert not is_current(layout, settings.attribution.rules_version())
    for command in (
        ["sql", QUERY, "-w", str(warehouse), "-f", "csv"],
        ["query", "run", "agent_actions", "-w", str(warehouse), "-f", "csv"],
    ):
        told = agenttrail(*command, cwd=tmp_path)
        assert told.returncode == 0, told.stderr
        assert told.stderr == stale_line(warehouse), command

    attribute_warehouse(settings)
    assert is_current(layout, settings.attribution.rules_version())
    quiet = agenttrail("sql", QUERY, "-w", str(warehouse), "-f", "csv", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_readers_are_told_when_the_rules_changed_since_the_classification(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse"
    settings = ingest([EVENTS], warehouse)
    (tmp_path / "agenttrail.toml").write_text('[attribution]\nagent_tag_value = "AI"\n')
    told = agenttrail("sql", QUERY, "-w", str(warehouse), "-f", "csv", cwd=tmp_path)
    changed = rules_version_in(tmp_path)
    assert told.returncode == 0, told.stderr
    assert told.stderr == (
        f"notice: events_classified was classified under rules "
        f"{settings.attribution.rules_version()}, but the [attribution] settings in force are "
        f"rules {changed}; run 'agenttrail attribute --warehouse {warehouse} --config "
        f"{tmp_path / 'agenttrail.toml'}' for complete verdicts\n"
    )
    # Statements that read nothing the attribution publishes are not told.
    for statement in ("SELECT count(*) AS n FROM events", "SELECT 'events_classified' AS x"):
        quiet = agenttrail("sql", statement, "-w", str(warehouse), "-f", "csv", cwd=tmp_path)
        assert (quiet.returncode, quiet.stderr) == (0, ""), statement
    coverage = agenttrail(
        "query", "run", "coverage", "-w", str(warehouse), "-f", "csv", cwd=tmp_path
    )
    assert (coverage.returncode, coverage.stderr) == (0, "")
    told = agenttrail(
        "query", "run", "agent_bypass", "-w", str(warehouse), "-f", "csv", cwd=tmp_path
    )
    assert told.stderr.startswith("notice: events_classified was classified under rules ")


def test_the_suggested_command_fixes_what_the_notice_says(tmp_path: Path) -> None:
    """The rules in force came from --config (or AGENTTRAIL_ATTRIBUTION_* variables): the
    command the notice suggests, run as printed, classifies under them and the notice goes."""
    warehouse = tmp_path / "warehouse"
    default = ingest([EVENTS], warehouse)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "rules.toml").write_text(
        '[attribution]\nagent_role_patterns = ["%Deploy%"]\n'
    )
    config = ["--config", "cfg/rules.toml"]
    sql = ["sql", QUERY, "-w", str(warehouse), "-f", "csv"]
    told = agenttrail(*config, *sql, cwd=tmp_path)
    in_force = load_settings(config_file=tmp_path / "cfg" / "rules.toml", environ={})
    command = (
        f"agenttrail attribute --warehouse {warehouse} --config {tmp_path / 'cfg' / 'rules.toml'}"
    )
    assert told.stderr == (
        f"notice: events_classified was classified under rules "
        f"{default.attribution.rules_version()}, but the [attribution] settings in force are "
        f"rules {in_force.attribution.rules_version()}; run '{command}' for complete verdicts\n"
    )
    fixed = agenttrail(*shlex.split(command)[1:], cwd=tmp_path / "cfg")  # from anywhere
    assert fixed.returncode == 0, fixed.stderr
    assert agenttrail(*config, *sql, cwd=tmp_path).stderr == ""

    variable = {"AGENTTRAIL_ATTRIBUTION_AGENT_TAG_VALUE": "AI"}
    told = agenttrail(*sql, cwd=tmp_path, env=variable)
    assert told.stderr.endswith(
        f"; run 'agenttrail attribute --warehouse {warehouse}' with "
        "AGENTTRAIL_ATTRIBUTION_AGENT_TAG_VALUE set as now for complete verdicts\n"
    )


def test_the_suggested_command_keeps_the_rules_variables_not_the_memory_limits(
    tmp_path: Path,
) -> None:
    """An out-of-memory error asks to raise a limit, then to run this command: "set as now"
    would contradict it, and the limits are not rules."""
    environ = {
        "AGENTTRAIL_ATTRIBUTION_DUCKDB_MEMORY_LIMIT": "2GB",
        "AGENTTRAIL_ATTRIBUTION_VERDICTS_DUCKDB_MEMORY_LIMIT": "1GB",
        "AGENTTRAIL_ATTRIBUTION_AGENT_TAG_VALUE": "AI",
    }
    settings = load_settings(environ=environ, overrides={"warehouse": "/w"}, cwd=tmp_path)
    assert attribute_command(settings) == (
        "'agenttrail attribute --warehouse /w' with AGENTTRAIL_ATTRIBUTION_AGENT_TAG_VALUE set as now"
    )
    memory_only = {k: v for k, v in environ.items() if "MEMORY" in k}
    settings = load_settings(environ=memory_only, overrides={"warehouse": "/w"}, cwd=tmp_path)
    assert attribute_command(settings) == "'agenttrail attribute --warehouse /w'"


def rules_version_in(cwd: Path) -> str:
    """The rules_version the agenttrail.toml in `cwd` gives."""
    return load_settings(environ={}, cwd=cwd).attribution.rules_version()


def test_a_rebuild_killed_after_an_ingest_commit_is_redone_by_the_next_ingest(
    tmp_path: Path,
) -> None:
    """The marker goes before the commit and comes back only with a finished rebuild; an
    ingest that finds nothing new still rebuilds a stale classification."""
    warehouse = tmp_path / "warehouse"
    settings = ingest([EVENTS], warehouse)
    layout = Layout.at(warehouse)
    layout.attribution_marker.unlink()  # as a rebuild killed mid-way leaves it
    done = agenttrail("ingest", str(EVENTS), "-w", str(warehouse), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"skipped"' not in done.stdout
    assert is_current(layout, settings.attribution.rules_version())
    again = agenttrail("ingest", str(EVENTS), "-w", str(warehouse), "--json", cwd=tmp_path)
    assert '"skipped": "no new events since the last classification"' in again.stdout
