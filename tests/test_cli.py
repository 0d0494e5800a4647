"""The CLI as a whole: --debug and --config belong to the root command but work wherever they
are typed (an error's "re-run with --debug" is naturally appended at the end); slips in
--warehouse get one line, not an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_fixtures import run_cli

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
