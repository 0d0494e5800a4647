"""The S3 path end to end, against moto's standalone server over HTTP on 127.0.0.1.

An organization trail (the generated sample) plus one day folder of more than 1,000 keys (so
every listing paginates), digests carrying their S3 signature metadata, date pruning, an
incremental re-run that downloads only the new objects, and an account prefix that a bucket
policy denies listing (quarantined, and listed again by every run).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import duckdb
import pytest
from ingest_fixtures import rows
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.ingest import run_ingest
from pipeline.source import Filters

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_logs"
BUCKET = "org-trail-logs"
PREFIX = "trail"
BUSY_DAY = "AWSLogs/o-a1b2c3d4e5/222222222222/CloudTrail/eu-west-1/2026/09/15/"
BUSY_FILES = 1_010


def _record(event_id: str, hour: int) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": event_id,
        "eventTime": f"2026-09-15T{hour:02d}:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.0.9",
        "userAgent": "Boto3/1.40.0",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::222222222222:user/loader"},
        "recipientAccountId": "222222222222",
        "eventType": "AwsApiCall",
    }


def _busy_day_objects(start: int, count: int) -> dict[str, bytes]:
    objects = {}
    for i in range(start, start + count):
        body = json.dumps({"Records": [_record(f"busy-{i:05d}", i % 24)]}).encode()
        key = f"{PREFIX}/{BUSY_DAY}222222222222_CloudTrail_eu-west-1_20260915T{i % 24:02d}00Z_{i:016d}.json.gz"
        objects[key] = gzip.compress(body, mtime=0)
    return objects


def _raw_events(since: date | None = None, until: date | None = None) -> set[str]:
    """Event ids of the sample read with plain gzip/json, optionally by eventTime day."""
    ids = set()
    for path in (SAMPLE / "AWSLogs").rglob("*.json.gz"):
        if "/CloudTrail/" not in path.as_posix():
            continue
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            day = date.fromisoformat(record["eventTime"][:10])
            if (since is None or day >= since) and (until is None or day <= until):
                ids.add(record["eventID"])
    return ids


def _counting(client: S3Client) -> Counter[str]:
    """Count GetObject calls and ListObjectsV2 calls per prefix made through `client`."""
    calls: Counter[str] = Counter()

    def on_list(params: dict[str, Any], **_: Any) -> None:
        calls[f"list:{params.get('Prefix', '')}"] += 1

    def on_get(params: dict[str, Any], **_: Any) -> None:
        calls["get"] += 1

    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", on_list)
    client.meta.events.register("before-parameter-build.s3.GetObject", on_get)
    return calls


def _event_ids(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse / "agenttrail.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT event_id FROM events").fetchall()]


def test_s3_org_trail_end_to_end(
    tmp_path: Path,
    make_bucket: Callable[[str], S3Client],
    put_objects: Callable[..., None],
) -> None:
    client = make_bucket(BUCKET)
    scenario = json.loads((SAMPLE / "scenario.json").read_text())
    signatures = {d["key"]: d["signature"] for d in scenario["digests"]}
    sample, digests = {}, {}
    for path in sorted((SAMPLE / "AWSLogs").rglob("*")):
        if path.is_file():
            key = f"{PREFIX}/{path.relative_to(SAMPLE).as_posix()}"
            (digests if "CloudTrail-Digest" in key else sample)[key] = path.read_bytes()
    put_objects(client, BUCKET, sample)
    for key, body in digests.items():
        relative = key.removeprefix(f"{PREFIX}/")
        client.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=body,
            Metadata={"signature": signatures[relative], "signature-algorithm": "SHA256withRSA"},
        )
    put_objects(client, BUCKET, _busy_day_objects(0, BUSY_FILES))

    # 1. The whole trail: every event once, digests with their signatures, pagination.
    calls = _counting(client)
    settings = load_settings(
        environ={}, overrides={"warehouse": str(tmp_path / "wh"), "ingest.workers": 2}
    )
    summary = run_ingest([f"s3://{BUCKET}/{PREFIX}"], settings, s3_client=client)
    busy = {f"busy-{i:05d}" for i in range(BUSY_FILES)}
    ids = _event_ids(tmp_path / "wh")
    assert len(ids) == len(set(ids))
    assert set(ids) == _raw_events() | busy
    assert summary.digests_recorded == len(digests) == 12
    assert summary.skipped_by_kind == Counter({"insight": 1, "other": 1})
    assert summary.duplicates_dropped == scenario["events"]["records_in_files"] - len(_raw_events())
    assert summary.failures == []
    assert summary.exit_code == 0
    assert calls["get"] == len(sample) - 2 + len(digests) + BUSY_FILES  # not insight/flow logs
    assert calls[f"list:{PREFIX}/{BUSY_DAY}"] == 0  # no dates: the region folder is listed
    busy_region = BUSY_DAY.rsplit("2026/", 1)[0]
    assert calls[f"list:{PREFIX}/{busy_region}"] >= 2  # > 1,000 keys: at least two pages
    with duckdb.connect(str(tmp_path / "wh" / "agenttrail.duckdb"), read_only=True) as con:
        stored = dict(con.execute("SELECT uri, signature FROM digests").fetchall())
    assert stored == {
        f"s3://{BUCKET}/{k}": signatures[k.removeprefix(f"{PREFIX}/")] for k in digests
    }

    # 2. Incremental: three new objects arrive; only they are downloaded.
    put_objects(client, BUCKET, _busy_day_objects(BUSY_FILES, 3))
    calls.clear()
    again = run_ingest([f"s3://{BUCKET}/{PREFIX}"], settings, s3_client=client)
    assert calls["get"] == 3
    assert again.events_written == 3
    assert again.objects_unchanged == summary.objects_listed
    assert len(_event_ids(tmp_path / "wh")) == len(ids) + 3

    # 3. Date pruning: one month lists only its day folders (plus a day of slack each side),
    # and keeps records by eventTime.
    calls.clear()
    september = Filters(since=date(2026, 9, 1), until=date(2026, 9, 30), slack_days=1)
    pruned = load_settings(environ={}, overrides={"warehouse": str(tmp_path / "sept")})
    run_ingest([f"s3://{BUCKET}/{PREFIX}"], pruned, filters=september, s3_client=client)
    days = set()
    for call in calls:
        parts = call.split("/")
        if call.startswith("list:") and len(parts) >= 9 and parts[-4].isdigit():
            days.add(date(int(parts[-4]), int(parts[-3]), int(parts[-2])))
    assert min(days) == date(2026, 8, 31)
    assert max(days) == date(2026, 10, 1)
    expected = (
        _raw_events(date(2026, 9, 1), date(2026, 9, 30))
        | busy
        | {f"busy-{i:05d}" for i in range(BUSY_FILES, BUSY_FILES + 3)}
    )
    assert set(_event_ids(tmp_path / "sept")) == expected


ORG = "o-a1b2c3d4e5"
DENIED_ACCOUNT, OPEN_ACCOUNT = "111111111111", "222222222222"
DENIED_PREFIX = f"{PREFIX}/AWSLogs/{ORG}/{DENIED_ACCOUNT}/"
DENIED_REASON = (
    "cannot read: a prefix whose objects cannot be listed (AccessDenied; check that the bucket "
    "policy and the identity allow s3:ListBucket on it)"
)


@contextmanager
def listing_denied(prefixes: set[str]) -> Iterator[str]:
    """An S3 endpoint on 127.0.0.1: moto's own app (the same buckets as the moto_server
    fixture's) behind the bucket policy moto does not enforce, a Deny of s3:ListBucket where
    s3:prefix is like `PREFIX*` for each of `prefixes` (a set the test may empty). A denied
    ListObjectsV2 gets S3's answer: 403, an AccessDenied body, a request id of its own."""
    moto = DomainDispatcherApplication(create_backend_app)
    request_ids = itertools.count(1)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        prefix = query.get("prefix", [""])[0]
        if query.get("list-type") == ["2"] and any(prefix.startswith(p) for p in prefixes):
            request_id = f"DENIED{next(request_ids):04d}"
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                f"<Message>Access Denied</Message><RequestId>{request_id}</RequestId>"
                "<HostId>host</HostId></Error>"
            ).encode()
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(body))),
                    ("x-amz-request-id", request_id),
                ],
            )
            return [body]
        return moto(environ, start_response)  # type: ignore[no-any-return]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _trail_file(account: str, event_id: str) -> tuple[str, bytes]:
    record = _record(event_id, 10) | {"recipientAccountId": account, "awsRegion": "us-east-1"}
    folder = f"{PREFIX}/AWSLogs/{ORG}/{account}/CloudTrail/us-east-1/2026/09/15/"
    key = f"{folder}{account}_CloudTrail_us-east-1_20260915T1000Z_{event_id}.json.gz"
    return key, gzip.compress(json.dumps({"Records": [record]}).encode(), mtime=0)


