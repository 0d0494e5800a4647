"""`agenttrail iam import` and `agenttrail query run` through the real command line: odd inputs
are one line and the README's exit code, never an internal error; an incomplete import's files
are removed with a notice; a period judged by an IAM snapshot taken after it says so."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ingest_fixtures import agenttrail

from pipeline.iam.load import snapshot_id_of

from .cases import ACCOUNT, CASE, OTHER_ACCOUNT, case_document

REPO = Path(__file__).resolve().parents[2]
EXPORT_HINT = "(pass the output of `aws iam get-account-authorization-details --output json`)"


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_taken_at_outside_the_years_1_to_9999_in_utc_is_a_usage_error(
    tmp_path: Path, moment: str
) -> None:
    done = agenttrail(
        "iam", "import", str(CASE), "--taken-at", moment, "-w", str(tmp_path / "w"), cwd=tmp_path
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: --taken-at {moment} is outside the years 1 to 9999 in UTC "
        "(give a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z)\n"
    )


def test_a_date_without_zone_is_refused_with_a_time_that_imports(tmp_path: Path) -> None:
    warehouse = tmp_path / "w"
    done = agenttrail(
        "iam", "import", str(CASE), "--taken-at", "2026-06-30", "-w", str(warehouse), cwd=tmp_path
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --taken-at '2026-06-30' has no time zone "
        "(give one, e.g. 2026-06-30T00:00:00Z for UTC)\n"
    )
    done = agenttrail(
        "iam", "import", str(CASE), "--taken-at", "2026-06-30T00:00:00Z", "-w", str(warehouse),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "taken at 2026-06-30T00:00:00+00:00" in done.stdout


def test_a_taken_at_in_the_future_is_a_usage_error(tmp_path: Path) -> None:
    warehouse = tmp_path / "w"
    done = agenttrail(
        "iam", "import", str(CASE), "--taken-at", "2999-01-01T00:00:00Z", "-w", str(warehouse),
        cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert re.fullmatch(
        r"error: --taken-at 2999-01-01T00:00:00Z is in the future "
        r"\(it is \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) "
        r"\(give the time the export was taken; without --taken-at it is now\)\n",
        done.stderr,
    ), done.stderr
    assert not (warehouse / "iam").exists()


# ------------------------------------------------------------ iam snapshot --out: refused
# No IAM endpoint listens there: a refusal that came after the call would be its error (exit 1).
NO_AWS = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("read", "out", "inside"),
    [
        ("w", "w/iam/snapshots/x.json", "w"),
        ("w", "w/agenttrail.duckdb", "w"),
        ("other", "w/iam/snapshots/x.json", "w"),  # another warehouse's own path
    ],
    ids=["snapshots-folder", "database", "another-warehouse"],
)
def test_iam_snapshot_out_inside_a_warehouse_is_refused_before_aws(
    tmp_path: Path, read: str, out: str, inside: str
) -> None:
    warehouse = tmp_path / "w"
    done = agenttrail("iam", "import", str(CASE), "-w", str(warehouse), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = {p: p.read_bytes() for p in warehouse.rglob("*") if p.is_file()}
    done = agenttrail(
        "iam", "snapshot", "--endpoint-url", NO_AWS, "--out", str(tmp_path / out),
        "-w", str(tmp_path / read), cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: --out {tmp_path / out} is inside the warehouse {tmp_path / inside}: a result "
        "written there could replace its database or be read as its data "
        "(write the result outside the warehouse folder)\n"
    )
    assert {p: p.read_bytes() for p in warehouse.rglob("*") if p.is_file()} == before


def test_iam_snapshot_out_that_exists_or_is_no_file_is_refused_before_aws(tmp_path: Path) -> None:
    kept = write(tmp_path / "kept.json", "an earlier export\n")
    run = ("iam", "snapshot", "--endpoint-url", NO_AWS, "-w", str(tmp_path / "w"))
    done = agenttrail(*run, "--out", str(kept), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: --out {kept} exists: a snapshot never replaces a file (an imported snapshot "
        "names the file it came from) (name a new file)\n"
    )
    assert kept.read_text() == "an earlier export\n"
    done = agenttrail(*run, "--out", "/dev/stdout", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --out /dev/stdout is not a file: the snapshot is imported from the file it is "
        "kept in (name a new file, e.g. authorization-details.json)\n"
    )


def _role(**fields: Any) -> dict[str, Any]:
    role = {"RoleName": "x", "RoleId": "AROA1", "Arn": f"arn:aws:iam::{ACCOUNT}:role/x"}
    return {"RoleDetailList": [{**role, **fields}]}


@pytest.mark.parametrize(
    ("document", "problem", "hint"),
    [
        (
            _role(CreateDate="0001-01-01T00:00:00+01:00"),
            "RoleDetailList[0] has a CreateDate outside the years 1 to 9999 in UTC: "
            "'0001-01-01T00:00:00+01:00'",
            EXPORT_HINT,
        ),
        (
            '{"RoleDetailList": [{"RoleName": "x", "RoleId": "r", '
            f'"Arn": "arn:aws:iam::{ACCOUNT}:role/x", '
            '"AssumeRolePolicyDocument": ' + "[" * 100_000 + "]" * 100_000 + "}]}",
            "RoleDetailList[0].AssumeRolePolicyDocument is nested more than 100 levels deep",
            EXPORT_HINT,
        ),
        (
            {
                "RoleDetailList": [],
                "Policies": [
                    {"Arn": f"arn:aws:iam::{ACCOUNT}:policy/p", "AttachmentCount": 10**22}
                ],
            },
            "Policies[0] has an AttachmentCount beyond a 64-bit integer (23 digits)",
            EXPORT_HINT,
        ),
        (
            _role(Tags=[{"Key": "k", "Value": "\ud800"}]),
            "RoleDetailList[0].Tags[0] has a Value with a lone UTF-16 surrogate escape (\\ud800)",
            EXPORT_HINT,
        ),
        (
            {**case_document(), "IsTruncated": True, "Marker": "AAEXAMPLEMARKER"},
            "a truncated export (IsTruncated, Marker): more pages follow, so roles, users, "
            "groups or policies are missing",
            "(export the whole account without --max-items or --no-paginate: "
            "`aws iam get-account-authorization-details --output json`)",
        ),
        (
            {k: v for k, v in case_document().items() if k != "RoleDetailList"},
            "no RoleDetailList, so the account's roles are unknown (every role would read as "
            "deleted from this snapshot on)",
            EXPORT_HINT,
        ),
    ],
    ids=["date", "nesting", "int64", "surrogate", "truncated", "no-roles"],
)
def test_odd_inputs_are_one_line_naming_the_file_and_the_element(
    tmp_path: Path, document: Any, problem: str, hint: str
) -> None:
    path = write(tmp_path / "odd.json", document)
    warehouse = tmp_path / "w"
    done = agenttrail(
        "iam", "import", str(CASE), str(path), "--taken-at", "2026-06-01T00:00:00Z",
        "-w", str(warehouse), cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    line = 1 if "nested" in problem else None  # the decoder's failure: the file's line
    where = f"{path}:{line}:" if line else f"{path}:"
    assert done.stderr == f"error: {where} {problem} {hint}\n"
    assert not (warehouse / "iam").exists()


def test_differing_snapshots_at_one_time_are_a_usage_error_naming_both(tmp_path: Path) -> None:
    document = case_document()
    document["RoleDetailList"][0]["Tags"] = []
    other = write(tmp_path / "untagged.json", document)
    done = agenttrail(
        "iam", "import", str(CASE), str(other), "--taken-at", "2026-06-01T00:00:00Z",
        "-w", str(tmp_path / "w"), cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: {other} and {CASE} (given in the same import) are both snapshots of account "
        f"{ACCOUNT} taken at 2026-06-01T00:00:00+00:00, but they differ "
        "(import each with --taken-at set to when it was exported)\n"
    )


def test_the_files_of_an_unfinished_import_are_removed_with_a_notice(tmp_path: Path) -> None:
    warehouse = tmp_path / "w"
    done = agenttrail("iam", "import", str(CASE), "-w", str(warehouse), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    left = warehouse / "iam" / "roles" / "0123456789abcdef.parquet"
    left.write_bytes((next((warehouse / "iam" / "roles").glob("*.parquet"))).read_bytes())
    taken_at = "2026-06-01T00:00:00Z"
    done = agenttrail(
        "iam", "import", str(CASE), "--taken-at", taken_at, "-w", str(warehouse), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "notice: removed the files of IAM snapshot 0123456789abcdef, whose import did not "
        "finish (it failed or was killed before listing the snapshot)\n"
    )
    assert not left.exists()


def test_query_run_says_which_accounts_are_judged_by_a_later_snapshot(tmp_path: Path) -> None:
    """ACCOUNT's only snapshot is taken after 2026Q3, OTHER_ACCOUNT's before its end. Every
    query that reads the IAM views, the roles' tag timeline or the verdicts says so."""
    warehouse = tmp_path / "w"
    other = write(
        tmp_path / "other.json",
        json.dumps(case_document()).replace(f"::{ACCOUNT}:", f"::{OTHER_ACCOUNT}:"),
    )
    for path, taken_at in ((CASE, "2026-11-01T00:00:00Z"), (other, "2026-09-01T00:00:00Z")):
        done = agenttrail(
            "iam", "import", str(path), "--taken-at", taken_at, "-w", str(warehouse), cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
    later = snapshot_id_of(CASE.read_bytes(), datetime(2026, 11, 1, tzinfo=UTC))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = agenttrail("query", "run", *args, "-w", str(warehouse), "-f", "csv", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done

    notice = (
        f"notice: account {ACCOUNT}: no IAM snapshot taken at or before "
        f"2026-10-01T00:00:00+00:00; using {later} taken later, at 2026-11-01T00:00:00+00:00, "
        "so roles and users tagged or untagged in between may be misjudged (import an older "
        "snapshot with `agenttrail iam import FILE --taken-at TIME`)\n"
    )
    assert run("principals", "--quarter", "2026Q3").stderr == notice
    assert run("principals", "--quarter", "2026Q4").stderr == ""
    assert run("principals", "--quarter", "2026Q3", "--account", OTHER_ACCOUNT).stderr == ""
    assert run("principals").stderr == ""  # no period end: the newest snapshot applies
    # Queries of the verdicts and of the roles' tag timeline: a later snapshot decides which
    # roles were agent roles in the period (it applies backwards) as it decides principals.
    for query in ("untagged_agent_roles", "agent_bypass", "activity_by_actor"):
        assert (query, run(query, "--quarter", "2026Q3").stderr) == (query, notice)
        assert (query, run(query, "--quarter", "2026Q4").stderr) == (query, "")
    assert run("coverage", "--quarter", "2026Q3").stderr == ""  # reads the events only
