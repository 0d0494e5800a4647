"""The CLI as a whole: --debug and --config belong to the root command but work wherever they
are typed (an error's "re-run with --debug" is naturally appended at the end); slips in
--warehouse get one line, not an internal error."""

from __future__ import annotations

import os
import signal
import time
import tomllib
from pathlib import Path

import pytest
from ingest_fixtures import kill_group, run_cli, start_cli

from pipeline.cli import hoist_global_options


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        (["ingest", "logs", "--debug"], ["--debug", "ingest", "logs"]),
        (["--debug", "ingest", "logs"], ["--debug", "ingest", "logs"]),
        (
            ["sql", "SELECT 1", "--config", "a.toml", "--format", "csv"],
            ["--config", "a.toml", "sql", "SELECT 1", "--format", "csv"],
        ),
        (["sql", "--config=a.toml", "SELECT 1"], ["--config=a.toml", "sql", "SELECT 1"]),
        # After `--` everything is an argument, even what looks like an option.
        (["sql", "--", "--debug"], ["sql", "--", "--debug"]),
        # A trailing --config without its value is left for typer to report.
        (["sql", "SELECT 1", "--config"], ["sql", "SELECT 1", "--config"]),
    ],
)
def test_global_options_move_in_front_of_the_command(typed: list[str], parsed: list[str]) -> None:
    assert hoist_global_options(typed) == parsed


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no-warehouse"
    plain = run_cli("sql", "SELECT 1", "--warehouse", str(missing), cwd=tmp_path)
    debug = run_cli("sql", "SELECT 1", "--warehouse", str(missing), "--debug", cwd=tmp_path)
    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.splitlines()[-1] == (
        f"error: no warehouse at {missing} (run 'agenttrail ingest SOURCE --warehouse DIR' "
        "first, or pass --warehouse)"
    )
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_config_after_the_command_is_used(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text(f'warehouse = "{tmp_path / "from-config"}"\n')
    found = run_cli("sql", "SELECT 1", "--config", str(config), cwd=tmp_path)
    assert found.returncode == 1
    assert f"no warehouse at {tmp_path / 'from-config'} " in found.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["ingest", "tests/cases/ingest/good_cloudtrail.json.gz"],
        ["iam", "import", "tests/cases/iam/authorization_details_small.json"],
    ],
)
def test_a_warehouse_that_is_a_file_is_refused_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    not_a_folder = tmp_path / "warehouse"
    not_a_folder.write_text("")
    repo = Path(__file__).resolve().parents[1]
    done = run_cli(*command, "--warehouse", str(not_a_folder), cwd=repo)
    assert (done.returncode, done.stderr) == (
        1,
        f"error: the warehouse {not_a_folder} is a file, not a folder (pass --warehouse a "
        "folder (created if missing))\n",
    )
    assert not_a_folder.read_text() == ""


def test_version_is_the_packages(tmp_path: Path) -> None:
    """The version an auditor quotes is the one the package was built as (pyproject.toml); it
    is also recorded with every classification (attribution_run.agenttrail_version)."""
    with (Path(__file__).resolve().parents[1] / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    done = run_cli("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"agenttrail {version}\n", "")


LONG_QUERY = "SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3"


@pytest.mark.parametrize(
    ("sent", "code", "line"),
    [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGINT, 130, "interrupted"),
    ],
)
def test_a_signal_during_a_duckdb_query_is_reported_as_the_signal(
    tmp_path: Path, sent: signal.Signals, code: int, line: str
) -> None:
    """DuckDB, interrupted mid-query, raises "Query interrupted" instead of the signal
    handler's exception: the command still says it was terminated or interrupted."""
    repo = Path(__file__).resolve().parents[1]
    warehouse = tmp_path / "wh"
    made = run_cli(
        "ingest", "tests/cases/ingest/good_cloudtrail.json.gz", "-w", str(warehouse), cwd=repo
    )
    assert made.returncode == 0, made.stderr
    query = start_cli("sql", LONG_QUERY, "-w", str(warehouse), cwd=tmp_path)
    try:
        time.sleep(1.5)  # well into the query, which runs for minutes
        assert query.poll() is None
        os.kill(query.pid, sent)
        _, err = query.communicate(timeout=60)
    finally:
        kill_group(query)
    assert (query.returncode, err.splitlines()[-1]) == (
        code,
        f"{line}; re-run the same command to carry on (nothing is lost)",
    )
    assert "Query interrupted" not in err