def _etag(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()  # a single-part upload's ETag


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """`agenttrail ARGS --json` through the console script's entry point: (exit code, summary)."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["agenttrail", *args, "--json"])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0), json.loads(capsys.readouterr().out)


def test_an_account_prefix_denied_listing_is_quarantined_and_listed_again_by_every_run(
    tmp_path: Path,
    make_bucket: Callable[[str], S3Client],
    put_objects: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`agenttrail ingest s3://bucket` where a bucket policy denies listing one account's
    prefix: as for a local folder that cannot be listed, the prefix is one quarantined object
    (summary, manifest), the other account's events land, and the run exits 3. The next run
    lists it again: still denied, it is quarantined again (S3 shows nothing of what arrived
    under it meanwhile); once allowed, its files are read."""
    monkeypatch.chdir(tmp_path)  # no agenttrail.toml
    for name in [n for n in os.environ if n.startswith("AGENTTRAIL_")]:
        monkeypatch.delenv(name)
    files = dict([_trail_file(DENIED_ACCOUNT, "denied-1"), _trail_file(OPEN_ACCOUNT, "open-1")])
    put_objects(make_bucket(BUCKET), BUCKET, files)
    denied = {DENIED_PREFIX}
    warehouse = tmp_path / "wh"
    quarantine = [{"uri": f"s3://{BUCKET}/{DENIED_PREFIX}", "reason": DENIED_REASON}]

    def manifest() -> dict[str, tuple[str, str, int, str, str | None]]:
        found = rows(warehouse, "SELECT uri, kind, status, size, version, reason FROM manifest")
        return {
            r["uri"].removeprefix(f"s3://{BUCKET}/"): (
                r["kind"],
                r["status"],
                r["size"],
                r["version"],
                r["reason"],
            )
            for r in found
        }

    with listing_denied(denied) as endpoint:
        ingest = ("ingest", f"s3://{BUCKET}", "--endpoint-url", endpoint, "-w", str(warehouse))
        code, first = _cli(monkeypatch, capsys, *ingest, "--workers", "1")
        assert (code, first["exit_code"]) == (3, 3)
        assert (
            first["objects_listed"],
            first["objects_read"],
            first["objects_quarantined"],
            first["events_written"],
            first["quarantine"],
            first["failures"],
        ) == (2, 2, 1, 1, quarantine, [])
        open_key = next(k for k in files if OPEN_ACCOUNT in k)
        assert manifest() == {
            DENIED_PREFIX: (
                "events",
                "quarantined",
                0,
                "unreadable:request:DENIED0001",
                DENIED_REASON,
            ),
            open_key: ("events", "ingested", len(files[open_key]), _etag(files[open_key]), None),
        }
        assert _event_ids(warehouse) == ["open-1"]

        # Still denied: listed and quarantined again, under a new version.
        code, again = _cli(monkeypatch, capsys, *ingest, "--workers", "1")
        assert (
            code,
            again["objects_listed"],
            again["objects_unchanged"],
            again["objects_quarantined"],
            again["quarantine"],
        ) == (3, 2, 1, 1, quarantine)
        assert manifest()[DENIED_PREFIX][3] == "unreadable:request:DENIED0002"

        # Allowed again: its file is read; the prefix's entry stays as history.
        denied.clear()
        code, found = _cli(monkeypatch, capsys, *ingest, "--workers", "1")
        assert (
            code,
            found["objects_listed"],
            found["objects_unchanged"],
            found["objects_read"],
            found["objects_quarantined"],
            found["events_written"],
        ) == (0, 2, 1, 1, 0, 1)
    assert sorted(_event_ids(warehouse)) == ["denied-1", "open-1"]
    assert manifest()[DENIED_PREFIX][1] == "quarantined"


SPOOLED_ACCOUNT = "333333333333"


def _padded_trail_file(day: int) -> tuple[str, bytes]:
    """An events object of one day in September (a partition of its own), a few KB gzipped:
    random padding does not compress."""
    records = [
        _record(f"spooled-{day:02d}-{i}", 10)
        | {
            "eventTime": f"2026-09-{day:02d}T10:00:00Z",
            "recipientAccountId": SPOOLED_ACCOUNT,
            "awsRegion": "us-east-1",
            "requestParameters": {"pad": os.urandom(200).hex()},
        }
        for i in range(10)
    ]
    folder = f"AWSLogs/{SPOOLED_ACCOUNT}/CloudTrail/us-east-1/2026/09/{day:02d}/"
    key = f"{folder}{SPOOLED_ACCOUNT}_CloudTrail_us-east-1_202609{day:02d}T1000Z_x.json.gz"
    return key, gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)


