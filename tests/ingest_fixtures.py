"""Helpers shared by the ingest tests: the named case files, running ingest, reading the result.

Results are always read back through DuckDB on WAREHOUSE/agenttrail.duckdb (read-only), as an
analyst would, never through the package's own readers.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.config import Settings, load_settings
from pipeline.ingest import IngestSummary, run_ingest
from pipeline.source import Filters

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "cases" / "ingest"
DATASETS = REPO / ".." / "shared" / "datasets"
OTRF = DATASETS / "otrf-ec2-proxy-s3-exfiltration"
SAMPLE_LOGS = REPO / "sample_logs"
ACCOUNT = "111122223333"
TOKEN_MARK = b"FAKESESSIONTOKEN"  # every session token in the cases starts with this
REDACTED = "<redacted by agenttrail>"

# The case files of the mixed run: good files in every format, and every bad-input case.
GOOD_CASES = (
    "array_of_records.json",
    "bom_prefixed.json",
    "good_cloudtrail.json.gz",
    "gzip_named.json",
    "ndjson_crlf_null_eventtime.ndjson",
    "ndjson_gzipped.json.gz",
    "ndjson_with_extra_fields.ndjson",
    "nested_lossless.json",
    "single_record_pretty.json",
    "sts_assume_role_with_token.json",
)
BAD_CASES = (
    "account_path_traversal.json",
    "corrupt.json.gz",
    "deeply_nested.json",
    "empty.json",
    "empty.json.gz",
    "invalid_json.json",
    "invalid_utf8.json",
    "invalid_utf8_in_string.json",
    "ndjson_truncated_token.ndjson",
    "no_records.json",
    "not_json.txt",
    "records_missing_eventid.json",
    "records_missing_eventtime.json",
    "records_not_list.json",
    "truncated.json.gz",
    "wrong_types.json",
)


def settings(warehouse: Path, **overrides: Any) -> Settings:
    """Settings for a test run: one worker, no agenttrail.toml and no AGENTTRAIL_* variables."""
    values: dict[str, Any] = {
        "warehouse": str(warehouse),
        "ingest.workers": 1,
        "ingest.download_threads": 2,
    }
    values.update(overrides)
    return load_settings(environ={}, overrides=values, cwd=Path(warehouse).parent)


def ingest(
    sources: Iterable[Path | str],
    warehouse: Path,
    *,
    since: date | None = None,
    until: date | None = None,
    **overrides: Any,
) -> IngestSummary:
    """run_ingest in this process; overrides use dotted setting names ("ingest.workers")."""
    filters = Filters(since=since, until=until, slack_days=1)
    return run_ingest([str(s) for s in sources], settings(warehouse, **overrides), filters=filters)


def deny_listing(monkeypatch: Any, *folders: Path) -> None:
    """os.scandir refuses to list these folders, as it does a folder without read permission
    (PermissionError, EACCES). The tests run as root, whom chmod 000 does not stop; os.walk
    lists every folder with os.scandir."""
    denied = {str(Path(f).resolve()) for f in folders}
    scandir = os.scandir

    def refusing(path: Any = ".") -> Any:
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) in denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)


def copy_cases(names: Iterable[str], folder: Path) -> list[Path]:
    """Copy named case files into `folder` (tests that touch or add files never touch the repo)."""
    out = []
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CASES / name, target)
        out.append(target)
    return out


def rows(warehouse: Path, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a query against the warehouse database, opened read-only like an analyst would."""
    with duckdb.connect(str(warehouse / "agenttrail.duckdb"), read_only=True) as con:
        cursor = con.execute(sql, list(params or []))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def scalar(warehouse: Path, sql: str, params: Sequence[Any] | None = None) -> Any:
    return next(iter(rows(warehouse, sql, params)[0].values()))


def event_ids(warehouse: Path) -> list[str]:
    return [r["event_id"] for r in rows(warehouse, "SELECT event_id FROM events ORDER BY 1")]


def manifest(warehouse: Path) -> dict[str, dict[str, Any]]:
    """The `manifest` view (newest row per object), keyed by file name."""
    return {Path(r["uri"]).name: r for r in rows(warehouse, "SELECT * FROM manifest")}


def quarantined(warehouse: Path) -> list[tuple[str, int, str]]:
    """(file name, record index, reason) of every quarantined record, sorted."""
    found = rows(warehouse, "SELECT uri, record_index, reason FROM quarantined_records")
    return sorted((Path(r["uri"]).name, r["record_index"], r["reason"]) for r in found)


def event(warehouse: Path, event_id: str) -> dict[str, Any]:
    found = rows(warehouse, "SELECT * FROM events WHERE event_id = ?", [event_id])
    assert len(found) == 1, (event_id, found)
    return found[0]


