"""The CLI as a whole: --debug and --config belong to the root command but work wherever they
are typed (an error's "re-run with --debug" is naturally appended at the end); slips in
--warehouse get one line, not an internal error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from ingest_fixtures import cli_env, kill_group, run_cli, start_cli

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
    ],
)
def test_global_options_move_in_front_of_the_command(typed: list[str], parsed: list[str]) -> None:
    assert hoist_global_options(typed) == parsed


@pytest.mark.parametrize(
    "typed",
    [
        ["sql", "SELECT 1", "--config"],
        ["sql", "SELECT 1", "--config", "--", "x"],
        ["--config"],
        ["sql", "SELECT 1", "--config", "--format", "csv"],
    ],
)
def test_config_without_its_value_says_it_requires_one(tmp_path: Path, typed: list[str]) -> None:
    """After the command it was "Error: No such option: --config", which the README says may
    come there."""
    done = run_cli(*typed, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --config requires a value (the path of an agenttrail.toml: --config FILE, "
        "before or after the command)\n"
    )


def test_config_followed_by_debug_is_not_a_file_named_debug(tmp_path: Path) -> None:
    """`--config --debug` read --debug as the file's name ("no such file: --debug"); it is a
    --config without its value, and --debug still shows the traceback."""
    done = run_cli("--config", "--debug", "sql", "SELECT 1", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "error: --config requires a value (the path of an agenttrail.toml: --config FILE, "
        "before or after the command)"
    )


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


@pytest.mark.parametrize(
    ("endpoint", "line"),
    [
        (
            "http://user:pa55word@127.0.0.1:9/",
            "error: cannot connect to http://127.0.0.1:9 while listing s3://bucket/trail/ (check "
            "--endpoint-url or --region, the network and any proxy settings)",
        ),
        (
            "http://user:pa55word@127.0.0.1:9/?X-Amz-Signature=qsecret",
            "error: AWS client error while listing s3://bucket/trail/: EndpointResolutionError "
            "(re-run; if it persists, check the AWS configuration)",
        ),
    ],
)
def test_debug_shows_no_endpoint_secret(tmp_path: Path, endpoint: str, line: str) -> None:
    """botocore's messages quote the endpoint whole ("Could not connect to the endpoint URL:
    "http://user:pa55word@..."), and --debug printed them in the chained exceptions. The
    endpoint comes from the AWS configuration here: --endpoint-url refuses credentials."""
    env = cli_env(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL_S3=endpoint,
        AGENTTRAIL_INGEST_RETRY_MAX_ATTEMPTS="1",
    )
    done = run_cli(
        "ingest", "s3://bucket/trail", "-w", str(tmp_path / "wh"), "--debug", cwd=tmp_path, env=env
    )
    assert (done.returncode, done.stderr.splitlines()[-1]) == (1, line)
    assert "Traceback (most recent call last)" in done.stderr
    assert "botocore.exceptions." in done.stderr  # the chained exception is shown
    assert "http://127.0.0.1:9" in done.stderr
    assert "pa55word" not in done.stderr
    assert "qsecret" not in done.stderr


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


SECOND_SIGNAL = """
import os, signal, time
from pipeline import cli

def signalled():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
    except KeyboardInterrupt:
        pass

with cli._signals_handled():
    signalled()
    time.sleep(0.2)  # the grace thread has read the first signal's byte by now
    signalled()  # Ctrl-C pressed again while the command unwinds
print("unwound", cli._SIGNALLED)
"""


def test_a_second_signal_while_unwinding_prints_nothing(tmp_path: Path) -> None:
    """The grace thread closed the wakeup pipe's read end after the first signal: the second
    one printed "Exception ignored when trying to write to the signal wakeup fd: ...
    BrokenPipeError"."""
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", SECOND_SIGNAL],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"unwound [{int(signal.SIGINT)}, {int(signal.SIGINT)}]\n",
        "",
    )


HANGS_AFTER_UNWINDING = """
import os, signal, sys, time
from pipeline import cli

cli.SIGNAL_GRACE_SECONDS = 0.5
with cli._signals_handled():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    except BaseException:
        pass
if sys.argv[1] == "reported":
    cli._err("terminated, said once")
    cli._REPORTED.set()
time.sleep(30)  # an exit that hangs (a process pool joined, a stuck thread)
"""


