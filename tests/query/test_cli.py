"""`agenttrail query list/show/run` and `agenttrail sql` through the real command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.query.formats import render
from pipeline.query.library import Scope, list_queries, run_query

from .conftest import CASES, ROOT, USER_QUERIES, CliRunner, make_settings


def test_list_shows_every_query_with_one_line(cli: CliRunner) -> None:
    done = cli("query", "list", "--queries-dir", str(USER_QUERIES))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    names = [line.split()[0] for line in lines]
    expected = [q.name for q in list_queries(make_settings("unused"), [USER_QUERIES])]
    assert names == expected
    calls = next(line for line in lines if line.startswith("calls_per_day "))
    assert calls.split(None, 1)[1] == "[user] Calls per UTC day in the period."


def test_show_prints_the_file_and_the_flags_it_takes(cli: CliRunner) -> None:
    done = cli("query", "show", "calls_per_day", "--queries-dir", str(USER_QUERIES))
    assert done.returncode == 0, done.stderr
    first, rest = done.stdout.split("\n", 1)
    assert first == (
        "-- file: tests/cases/queries/user/calls_per_day.sql (user); "
        "scope flags: --quarter, --since, --until, --account"
    )
    assert rest == (USER_QUERIES / "calls_per_day.sql").read_text()


def test_run_prints_what_the_library_returns(cli: CliRunner, tiny_warehouse: Path) -> None:
    args = ["--quarter", "2026Q3", "--account", "111111111111", "-p", "min_calls=1"]
    done = cli(
        "query", "run", "calls_per_day", *args, "--queries-dir", str(USER_QUERIES),
        "-w", str(tiny_warehouse), "--format", "csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = run_query(
        make_settings(tiny_warehouse),
        "calls_per_day",
        scope=Scope(quarter="2026Q3", account="111111111111"),
        params={"min_calls": "1"},
        extra_dirs=[USER_QUERIES],
    )
    assert done.stdout == render(result.table, "csv")
    assert done.stdout == "day,calls\n2026-09-29,1\n2026-09-30,2\n"


def test_run_writes_parquet_and_json(cli: CliRunner, tiny_warehouse: Path, tmp_path: Path) -> None:
    common = ["--queries-dir", str(USER_QUERIES), "-w", str(tiny_warehouse)]
    out = tmp_path / "days.parquet"
    done = cli("query", "run", "calls_per_day", *common, "--format", "parquet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    table = pq.read_table(out)
    assert table.column_names == ["day", "calls"]
    assert table.column("calls").to_pylist() == [1, 3, 3]
    done = cli("query", "run", "calls_per_day", *common, "--since", "2026-09-30", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"day": "2026-09-30", "calls": 3},
        {"day": "2026-10-01", "calls": 3},
    ]


def test_a_wide_result_folds_to_one_block_per_row(cli: CliRunner, tiny_warehouse: Path) -> None:
    done = cli(
        "query", "run", "typed_params", "--queries-dir", str(USER_QUERIES),
        "-w", str(tiny_warehouse), env={"COLUMNS": "40"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "-[ row 1 ]--------------------",
        "v      | it's",
        "i      | -3",
    ]
    wide = cli(
        "query", "run", "typed_params", "--queries-dir", str(USER_QUERIES),
        "-w", str(tiny_warehouse), env={"COLUMNS": "200"},
    )  # fmt: skip
    assert wide.stdout.splitlines()[0].split() == [
        "v", "i", "b", "d", "flag", "day", "moment", "names"
    ]  # fmt: skip


def test_a_user_query_replacing_a_built_in_prints_a_notice(
    cli: CliRunner, tiny_warehouse: Path
) -> None:
    done = cli(
        "query", "run", "activity_by_actor", "--queries-dir", str(CASES / "override"),
        "-w", str(tiny_warehouse), "-f", "csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "source\nuser version\n"
    assert done.stderr.startswith(
        "notice: query 'activity_by_actor': using "
        "tests/cases/queries/override/activity_by_actor.sql (user) instead of "
    )


def test_errors_are_one_line_with_the_usage_exit_code(cli: CliRunner, tiny_warehouse: Path) -> None:
    common = ["--queries-dir", str(USER_QUERIES), "-w", str(tiny_warehouse)]
    cases = {
        ("calls_per_day", "--principal", "x"): (
            2,
            "error: tests/cases/queries/user/calls_per_day.sql:4: query 'calls_per_day' does "
            "not take --principal (it accepts --quarter, --since, --until, --account)",
        ),
        ("calls_per_day", "-p", "min_calls"): (
            2,
            "error: --param 'min_calls' is not NAME=VALUE (write --param min_calls=VALUE)",
        ),
        ("calls_per_dai",): (
            2,
            "error: unknown query 'calls_per_dai'; did you mean 'calls_per_day'? "
            "('agenttrail query list' shows them all)",
        ),
        ("bad_column",): (
            1,
            "error: tests/cases/queries/user/bad_column.sql:11: Binder Error: Referenced "
            'column "no_such_column" not found in FROM clause!',
        ),
        ("calls_per_day", "--since", "30/09/2026"): (
            2,
            "error: --since '30/09/2026' is not a date (use YYYY-MM-DD (UTC))",
        ),
        ("calls_per_day", "-f", "xml"): (
            2,
            "error: unknown format 'xml' (choose one of table, csv, json, ndjson, parquet, "
            "markdown)",
        ),
        # These ended in "internal error: OverflowError" or a DuckDB error naming no parameter.
        ("typed_params", "-p", "moment=9999-12-31T23:59:59-01:00"): (
            2,
            "error: tests/cases/queries/user/typed_params.sql:3: --param "
            "moment='9999-12-31T23:59:59-01:00': outside the years 1 to 9999 in UTC (moment is "
            "TIMESTAMPTZ)",
        ),
        ("access_denied", "-p", "burst_minutes=-1"): (
            2,
            "error: queries/access_denied.sql:19: --param burst_minutes='-1' is out of range: "
            "burst_minutes must be 1 or more",
        ),
        ("calls_per_day", "--quarter", "0000Q1"): (
            2,
            "error: --quarter 0000Q1 would begin before the year 1 (choose a later quarter)",
        ),
    }
    for args, (code, line) in cases.items():
        done = cli("query", "run", *args, *common)
        assert (done.returncode, done.stderr) == (code, line + "\n"), args
        assert done.stdout == ""


def test_sql_keeps_its_formats(cli: CliRunner, tiny_warehouse: Path) -> None:
    statement = "SELECT event_id, event_name FROM events ORDER BY event_id LIMIT 2"
    done = cli("sql", statement, "-w", str(tiny_warehouse), "--format", "ndjson")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"event_id": "tiny-0001", "event_name": "ListBuckets"},
        {"event_id": "tiny-0002", "event_name": "ListBuckets"},
    ]
    done = cli("sql", statement, "-w", str(tiny_warehouse), "--format", "markdown")
    assert done.stdout.splitlines()[0] == "| event_id | event_name |"
    refused = cli("sql", "DROP VIEW events", "-w", str(tiny_warehouse))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: refused: a DROP statement")
    flagged = cli("sql", "SELECT 1", "-w", str(tiny_warehouse), "--endpoint-url", "http://x")
    assert flagged.returncode == 2
    assert "apply to an s3:// warehouse only" in flagged.stderr


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "ndjson", "parquet", "markdown"])
def test_out_into_a_missing_folder_is_one_usage_line(
    cli: CliRunner, tiny_warehouse: Path, tmp_path: Path, fmt: str
) -> None:
    """Not an internal error naming a hidden .partial file, and checked before the query."""
    out = tmp_path / "nodir" / "x.out"
    expected = (
        f"error: --out {out}: the folder {out.parent} does not exist (create the folder, or "
        "fix the path)\n"
    )
    for command in (
        ["sql", "SELECT 1 AS a"],
        ["query", "run", "calls_per_day", "--queries-dir", str(USER_QUERIES)],
    ):
        done = cli(*command, "-w", str(tiny_warehouse), "-f", fmt, "-o", str(out))
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected), command
    assert list(tmp_path.iterdir()) == []


def test_list_shows_the_valid_queries_beside_a_broken_file(cli: CliRunner, tmp_path: Path) -> None:
    """One broken file in a shared folder hides nothing: the built-in and the other user
    queries are listed, a notice says what is wrong with it, and the exit code says a file is
    invalid; from --queries-dir or from [query] queries_dirs alike."""
    broken = CASES / "one_broken"
    expected = [q.name for q in list_queries(make_settings("unused"), [USER_QUERIES])]
    config = tmp_path / "agenttrail.toml"
    config.write_text(f'[query]\nqueries_dirs = ["{broken}"]\n')
    for args in (
        ["query", "list", "--queries-dir", str(USER_QUERIES), "--queries-dir", str(broken)],
        ["--config", str(config), "query", "list", "--queries-dir", str(USER_QUERIES)],
    ):
        done = cli(*args)
        assert done.returncode == 1, args
        assert [line.split()[0] for line in done.stdout.splitlines()] == expected
        assert done.stderr == (
            "notice: not listed: tests/cases/queries/one_broken/uses_undeclared.sql:6: $m is "
            "used but not declared in the params line (line 3)\n"
            "error: 1 query file invalid, not listed: uses_undeclared.sql (fix or move out of "
            "the queries folder; the other queries are listed)\n"
        )


@pytest.mark.parametrize(
    ("fmt", "first_line"),
    [
        ("csv", b"a\n"),
        ("ndjson", b'{"a": "' + b"x" * 100 + b'"}\n'),
        # One write of the whole table: CPython took the pipe's partial write for all of it.
        ("table", b"a\n"),
        ("markdown", b"| a |\n"),
    ],
)
@pytest.mark.parametrize("out", [[], ["--out", "/dev/stdout"]], ids=["stdout", "out_dev_stdout"])
@pytest.mark.parametrize("run", ["sql", "query_run"])
def test_a_reader_closing_the_output_early_ends_it_silently(
    tiny_warehouse: Path, tmp_path: Path, fmt: str, first_line: bytes, out: list[str], run: str
) -> None:
    """`agenttrail sql ... | head -1`: the closed pipe ends the command with the code a shell
    gives a command SIGPIPE ended (141), nothing on stderr, as `yes | head -1` does; with
    `--out /dev/stdout` too (it ended with "error: cannot write --out"). The output (~1 MB) is
    far more than a pipe holds. `query run` streams as `sql` does: it wrote its whole result in
    one write, whose partial count CPython took for all of it, and ended with 0."""
    sql = "SELECT repeat('x', 100) AS a FROM range(10000)"
    if run == "sql":
        command = [sys.executable, "-m", "pipeline", "sql", sql]
    else:
        (tmp_path / "rows.sql").write_text(
            "-- name: rows\n-- description: d\n-- params: none\n-- grain: g\n-- used_by: u\n"
            f"{sql}\n"
        )
        command = [sys.executable, "-m", "pipeline", "query", "run", "rows"]
        command += ["--queries-dir", str(tmp_path)]
    command += ["-w", str(tiny_warehouse), "--format", fmt, *out]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline() == first_line
    process.stdout.close()
    stderr = process.stderr.read()
    assert (process.wait(timeout=120), stderr) == (141, b"")


def test_the_last_day_there_is_works_from_the_command_line(
    cli: CliRunner, tiny_warehouse: Path
) -> None:
    """--until 9999-12-31 and --quarter 9999Q4 ended in "internal error: OverflowError"."""
    common = ["-w", str(tiny_warehouse), "-f", "csv"]
    everything = cli("query", "run", "top_talkers", *common)
    until = cli("query", "run", "top_talkers", "--until", "9999-12-31", *common)
    assert (until.returncode, until.stdout, until.stderr) == (0, everything.stdout, "")
    quarter = cli("query", "run", "top_talkers", "--quarter", "9999Q4", *common)
    assert (quarter.returncode, quarter.stderr) == (0, "")
    assert quarter.stdout == everything.stdout.splitlines()[0] + "\n"  # the header alone
    fiscal = cli(
        "query",
        "run",
        "top_talkers",
        "--quarter",
        "0001Q1",
        *common,
        env={"AGENTTRAIL_QUERY_FISCAL_YEAR_START_MONTH": "10"},
    )
    assert (fiscal.returncode, fiscal.stdout, fiscal.stderr) == (
        2,
        "",
        "error: --quarter 0001Q1 would begin before the year 1 (fiscal years starting in month "
        "10) (choose a later quarter)\n",
    )


@pytest.mark.parametrize("command", ["sql", "query run"])
def test_a_query_out_of_memory_names_the_setting_to_raise(
    cli: CliRunner, tiny_warehouse: Path, tmp_path: Path, command: str
) -> None:
    """It said "SQL error: Out of Memory Error: ..." alone (and DuckDB's advice, SET
    memory_limit, is no option of a command)."""
    statement = "SELECT len(list(i)) AS n FROM range(50000000) t(i)"  # 400 MB of BIGINT
    if command == "sql":
        args = ["sql", statement]
        where = "SQL error"
    else:
        (tmp_path / "too_big.sql").write_text(
            "-- name: too_big\n-- description: d\n-- params: none\n-- grain: g\n-- used_by: u\n"
            f"{statement}\n",
            encoding="utf-8",
        )
        args = ["query", "run", "too_big", "--queries-dir", str(tmp_path)]
        where = str(tmp_path / "too_big.sql")
    variable = "AGENTTRAIL_QUERY_DUCKDB_MEMORY_LIMIT"
    done = cli(*args, "-w", str(tiny_warehouse), env={variable: "50MB"})
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    detail = re.fullmatch(
        rf"error: {re.escape(where)}: Out of Memory Error: (.+) \(raise .*\)\n", done.stderr
    )
    assert detail is not None, done.stderr
    assert done.stderr == (
        f"error: {where}: Out of Memory Error: {detail[1]} (raise [query] duckdb_memory_limit in"
        f" agenttrail.toml or with {variable})\n"
    )