# ---- what each named case becomes ----------------------------------------------------------
TOO_LARGE = "too_large.json"
TOO_LARGE_BYTES = (1 << 20) + 1


def write_too_large(folder: Path) -> None:
    """A valid CloudTrail document one byte above max_object_mb=1: it must not even be read."""
    head = json.dumps(
        {
            "eventID": "too-large-1",
            "eventTime": "2024-03-01T00:00:00Z",
            "recipientAccountId": ACCOUNT,
        }
    )
    body = '{"Records": [' + head[:-1] + ', "pad": "'
    tail = '"}]}'
    text = body + "x" * (TOO_LARGE_BYTES - len(body) - len(tail)) + tail
    (folder / TOO_LARGE).write_text(text)
    assert (folder / TOO_LARGE).stat().st_size == TOO_LARGE_BYTES


# name -> (status, reason, records, events_written, duplicates, quarantined_records)
MANIFEST: dict[str, tuple[str, str | None, int, int, int, int]] = {
    "array_of_records.json": ("ingested", None, 2, 2, 0, 0),
    "bom_prefixed.json": ("ingested", None, 1, 1, 0, 0),
    "ndjson_crlf_null_eventtime.ndjson": ("ingested", None, 2, 2, 0, 0),
    "good_cloudtrail.json.gz": ("ingested", None, 3, 3, 0, 0),
    "gzip_named.json": ("ingested", None, 1, 1, 0, 0),
    "ndjson_gzipped.json.gz": ("ingested", None, 2, 2, 0, 0),
    "ndjson_with_extra_fields.ndjson": ("ingested", None, 3, 3, 0, 0),
    "nested_lossless.json": ("ingested", None, 1, 1, 0, 0),
    "single_record_pretty.json": ("ingested", None, 1, 1, 0, 0),
    "sts_assume_role_with_token.json": (
        "ingested",
        "1 record(s): readOnly is 'maybe', expected true or false",
        2,
        1,
        0,
        1,
    ),
    "corrupt.json.gz": (
        "quarantined",
        "corrupt gzip: Error -1 Invalid deflate block found",
        0,
        0,
        0,
        0,
    ),
    "deeply_nested.json": ("quarantined", "invalid JSON: nested too deeply", 0, 0, 0, 0),
    "empty.json": ("quarantined", "empty file: no records", 0, 0, 0, 0),
    "empty.json.gz": ("quarantined", "empty file: no records", 0, 0, 0, 0),
    "invalid_json.json": (
        "quarantined",
        "invalid JSON: JSON is malformed: invalid character (byte 205)",
        0,
        0,
        0,
        0,
    ),
    "invalid_utf8.json": (
        "ingested",
        "1 record(s): requestParameters: invalid UTF-8 (invalid continuation byte at byte 19)",
        2,
        1,
        0,
        1,
    ),
    "invalid_utf8_in_string.json": (
        "ingested",
        "1 record(s): eventName: invalid UTF-8 (invalid continuation byte at byte 4)",
        2,
        1,
        0,
        1,
    ),
    "account_path_traversal.json": (
        "ingested",
        "1 record(s): record acct-bad: recipientAccountId '../../../outside' is not an account id",
        2,
        1,
        0,
        1,
    ),
    "ndjson_truncated_token.ndjson": (
        "ingested",
        "1 record(s): invalid JSON line: Input data was truncated",
        2,
        1,
        0,
        1,
    ),
    "no_records.json": (
        "quarantined",
        "JSON without Records: the object has no 'Records' list",
        0,
        0,
        0,
        0,
    ),
    "not_json.txt": ("quarantined", "not JSON: starts with b'hello, this is n'", 0, 0, 0, 0),
    "records_missing_eventid.json": (
        "ingested",
        "3 record(s): record has no eventID",
        4,
        1,
        0,
        3,
    ),
    "records_missing_eventtime.json": (
        "ingested",
        "1 record(s): record missing-time-1 has no eventTime; "
        "1 record(s): record missing-time-2: eventTime '2024-03-01 16:30:02' is not an ISO 8601 "
        "time with a zone; "
        "1 record(s): record missing-time-3: eventTime 'yesterday' is not an ISO 8601 time with "
        "a zone",
        4,
        1,
        0,
        3,
    ),
    "records_not_list.json": (
        "quarantined",
        "Records is not a list: Expected `array | null`, got `object` - at `$.Records`",
        0,
        0,
        0,
        0,
    ),
    "truncated.json.gz": (
        "quarantined",
        "truncated gzip: the compressed stream ends early",
        0,
        0,
        0,
        0,
    ),
    "wrong_types.json": (
        "ingested",
        "2 record(s): record is not a JSON object; "
        "1 record(s): wrong type: eventTime: Expected `str | null`, got `int`; "
        "1 record(s): wrong type: userIdentity: Expected `object | null`, got `str`; "
        "4 more record(s): see quarantined_records",
        9,
        1,
        0,
        8,
    ),
    TOO_LARGE: (
        "quarantined",
        "object is 1,048,577 bytes, above max_object_mb=1",
        0,
        0,
        0,
        0,
    ),
}
# Where streaming parses differently (ijson instead of msgspec): what each file becomes. Only
# file-level faults differ (their messages); a record whose strings are not UTF-8 is quarantined
# alone either way (streamed, ijson stopped at it, and the whole file was lost).
MANIFEST_STREAMED = {
    **MANIFEST,
    "deeply_nested.json": (
        "quarantined",
        "invalid JSON after 0 records: nested too deeply",
        0,
        0,
        0,
        0,
    ),
    "invalid_json.json": (
        "quarantined",
        "invalid JSON after 1 records: lexical error: invalid character inside string.",
        0,
        0,
        0,
        0,
    ),
    "records_not_list.json": (
        "quarantined",
        "Records is not a list: it is an object",
        0,
        0,
        0,
        0,
    ),
}
QUARANTINED_RECORDS = [
    (
        "account_path_traversal.json",
        1,
        "record acct-bad: recipientAccountId '../../../outside' is not an account id",
    ),
    (
        "invalid_utf8.json",
        0,
        "requestParameters: invalid UTF-8 (invalid continuation byte at byte 19)",
    ),
    (
        "invalid_utf8_in_string.json",
        0,
        "eventName: invalid UTF-8 (invalid continuation byte at byte 4)",
    ),
    ("ndjson_truncated_token.ndjson", 1, "invalid JSON line: Input data was truncated"),
    ("records_missing_eventid.json", 1, "record has no eventID"),
    ("records_missing_eventid.json", 2, "record has no eventID"),
    ("records_missing_eventid.json", 3, "record has no eventID"),
    ("records_missing_eventtime.json", 1, "record missing-time-1 has no eventTime"),
    (
        "records_missing_eventtime.json",
        2,
        "record missing-time-2: eventTime '2024-03-01 16:30:02' is not an ISO 8601 time with a zone",
    ),
    (
        "records_missing_eventtime.json",
        3,
        "record missing-time-3: eventTime 'yesterday' is not an ISO 8601 time with a zone",
    ),
    ("sts_assume_role_with_token.json", 1, "readOnly is 'maybe', expected true or false"),
    ("wrong_types.json", 1, "wrong type: eventTime: Expected `str | null`, got `int`"),
    ("wrong_types.json", 2, "wrong type: userIdentity: Expected `object | null`, got `str`"),
    ("wrong_types.json", 3, "readOnly is 'maybe', expected true or false"),
    ("wrong_types.json", 4, "wrong type: eventID: Expected `str | null`, got `int`"),
    (
        "wrong_types.json",
        5,
        "record wrong-account: recipientAccountId '../../../outside' is not an account id",
    ),
    (
        "wrong_types.json",
        6,
        "wrong type: userIdentity: Expected `str | null`, got `int` - at `$.sessionContext.sourceIdentity`",
    ),
    ("wrong_types.json", 7, "record is not a JSON object"),
    ("wrong_types.json", 8, "record is not a JSON object"),
]
GOOD_EVENTS = [
    "array-1",
    "array-2",
    "bom-1",
    "crlf-1",
    "crlf-2",
    "good-1",
    "good-2",
    "good-3",
    "gzip-named-1",
    "ndjson-1",
    "ndjson-2",
    "ndjson-3",
    "ndjson-gz-1",
    "ndjson-gz-2",
    "nested-1",
    "pretty-1",
    "sts-1",
]
EVENTS_OF_BAD_FILES = [
    "acct-ok",
    "missing-id-ok",
    "missing-time-ok",
    "ndjson-cut-1",
    "utf8-name-ok",
    "utf8-ok",
    "wrong-ok",
]