def test_spooled_downloads_are_deleted_once_read(
    tmp_path: Path,
    make_bucket: Callable[[str], S3Client],
    put_objects: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Objects above SPOOL_ABOVE are downloaded to _staging/RUN/s3-*; they were all left there
    until the run ended, so a backfill of large objects filled the disk. Each is deleted once
    read: a parsed object's when its task is done (quarantined or not), a digest's when its
    body is read. At every manifest write only the spool file of the task still being parsed
    is left (one worker: two tasks in flight, one just done), and nothing else changes."""
    import pipeline.ingest

    client = make_bucket(BUCKET)
    files = dict(_padded_trail_file(day) for day in range(1, 9))
    damaged = f"AWSLogs/{SPOOLED_ACCOUNT}/CloudTrail/us-east-1/2026/09/20/damaged.json.gz"
    files[damaged] = os.urandom(4096)  # not gzip: the object is quarantined
    put_objects(client, BUCKET, files)
    digest_folder = f"AWSLogs/{SPOOLED_ACCOUNT}/CloudTrail-Digest/us-east-1/2026/09/15/"
    digests = {
        f"{digest_folder}{SPOOLED_ACCOUNT}_CloudTrail-Digest_us-east-1_t_us-east-1_"
        f"20260915T{hour:02d}0000Z.json.gz": gzip.compress(
            json.dumps({"logFiles": [], "pad": os.urandom(2048).hex()}).encode(), mtime=0
        )
        for hour in (10, 11)
    }
    put_objects(client, BUCKET, digests, {"signature": "sig"})
    assert min(len(body) for body in [*files.values(), *digests.values()]) > 2048

    monkeypatch.setattr(pipeline.ingest, "SPOOL_ABOVE", 2048)
    # A task per object, and a commit (with its manifest write) per task.
    monkeypatch.setattr(pipeline.ingest, "TASK_BYTES", 1)
    monkeypatch.setattr(pipeline.ingest, "TASK_MIN_BYTES", 1)
    warehouse = tmp_path / "wh"
    spooled_at_writes: list[list[str]] = []
    append = pipeline.ingest.manifest.append

    def counting_append(folder: Path, name: str, entries: Any) -> None:
        spooled_at_writes.append(sorted(p.name for p in (warehouse / "_staging").rglob("s3-*")))
        append(folder, name, entries)

    monkeypatch.setattr(pipeline.ingest.manifest, "append", counting_append)
    settings = load_settings(
        environ={},
        overrides={"warehouse": str(warehouse), "ingest.workers": 1, "ingest.commit_rows": 1},
    )
    summary = run_ingest([f"s3://{BUCKET}"], settings, s3_client=client)

    assert (summary.events_written, summary.digests_recorded, summary.failures) == (80, 2, [])
    assert [q["uri"] for q in summary.quarantine] == [f"s3://{BUCKET}/{damaged}"]
    assert sorted(_event_ids(warehouse)) == sorted(
        f"spooled-{day:02d}-{i}" for day in range(1, 9) for i in range(10)
    )
    assert len(spooled_at_writes) >= len(files)  # a manifest write per parsed object
    assert max(len(names) for names in spooled_at_writes) <= 1, spooled_at_writes
    assert not any("Digest" in name for names in spooled_at_writes for name in names)
    assert spooled_at_writes[-1] == []


def test_a_local_file_handed_over_as_spooled_is_never_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only spool files inside the run's staging folder are deleted once read: a source that
    marked its own file spooled (a local file, read in place) keeps it."""
    from pipeline.source import Fetched
    from pipeline.source.local import LocalSource

    logs = tmp_path / "logs"
    logs.mkdir()
    user_file = logs / "a.json"
    user_file.write_text(json.dumps({"Records": [_record("local-1", 10)]}))
    fetch = LocalSource.fetch

    def spooled_fetch(self: LocalSource, *args: Any) -> Fetched:
        fetched = fetch(self, *args)
        return Fetched(fetched.data, fetched.path, fetched.metadata, spooled=True)

    monkeypatch.setattr(LocalSource, "fetch", spooled_fetch)
    settings = load_settings(
        environ={}, overrides={"warehouse": str(tmp_path / "wh"), "ingest.workers": 1}
    )
    summary = run_ingest([str(logs)], settings)
    assert summary.events_written == 1
    assert user_file.exists()
