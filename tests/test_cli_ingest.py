"""`agenttrail ingest` and `agenttrail sql` as a scheduler or an analyst runs them: exit codes,
stdout and stderr (not a terminal). Ingest runs as a real subprocess; usage errors and the sql
command go through the same entry point (`pipeline.cli.main`) in this process, which is faster."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ingest_fixtures import (
    BAD_CASES,
    EVENTS_OF_BAD_FILES,
    GOOD_CASES,
    GOOD_EVENTS,
    MANIFEST,
    QUARANTINED_RECORDS,
    cli_env,
    copy_cases,
    held_open,
    ingest,
    kill_group,
    rows,
    run_cli,
    start_cli,
    write_too_large,
    write_trail,
)

import pipeline.query.adhoc
import pipeline.warehouse.connect
from pipeline.cli import SIGNAL_GRACE_SECONDS, main

SUMMARY_KEYS = [
    "run_id",
    "warehouse",
    "sources",
    "objects_listed",
    "empty_sources",
    "objects_unchanged",
    "objects_read",
    "objects_too_large",
    "skipped_by_kind",
    "digests_recorded",
    "objects_quarantined",
    "records_read",
    "records_quarantined",
    "outside_period",
    "outside_scope",
    "events_written",
    "duplicates_dropped",
    "bytes_read",
    "bytes_decompressed",
    "seconds",
    "events_per_second",
    "quarantine",
    "failures",
    "attribution",
    "exit_code",
]
LOG_LINE = re.compile(r"ingest: \d+/\d+ files?, [\d,]+ events?, \d+\.\d MB/s")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    copy_cases(
        ["good_cloudtrail.json.gz", "no_records.json", "wrong_types.json"], tmp_path / "logs"
    )
    return tmp_path / "logs"


def test_json_summary_shape_and_exit_code_3(logs: Path, tmp_path: Path) -> None:
    result = run_cli(
        "ingest",
        str(logs),
        "--warehouse",
        str(tmp_path / "wh"),
        "--workers",
        "1",
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr == ""  # --json: no progress lines, nothing but the JSON document
    summary = json.loads(result.stdout)
    assert list(summary) == SUMMARY_KEYS
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", summary["run_id"])
    assert {k: summary[k] for k in SUMMARY_KEYS[1:19]} == {
        "warehouse": str(tmp_path / "wh"),
        "sources": [str(logs)],
        "objects_listed": 3,
        "empty_sources": [],
        "objects_unchanged": 0,
        "objects_read": 3,
        "objects_too_large": 0,
        "skipped_by_kind": {},
        "digests_recorded": 0,
        "objects_quarantined": 1,
        "records_read": 12,
        "records_quarantined": 8,
        "outside_period": 0,
        "outside_scope": 0,
        "events_written": 4,
        "duplicates_dropped": 0,
        "bytes_read": sum(p.stat().st_size for p in logs.iterdir()),
        "bytes_decompressed": summary["bytes_decompressed"],
    }
    assert summary["exit_code"] == 3
    assert summary["failures"] == []
    assert isinstance(summary["seconds"], float)
    assert isinstance(summary["events_per_second"], int)
    assert summary["quarantine"][0] == {
        "uri": str(logs / "no_records.json"),
        "reason": "JSON without Records: the object has no 'Records' list",
    }
    assert {
        "uri": str(logs / "wrong_types.json"),
        "record": 1,
        "reason": "wrong type: eventTime: Expected `str | null`, got `int`",
    } in summary["quarantine"]
    assert len(summary["quarantine"]) == 9

    # Nothing new: exit 0 (the quarantined file was dealt with by the earlier run).
    again = run_cli(
        "ingest", str(logs), "--warehouse", str(tmp_path / "wh"), "--json", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["objects_unchanged"] == 3


@pytest.mark.parametrize(
    "period", [["--until", "9999-12-31"], ["--since", "0001-01-01"]], ids=["until", "since"]
)
def test_the_first_and_last_days_there_are_are_open_ends(tmp_path: Path, period: list[str]) -> None:
    """As in `query run`. The day of slack beyond them, when pruning the AWSLogs layout's day
    folders, was an internal error (OverflowError)."""
    write_trail(tmp_path / "logs", files=2, records=3)
    warehouse = str(tmp_path / "wh")
    args = ("ingest", str(tmp_path / "logs"), "-w", warehouse, "--json", *period)
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["objects_read"], summary["events_written"]) == (2, 6)


def test_a_commit_out_of_memory_names_the_setting_to_raise(tmp_path: Path) -> None:
    """DuckDB's limit during commits: it was "internal error: OutOfMemoryException". Nothing is
    recorded of the objects not committed, so the re-run with more memory reads them all."""
    write_trail(tmp_path / "logs", files=60)
    warehouse = str(tmp_path / "wh")
    variable = "AGENTTRAIL_INGEST_DUCKDB_MEMORY_LIMIT"
    args = ("ingest", str(tmp_path / "logs"), "-w", warehouse, "--json")
    short = run_cli(*args, cwd=tmp_path, env=cli_env(**{variable: "16MB"}))
    assert (short.returncode, short.stdout) == (1, ""), short.stderr
    detail = re.fullmatch(
        r"error: committing events: DuckDB ran out of memory \((.+)\): .*\n", short.stderr
    )
    assert detail is not None, short.stderr
    assert short.stderr == (
        f"error: committing events: DuckDB ran out of memory ({detail[1]}): the objects not"
        " committed yet are read again by the next run, and nothing committed before is lost"
        f" (raise [ingest] duckdb_memory_limit (now 16MB) in agenttrail.toml or with {variable},"
        " then re-run the same command to carry on)\n"
    )
    rerun = run_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["objects_unchanged"], summary["objects_read"]) == (0, 60)


def test_plain_log_lines_and_summary_when_not_a_terminal(logs: Path, tmp_path: Path) -> None:
    result = run_cli(
        "ingest", str(logs), "-w", str(tmp_path / "wh"), "--workers", "1", cwd=tmp_path
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    assert all(LOG_LINE.fullmatch(line) for line in lines), lines
    assert lines[-1].startswith("ingest: 3/3 files, 4 events, ")
    out = result.stdout.rstrip("\n")
    assert "\x1b[" not in out + result.stderr  # no terminal control codes in logs
    table = [line.strip() for line in out.splitlines()[1:15]]
    assert [
        re.split(r"\s{2,}", line) for line in table if not line.startswith(("MB", "seconds"))
    ] == [
        ["objects listed", "3"],
        ["unchanged since last run", "0"],
        ["read", "3"],
        ["too large, not read", "0"],
        ["digests recorded", "0"],
        ["quarantined", "1"],
        ["records read", "12"],
        ["events written", "4"],
        ["duplicates dropped", "0"],
        ["outside --since/--until", "0"],
        ["outside --account/--region", "0"],
        ["quarantined", "8"],
    ]
    rest = out.splitlines()[15:]
    assert rest[0] == (
        f"quarantined: {logs / 'no_records.json'}: "
        "JSON without Records: the object has no 'Records' list"
    )
    assert rest[1] == (
        f"quarantined: {logs / 'wrong_types.json'} record 1: "
        "wrong type: eventTime: Expected `str | null`, got `int`"
    )
    assert len(rest) == 1 + 8 + 1
    assert rest[-1] == f"warehouse: {tmp_path / 'wh'}"


def test_account_and_region_filter_records_of_files_outside_the_key_layout(
    tmp_path: Path,
) -> None:
    """A SIEM export of two accounts and two regions: --account/--region keep the records of
    the accounts and regions asked for, as --since/--until keep those of the period; the others
    are counted, and a later run that asks for more reads the file again."""
    logs = tmp_path / "logs"
    copy_cases(["scope/siem_export.ndjson"], logs)
    warehouse = str(tmp_path / "wh")

    def run(*filters: str) -> dict[str, object]:
        done = run_cli("ingest", str(logs), "-w", warehouse, "--json", *filters, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        keys = ("objects_unchanged", "objects_read", "records_read", "outside_scope")
        return {k: summary[k] for k in (*keys, "events_written", "duplicates_dropped")}

    def counts(unchanged: int, read: int, records: int, *rest: int) -> dict[str, object]:
        keys = ("outside_scope", "events_written", "duplicates_dropped")
        return {
            "objects_unchanged": unchanged,
            "objects_read": read,
            "records_read": records,
            **dict(zip(keys, rest, strict=True)),
        }

    one = ["--account", "111111111111", "--region", "eu-west-1"]
    assert run(*one) == counts(0, 1, 4, 3, 1, 0)
    assert run(*one) == counts(1, 0, 0, 0, 0, 0)
    # Every region of the account: more than the first run kept, so the file is read again.
    assert run("--account", "111111111111") == counts(0, 1, 4, 2, 1, 1)
    assert run() == counts(0, 1, 4, 0, 2, 2)
    assert run() == counts(1, 0, 0, 0, 0, 0)
    ids = rows(Path(warehouse), "SELECT event_id, recipient_account_id, aws_region FROM events "
               "ORDER BY 1")  # fmt: skip
    assert [tuple(r.values()) for r in ids] == [
        ("scope-1", "111111111111", "eu-west-1"),
        ("scope-2", "111111111111", "us-west-2"),
        ("scope-3", "333333333333", "eu-west-1"),
        ("scope-4", "333333333333", "us-west-2"),
    ]


def test_every_bad_case_through_the_cli_exits_3(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases([*GOOD_CASES, *BAD_CASES], logs)
    write_too_large(logs)
    result = run_cli(
        "ingest",
        str(logs),
        "-w",
        str(tmp_path / "wh"),
        "--workers",
        "1",
        "--max-object-mb",
        "1",
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    listed = {(Path(q["uri"]).name, q.get("record"), q["reason"]) for q in summary["quarantine"]}
    file_faults = {n for n, e in MANIFEST.items() if e[0] == "quarantined"}
    assert listed == {(n, None, MANIFEST[n][1]) for n in file_faults} | set(QUARANTINED_RECORDS)
    assert (summary["objects_quarantined"], summary["records_quarantined"]) == (
        len(file_faults),
        len(QUARANTINED_RECORDS),
    )
    assert summary["events_written"] == len(GOOD_EVENTS) + len(EVENTS_OF_BAD_FILES)
    assert summary["exit_code"] == 3
    # Every object listed is counted once (an empty file is read: it holds nothing).
    assert (summary["objects_read"], summary["objects_too_large"]) == (len(MANIFEST) - 1, 1)
    assert summary["objects_listed"] == (
        summary["objects_unchanged"]
        + summary["objects_read"]
        + summary["objects_too_large"]
        + summary["digests_recorded"]
        + sum(summary["skipped_by_kind"].values())
        + len(summary["failures"])
    )


def test_an_empty_file_is_read_and_quarantined(tmp_path: Path) -> None:
    """Listed 2 = read 2, one of them quarantined: the counts add up."""
    logs = tmp_path / "logs"
    copy_cases(["array_of_records.json", "empty.json"], logs)
    done = run_cli("ingest", str(logs), "-w", str(tmp_path / "wh"), "--json", cwd=tmp_path)
    summary = json.loads(done.stdout)
    keys = ("objects_listed", "objects_read", "objects_too_large", "objects_quarantined")
    assert (done.returncode, *(summary[k] for k in keys)) == (3, 2, 2, 0, 1)


# ---- usage errors and `agenttrail sql`, through the CLI's own entry point in this process --------
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """`cli(*args)` runs `agenttrail ARGS` through pipeline.cli.main (the console script's entry
    point, with its one error boundary) and returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no agenttrail.toml
    for name in [n for n in os.environ if n.startswith("AGENTTRAIL_")]:
        monkeypatch.delenv(name)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["agenttrail", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        out = capsys.readouterr()
        return int(exited.value.code or 0), out.out, out.err

    return run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2024-03-02", "--until", "2024-03-01"], "error: --since is after --until\n"),
        (
            ["--since", "2024-13-01"],
            "error: --since '2024-13-01' is not a date (use YYYY-MM-DD (UTC))\n",
        ),
        (
            ["--until", "yesterday"],
            "error: --until 'yesterday' is not a date (use YYYY-MM-DD (UTC))\n",
        ),
        # They ran to the end having read nothing, but for a notice.
        (
            ["--account", "111122223333", "--account", "abc"],
            "error: --account 'abc' is not an account id (use the 12 digits)\n",
        ),
        (
            ["--region", "US-EAST-1"],
            "error: --region 'US-EAST-1' is not an AWS region name (write it as AWS does, in"
            " lower case, e.g. us-east-1 or eu-west-3)\n",
        ),
        (
            ["--workers", "99999999999999999999"],
            "error: --workers: must be 1024 or less, got 99999999999999999999\n",
        ),
    ],
)
def test_usage_errors_exit_2(
    cli: Cli, logs: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    assert cli("ingest", str(logs), "-w", str(tmp_path / "wh"), *args) == (2, "", message)
    assert not (tmp_path / "wh").exists()


def test_a_warehouse_path_with_a_glob_character_exits_2_before_writing(
    cli: Cli, logs: Path, tmp_path: Path
) -> None:
    """DuckDB reads the views' paths as patterns: 'wh[1]' would commit events that no view
    could read, on every run. It is refused before anything is written."""
    warehouse = tmp_path / "wh[1]"
    assert cli("ingest", str(logs), "-w", str(warehouse)) == (
        2,
        "",
        f"error: the warehouse path {warehouse} holds '[', which DuckDB reads as a file pattern:"
        " the views would read other folders' files, or none (choose a warehouse folder whose"
        " path has none of [ * ? \\)\n",
    )
    assert not warehouse.exists()


def test_missing_source_argument_and_unknown_option_exit_2(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("ingest")
    assert (code, out) == (2, "")
    assert "Missing argument 'SOURCE...'" in err
    code, out, err = cli("ingest", str(tmp_path), "--frobnicate")
    assert (code, out) == (2, "")
    assert "No such option: --frobnicate" in err


def test_source_not_found_exit_1(cli: Cli, tmp_path: Path) -> None:
    assert cli("ingest", str(tmp_path / "nope"), "-w", str(tmp_path / "wh")) == (
        1,
        "",
        f"error: source not found: {tmp_path / 'nope'} "
        "(give an s3://bucket[/prefix] URI, a folder or a file)\n",
    )


def test_a_source_with_nothing_to_list_gets_a_notice(logs: Path, tmp_path: Path) -> None:
    """A wrong prefix or folder would otherwise pass for a quiet night in a scheduled job."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(
        "ingest", str(empty), str(logs), "-w", str(tmp_path / "wh"), "--json", cwd=tmp_path
    )
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["empty_sources"] == [str(empty)]
    assert result.stderr == (
        f"notice: {empty} holds no objects; check the bucket, prefix or folder (CloudTrail "
        "writes under AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)\n"
    )
    # In CloudTrail's key layout the day folders are pruned: none of this trail's days is kept.
    trail = tmp_path / "trail"
    write_trail(trail, files=2, records=3)
    filtered = run_cli(
        "ingest", str(trail), "-w", str(tmp_path / "wh2"), "--json", "--since", "2031-01-01",
        cwd=tmp_path,
    )  # fmt: skip
    assert filtered.returncode == 0, filtered.stderr
    assert json.loads(filtered.stdout)["objects_listed"] == 0
    assert filtered.stderr == (
        f"notice: {trail} holds no objects that --since/--until/--account/--region let "
        "through; check the bucket, prefix or folder (CloudTrail writes under "
        "AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)\n"
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One warehouse for the sql tests (they only read it, or write outside it)."""
    root = tmp_path_factory.mktemp("sql")
    logs = root / "logs"
    copy_cases(["good_cloudtrail.json.gz", "no_records.json", "wrong_types.json"], logs)
    summary = ingest([logs], root / "wh")
    assert int(summary.exit_code) == 3
    return root / "wh"


QUERY = (
    "SELECT event_id, read_only, event_time FROM events "
    "WHERE event_id LIKE 'good-%' ORDER BY 1 LIMIT 2"
)


def test_sql_formats(cli: Cli, warehouse: Path) -> None:
    def sql(fmt: str) -> str:
        code, out, err = cli("sql", QUERY, "-w", str(warehouse), "--format", fmt)
        assert (code, err) == (0, "")
        return out

    assert sql("csv") == (
        "event_id,read_only,event_time\n"
        "good-1,true,2024-03-01T09:00:01+00:00\n"
        "good-2,true,2024-03-01T09:00:02+00:00\n"
    )
    assert json.loads(sql("json")) == [
        {"event_id": "good-1", "read_only": True, "event_time": "2024-03-01T09:00:01+00:00"},
        {"event_id": "good-2", "read_only": True, "event_time": "2024-03-01T09:00:02+00:00"},
    ]
    assert sql("table") == (
        "event_id  read_only  event_time\n"
        "--------  ---------  -------------------------\n"
        "good-1    true       2024-03-01T09:00:01+00:00\n"
        "good-2    true       2024-03-01T09:00:02+00:00\n"
        "(2 rows)\n"
    )


def test_sql_reads_manifest_and_quarantine_views(cli: Cli, warehouse: Path) -> None:
    statuses = "SELECT status, count(*) AS n FROM manifest GROUP BY 1 ORDER BY 1"
    assert cli("sql", statuses, "-w", str(warehouse), "-f", "csv") == (
        0,
        "status,n\ningested,2\nquarantined,1\n",
        "",
    )
    records = "SELECT count(*) AS n FROM quarantined_records"
    assert cli("sql", records, "-w", str(warehouse), "-f", "csv") == (0, "n\n8\n", "")


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("COPY (SELECT 1) TO '{out}'", "a COPY"),
        ("CREATE TABLE t AS SELECT 1", "a CREATE"),
        ("ATTACH '{out}' AS other", "an ATTACH"),
        ("INSERT INTO events SELECT * FROM events", "an INSERT"),
        ("UPDATE events SET event_name = 'x'", "an UPDATE"),
        ("SET memory_limit = '1GB'", "a SET"),
        ("EXPORT DATABASE '{out}'", "an EXPORT"),
        # DuckDB files these under LOAD and CALL: the refusal names what was typed.
        ("install httpfs", "an INSTALL"),
        ("/* tidy up */ checkpoint", "a CHECKPOINT"),
        ("force checkpoint", "a FORCE CHECKPOINT"),
        ("call duckdb_tables()", "a CALL"),
    ],
)
def test_sql_refuses_writes_without_allow_write(
    cli: Cli, warehouse: Path, tmp_path: Path, statement: str, kind: str
) -> None:
    out = tmp_path / "written.out"
    assert cli("sql", statement.format(out=out), "-w", str(warehouse)) == (
        2,
        "",
        f"error: refused: {kind} statement can change the warehouse or write files "
        "(pass --allow-write if that is what you want)\n",
    )
    assert not out.exists()