@pytest.mark.parametrize("reported", [True, False])
def test_the_grace_ends_a_hung_exit_and_says_so_once(tmp_path: Path, reported: bool) -> None:
    """Past the block, a process whose exit hangs is still ended when the grace is over, with
    the signal's code; its line is not printed a second time where main printed it already."""
    repo = Path(__file__).resolve().parents[1]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HANGS_AFTER_UNWINDING, "reported" if reported else "silent"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert time.monotonic() - started < 20
    said = (
        "terminated, said once\n"
        if reported
        else "terminated (SIGTERM); re-run the same command to carry on (nothing is lost)\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (143, "", said)


S3_REFUSED = (
    "error: the warehouse s3://bucket/wh is in S3: agenttrail reads an s3:// warehouse in place "
    "(sql, query run) but writes only local folders (run ingest, iam import, iam snapshot or "
    "attribute with --warehouse DIR, then upload DIR (e.g. aws s3 sync))\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ["ingest", "{repo}/tests/cases/ingest/good_cloudtrail.json.gz"],
        ["iam", "import", "{repo}/tests/cases/iam/authorization_details_small.json"],
        ["iam", "snapshot"],
        ["attribute"],
    ],
)
def test_writers_refuse_an_s3_warehouse(tmp_path: Path, command: list[str]) -> None:
    """Not a local folder named 's3:' and exit 0: the scheduler must learn that nothing was
    written to the S3 warehouse."""
    repo = Path(__file__).resolve().parents[1]
    args = [a.format(repo=repo) for a in command]
    done = run_cli(*args, "--warehouse", "s3://bucket/wh", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", S3_REFUSED)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_warehouse_is_a_usage_error_not_the_working_folder(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    case = str(repo / "tests" / "cases" / "ingest" / "good_cloudtrail.json.gz")
    done = run_cli("ingest", case, "--warehouse", "", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "error: --warehouse is empty (name the warehouse folder, e.g. /data/agenttrail, or an "
        "s3:// URI to read)\n",
    )
    (tmp_path / "agenttrail.toml").write_text('warehouse = ""\n')
    done = run_cli("ingest", case, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {tmp_path / 'agenttrail.toml'}: warehouse is empty (name the warehouse folder, "
        "e.g. /data/agenttrail, or an s3:// URI to read)\n",
    )
    assert [p.name for p in tmp_path.iterdir()] == ["agenttrail.toml"]


def test_a_warehouse_under_a_file_is_one_line(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "afile").write_text("")
    done = run_cli(
        "ingest", "tests/cases/ingest/good_cloudtrail.json.gz", "-w", str(tmp_path / "afile/sub"),
        cwd=repo,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1,
        f"error: cannot write the warehouse {tmp_path / 'afile' / 'sub'}: Not a directory "
        "(point --warehouse at a folder you can write)\n",
    )


@pytest.mark.parametrize(
    ("config", "args", "line"),
    [
        (
            '[query]\nduckdb_memory_limit = "lots"\n',
            ["sql", "SELECT 1"],
            "{config}: query.duckdb_memory_limit: expected a memory size such as 700MB or 2GB, "
            "got 'lots'",
        ),
        (
            '[ingest]\nduckdb_memory_limit = "lots"\n',
            ["ingest", "{repo}/tests/cases/ingest/good_cloudtrail.json.gz"],
            "{config}: ingest.duckdb_memory_limit: expected a memory size such as 700MB or 2GB, "
            "got 'lots'",
        ),
        (
            "[ingest]\nworkers = 0\n",
            ["ingest", "x"],
            "{config}: ingest.workers: must be 1 or more, got 0",
        ),
        ("", ["ingest", "x", "--workers", "0"], "--workers: must be 1 or more, got 0"),
        (
            "",
            ["ingest", "x", "--max-object-mb", "-5"],
            "--max-object-mb: must be 1 or more, got -5",
        ),
        (
            "[attribution]\nchain_max_depth = -1\n",
            ["attribute"],
            "{config}: attribution.chain_max_depth: must be 1 or more, got -1",
        ),
        # These passed the checks, then failed as internal errors (several lines of DuckDB's
        # message, an OverflowError), or made a folder ./True.
        (
            "[attribution]\nchain_max_depth = 2147483648\n",
            ["attribute"],
            "{config}: attribution.chain_max_depth: must be 100 or less, got 2147483648",
        ),
        (
            '[attribution]\nduckdb_memory_limit = "101%"\n',
            ["attribute"],
            "{config}: attribution.duckdb_memory_limit: must be at most 100% of the memory, got "
            "'101%'",
        ),
        (
            '[query]\nduckdb_memory_limit = "150%"\n',
            ["sql", "SELECT 1"],
            "{config}: query.duckdb_memory_limit: must be at most 100% of the memory, got '150%'",
        ),
        (
            "[ingest]\nstream_threshold_mb = inf\n",
            ["ingest", "{repo}/tests/cases/ingest/good_cloudtrail.json.gz"],
            "{config}: ingest.stream_threshold_mb: must be a finite number, got inf",
        ),
        (
            "[attribution]\nagent_tag_value = false\n",
            ["attribute"],
            "{config}: attribution.agent_tag_value: expected a string, got False",
        ),
        (
            "warehouse = true\n",
            ["sql", "SELECT 1"],
            "{config}: warehouse: expected a string, got True",
        ),
    ],
)
def test_bad_setting_values_are_usage_errors_naming_the_setting(
    tmp_path: Path, config: str, args: list[str], line: str
) -> None:
    repo = Path(__file__).resolve().parents[1]
    path = tmp_path / "c.toml"
    path.write_text(config)
    typed = [a.format(repo=repo) for a in args]
    done = run_cli("--config", str(path), *typed, "-w", str(tmp_path / "wh"), cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"error: {line.format(config=path)}\n",
    )
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize("where", ["file", "environment"])
def test_demo_never_writes_the_configured_warehouse(tmp_path: Path, where: str) -> None:
    """The sample's made-up accounts must not mix into a real warehouse (events are never
    rewritten): `agenttrail demo` writes ./demo-warehouse unless --warehouse names one. Here
    ./demo-warehouse is a file, so the demo stops at once, naming it, and the configured
    warehouse (in S3, which a writer would refuse with its own message) is not what it used."""
    env = cli_env()
    if where == "file":
        (tmp_path / "agenttrail.toml").write_text('warehouse = "s3://bucket/wh"\n')
    else:
        env["AGENTTRAIL_WAREHOUSE"] = "s3://bucket/wh"
    (tmp_path / "demo-warehouse").write_text("not a folder")
    done = run_cli("demo", cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"error: the warehouse {tmp_path / 'demo-warehouse'} is a file, not a folder"
        " (pass --warehouse a folder (created if missing))\n",
    )


def test_demo_help_says_where_it_writes(tmp_path: Path) -> None:
    done = run_cli("demo", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = (
        "Warehouse folder (default: ./demo-warehouse; never the configured one, which the "
        "sample would mix into)."
    )
    # As the terminal's width wraps it (./demo-warehouse is cut at its hyphen).
    assert "".join(said.split()) in "".join(done.stdout.split())


def test_a_relative_warehouse_in_a_config_file_is_read_from_its_folder(tmp_path: Path) -> None:
    """A cron job's --config /etc/agenttrail.toml with warehouse = "wh" must not start a new
    empty warehouse wherever cron runs it."""
    repo = Path(__file__).resolve().parents[1]
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "rel.toml").write_text('warehouse = "wh"\n')
    case = str(repo / "tests" / "cases" / "ingest" / "good_cloudtrail.json.gz")
    made = run_cli("--config", "conf/rel.toml", "ingest", case, "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["warehouse"] == str(conf / "wh")
    read = run_cli("--config", "rel.toml", "sql", "SELECT count(*) AS n FROM events", "-f",
                   "csv", cwd=conf)  # fmt: skip
    assert (read.returncode, read.stdout) == (0, "n\n3\n"), read.stderr


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.warehouse.lock import writer_lock
with writer_lock(Path(sys.argv[1]), "ingest"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_sql_during_the_first_ingest_says_it_is_still_running(tmp_path: Path) -> None:
    """Not "no warehouse": the first ingest has events/ but writes the database at its end."""
    warehouse = tmp_path / "wh"
    (warehouse / "events").mkdir(parents=True)
    repo = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse / ".lock")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=repo,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        done = run_cli("sql", "SELECT 1", "-w", str(warehouse), cwd=tmp_path)
        writer = (warehouse / ".lock").read_text()
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout:
            holder.stdout.close()
    assert writer.startswith(f"ingest by pid {holder.pid} since ")
    assert (done.returncode, done.stderr) == (
        1,
        f"error: the warehouse {warehouse} is still being created ({writer}): its views appear "
        "when that run ends (wait for it, then run this again)\n",
    )
    # Once that process is gone, the events without views are a failed first attribution.
    after = run_cli("sql", "SELECT 1", "-w", str(warehouse), cwd=tmp_path)
    assert after.stderr.startswith(f"error: the warehouse {warehouse} has events but no views")