# ---- an independent reading of the input, with plain json and gzip -----------------------------
def plain_records(path: Path) -> list[dict[str, Any]]:
    """The records of one file: gzip by magic bytes; a Records document, an array, or NDJSON."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8-sig")  # a BOM, as Windows tools write, is not content
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(doc, dict) and "Records" in doc:
        return list(doc["Records"])
    return list(doc) if isinstance(doc, list) else [doc]


def plain_event_ids(paths: Iterable[Path]) -> set[str]:
    return {r["eventID"] for path in paths for r in plain_records(path)}


def trail_event_files(root: Path) -> list[Path]:
    """Event files of a trail copy: every file under a `CloudTrail` folder of the AWSLogs layout
    (digests, Insights and other services live under sibling folders)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and "CloudTrail" in p.parts)


# ---- the command line -------------------------------------------------------------------------
def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no AGENTTRAIL_* settings but the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTTRAIL_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the CLI in its own process group (so a kill reaches its worker processes too)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything it started (forkserver, parse workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


# ---- a folder of generated trail files, for the fault-injection tests ---------------------------
def write_trail(folder: Path, *, files: int = 60, records: int = 120, seed: int = 7) -> list[Path]:
    """`files` gzipped CloudTrail files in the organization-trail layout, deterministic.

    Records carry ~1.5 KB of random text each, so the files do not compress well and the folder
    spans several parse tasks (one task is at most 8 MB as stored): a run makes several commits.
    Events spread over 10 days and 2 accounts (20 partitions), and each file repeats 3 eventIDs
    of the file before it, so duplicates are dropped under every kill as well.
    """
    import base64
    import random

    rng = random.Random(seed)
    accounts = ("111122223333", "444455556666")
    paths = []
    previous: list[dict[str, Any]] = []
    for n in range(files):
        account = accounts[n % 2]
        day = 1 + n % 10
        key = (
            f"AWSLogs/o-aa11bb22cc/{account}/CloudTrail/us-east-1/2024/03/{day:02d}/"
            f"{account}_CloudTrail_us-east-1_202403{day:02d}T{n % 24:02d}00Z_{n:016x}.json.gz"
        )
        batch = [
            {
                "eventVersion": "1.08",
                "eventID": f"fault-{n:03d}-{i:04d}",
                "eventTime": f"2024-03-{1 + (n + i) % 10:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                "eventSource": "s3.amazonaws.com",
                "eventName": "GetObject",
                "awsRegion": "us-east-1",
                "recipientAccountId": accounts[(n + i // 10) % 2],
                "requestParameters": {
                    "bucketName": "data",
                    "key": base64.b64encode(rng.randbytes(1300)).decode(),
                },
            }
            for i in range(records)
        ]
        batch += previous[:3]  # the same events delivered again in the next file
        previous = batch
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": batch}).encode(), 1, mtime=0))
        paths.append(path)
    return paths


@contextlib.contextmanager
def held_open(database: Path, *, read_only: bool = True) -> Iterator[subprocess.Popen[str]]:
    """Another process with the database open (as an analyst's DuckDB shell: `duckdb FILE`
    opens it for writing, `duckdb -readonly FILE` not), until the block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro');"
            " print('open', flush=True); sys.stdin.read()",
            str(database),
            "ro" if read_only else "rw",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


# A CloudTrail record's top-level keys -> the events columns that keep them, restated here (not
# read from the package) so that tests check the parser against an independent mapping.
SCALARS = {
    "eventID": "event_id",
    "eventVersion": "event_version",
    "eventSource": "event_source",
    "eventName": "event_name",
    "eventType": "event_type",
    "eventCategory": "event_category",
    "awsRegion": "aws_region",
    "sourceIPAddress": "source_ip",
    "userAgent": "user_agent",
    "errorCode": "error_code",
    "errorMessage": "error_message",
    "requestID": "request_id",
    "sharedEventID": "shared_event_id",
    "vpcEndpointId": "vpc_endpoint_id",
    "vpcEndpointAccountId": "vpc_endpoint_account_id",
    "apiVersion": "api_version",
    "recipientAccountId": "recipient_account_id",
}
FLAGS = {
    "readOnly": "read_only",
    "managementEvent": "management_event",
    "sessionCredentialFromConsole": "session_credential_from_console",
}
NESTED = {
    "userIdentity": "user_identity",
    "requestParameters": "request_parameters",
    "responseElements": "response_elements",
    "additionalEventData": "additional_event_data",
    "resources": "resources",
    "serviceEventDetails": "service_event_details",
    "tlsDetails": "tls_details",
    "addendum": "addendum",
}


def agenttrail(
    *args: str, cwd: Path, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter, as a user would (AGENTTRAIL_* variables: `env`'s),
    after the command `prefix` if any (without_root_powers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTTRAIL_")} | (env or {})
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def without_root_powers() -> list[str]:
    """A command prefix that runs a command without root's power to read, list and write
    anywhere (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so that chmod stops it as it stops a
    user; nothing when not root. Skips the test when root has no setpriv."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root, and no setpriv to drop CAP_DAC_OVERRIDE")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}"]


def ingest_cli(source: Path, warehouse: Path) -> dict[str, Any]:
    """`agenttrail ingest SOURCE --json` in a fresh interpreter without root's powers
    (without_root_powers): its summary, exit code included."""
    done = agenttrail(
        *("ingest", str(source), "--warehouse", str(warehouse), "--workers", "1", "--json"),
        cwd=warehouse.parent,
        prefix=without_root_powers(),
    )
    summary: dict[str, Any] = json.loads(done.stdout)
    assert summary["exit_code"] == done.returncode, done.stderr
    return summary