def test_sql_allow_write(cli: Cli, warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.csv"
    copy = f"COPY (SELECT 42 AS answer) TO '{out}'"
    code, _, err = cli("sql", copy, "-w", str(warehouse), "--allow-write")
    assert (code, err) == (0, "")
    assert out.read_text() == "answer\n42\n"


def test_sql_refuses_explain_analyze_of_a_write(cli: Cli, warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "explained.csv"
    code, _, _ = cli("sql", f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'", "-w", str(warehouse))
    assert code == 2
    assert not out.exists()


def test_sql_without_warehouse_exit_1(cli: Cli, tmp_path: Path) -> None:
    assert cli("sql", "SELECT 1", "-w", str(tmp_path / "none")) == (
        1,
        "",
        f"error: no warehouse at {tmp_path / 'none'} "
        "(run 'agenttrail ingest SOURCE --warehouse DIR' first, or pass --warehouse)\n",
    )


@pytest.mark.parametrize(
    ("statement", "line"),
    [
        ("selec 1", 'Parser Error: syntax error at or near "selec"'),
        ("SELECT * FROM nosuchtable", "Catalog Error: Table with name nosuchtable does not exist!"),
        (
            "SELECT no_such_column FROM events",
            'Binder Error: Referenced column "no_such_column" not found in FROM clause!',
        ),
    ],
)
def test_sql_a_statement_that_does_not_parse_or_bind_exits_2(
    cli: Cli, warehouse: Path, statement: str, line: str
) -> None:
    """A bad statement is a usage error (README: exit 2), with DuckDB's first line."""
    assert cli("sql", statement, "-w", str(warehouse)) == (2, "", f"error: SQL error: {line}\n")


def test_attribution_that_cannot_run_still_prints_the_summary(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analyst holds the database open while the scheduled ingest ends: its JSON summary
    (quarantine list included) is printed all the same, with the attribution failure in it, the
    one-line error goes to stderr, and the exit code is the highest that applies: 3."""
    warehouse = tmp_path / "wh"
    ingest(copy_cases(["good_cloudtrail.json.gz"], tmp_path / "first"), warehouse)
    monkeypatch.setattr(pipeline.warehouse.connect, "DATABASE_WAIT_SECONDS", 0.3)
    later = tmp_path / "later"
    copy_cases(["array_of_records.json", "no_records.json"], later)
    with held_open(warehouse / "agenttrail.duckdb") as holder:
        code, out, err = cli("ingest", str(later), "-w", str(warehouse), "--json")
        # Nothing new on the next run, but the classification still lags: it tries again, and
        # the table says so too.
        again = cli("ingest", str(later), "-w", str(warehouse))
    summary = json.loads(out)
    held = (
        f"{warehouse / 'agenttrail.duckdb'} is open in {Path(sys.executable).resolve().name} "
        f"(PID {holder.pid}) (close it, then run 'agenttrail attribute --warehouse {warehouse}' "
        "(the next ingest also catches up))"
    )
    line = f"2 new events are committed, but attribution could not run: {held}"
    assert (code, err) == (3, f"error: {line}\n")
    assert (summary["events_written"], summary["objects_quarantined"]) == (2, 1)
    assert summary["quarantine"] == [
        {
            "uri": str(later / "no_records.json"),
            "reason": "JSON without Records: the object has no 'Records' list",
        }
    ]
    assert (summary["attribution"], summary["exit_code"]) == ({"error": line}, 3)
    code, out, err = again
    assert code == 1
    assert err.splitlines()[-1] == f"error: attribution could not run: {held}"
    assert out.rstrip("\n").splitlines()[-2:] == [
        f"attribution failed: attribution could not run: {held}",
        f"warehouse: {warehouse}",
    ]
    assert cli("ingest", str(later), "-w", str(warehouse))[0] == 0  # the rebuild catches up


def test_one_file_and_one_event_are_singular(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(["single_record_pretty.json"], logs)
    done = run_cli("ingest", str(logs), "-w", str(tmp_path / "wh"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].startswith("ingest: 1/1 file, 1 event, ")


def test_an_internal_error_with_debug_does_not_ask_for_debug(
    cli: Cli, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline.query.adhoc, "open_sql", broken)
    code, _, err = cli("sql", "SELECT 1", "-w", str(warehouse))
    assert (code, err) == (
        1,
        "internal error: RuntimeError: boom (re-run with --debug for details)\n",
    )
    code, _, err = cli("sql", "SELECT 1", "-w", str(warehouse), "--debug")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "internal error: RuntimeError: boom"


def test_an_internal_error_is_one_line(
    cli: Cli, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's messages run on for lines (the statement, a caret under it): the catch-all
    boundary printed them all."""

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError(
            "Conversion Error: Type INT64 with value 2147483648 can't be cast\n\n"
            "LINE 1: ... VALUES ($key, $value, $mcp_key, $depth, $version)\n"
            "                                          ^^^^^^"
        )

    monkeypatch.setattr(pipeline.query.adhoc, "open_sql", broken)
    code, _, err = cli("sql", "SELECT 1", "-w", str(warehouse))
    assert (code, err) == (
        1,
        "internal error: RuntimeError: Conversion Error: Type INT64 with value 2147483648 can't "
        "be cast (re-run with --debug for details)\n",
    )

    def leaky(*args: object, **kwargs: object) -> object:
        raise RuntimeError(
            'Could not connect to "http://user:pa55@127.0.0.1:9/b?X-Amz-Signature=q"'
        )

    monkeypatch.setattr(pipeline.query.adhoc, "open_sql", leaky)
    code, _, err = cli("sql", "SELECT 1", "-w", str(warehouse))
    assert (code, err) == (
        1,
        'internal error: RuntimeError: Could not connect to "http://127.0.0.1:9" (re-run with '
        "--debug for details)\n",
    )
    monkeypatch.setattr(pipeline.query.adhoc, "open_sql", broken)
    code, _, err = cli("sql", "SELECT 1", "-w", str(warehouse), "--debug")
    assert code == 1
    assert "LINE 1: ... VALUES ($key" in err  # the traceback keeps the whole message
    assert err.splitlines()[-1] == (
        "internal error: RuntimeError: Conversion Error: Type INT64 with value 2147483648 can't "
        "be cast"
    )


def _group(pgid: int) -> list[int]:
    """The live processes of a process group (the CLI, its fork server, parse processes and
    resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != b"Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("signum", "times", "to_group", "code", "line"),
    [
        (signal.SIGINT, 1, True, 130, "interrupted"),
        (signal.SIGINT, 2, True, 130, "interrupted"),
        (signal.SIGTERM, 2, False, 143, "terminated (SIGTERM)"),
    ],
    ids=["ctrl-c", "ctrl-c-twice", "sigterm-twice"],
)
def test_ctrl_c_during_ingest_prints_one_line_and_ends_every_process(
    tmp_path: Path, signum: int, times: int, to_group: bool, code: int, line: str
) -> None:
    """Ctrl-C goes to the whole foreground group, parse processes included. A parse process
    waiting for its next task printed a traceback ("Process ForkServerProcess-1: ...
    KeyboardInterrupt") under "interrupted"; now parse processes let Ctrl-C pass (a test in
    test_interrupts.py holds that, which this one cannot time), and the ingest, unwinding,
    still ends them all.

    A second Ctrl-C or SIGTERM (a scheduler's timeout, sent to the ingest alone) while the
    first unwinds cut the parse processes' shutdown short: they were never told to stop, and
    the process waited for them until the grace (10 s) ended it, its staged files left. Now
    the run still ends at once (test_interrupts.py holds the shutdown itself, with the second
    signal timed inside it)."""
    write_trail(tmp_path / "logs", files=120)
    warehouse = tmp_path / "wh"
    process = start_cli(
        "ingest", str(tmp_path / "logs"), "-w", str(warehouse), "--workers", "1",
        cwd=tmp_path, env=cli_env(AGENTTRAIL_INGEST_COMMIT_ROWS="200"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # The parse process has staged files: it is past its start, Ctrl-C ignored or not.
        while not any((warehouse / "_staging").rglob("*.parquet")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "nothing staged"
            time.sleep(0.005)
        signalled = time.monotonic()
        for n in range(times):
            if n:
                time.sleep(0.1)  # the first one is unwinding the run
            with contextlib.suppress(ProcessLookupError):
                (os.killpg if to_group else os.kill)(process.pid, signum)
        _, err = process.communicate(timeout=60)
        took = time.monotonic() - signalled
        deadline = time.monotonic() + 15
        while (left := _group(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        kill_group(process)
    lines = [line for line in err.splitlines() if not LOG_LINE.fullmatch(line)]
    assert (process.returncode, lines, left) == (
        code,
        [f"{line}; re-run the same command to carry on (nothing is lost)"],
        [],
    ), err
    assert not (warehouse / "_staging").exists()
    # Ended by its own unwinding, not by the grace (which prints the same line and code).
    assert took < SIGNAL_GRACE_SECONDS / 2, took


def test_an_s3_uri_in_capitals_is_read_from_s3(
    cli: Cli, tmp_path: Path, make_bucket: Callable[[str], Any], s3_endpoint: str
) -> None:
    """`S3://bucket` is an S3 source (as open_source decides, whatever the letter case): the
    command builds its S3 client for it, instead of a message meant for developers."""
    make_bucket("capitals")
    code, _out, err = cli(
        "ingest", "S3://capitals", "--endpoint-url", s3_endpoint, "-w", str(tmp_path / "wh")
    )
    assert (code, err) == (
        0,
        "notice: S3://capitals holds no objects; check the bucket, prefix or folder (CloudTrail"
        " writes under AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)\n",
    )
