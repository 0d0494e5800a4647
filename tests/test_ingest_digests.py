"""Digest objects are read on the fetch threads, as events objects are: several at once, a group
at a time, yet recorded (digests table, manifest, summary) in listing order whatever order their
reads end in; a full disk still ends the run; Ctrl-C still unwinds at once. Locally and over S3
(moto's server)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
from ingest_fixtures import ACCOUNT, CASES, settings

import pipeline.ingest
from pipeline.errors import SourceError, WarehouseError
from pipeline.ingest import IngestSummary, Progress, run_ingest
from pipeline.interrupts import raise_now_or_later
from pipeline.source import Fetched, Filters, Source, SourceObject
from pipeline.source.local import LocalSource

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OTHER_ACCOUNT = "444455556666"
DAY = "2024/03/01"
# How long calls wait for one another: on serial reads they never meet, and the test fails
# after this long instead of hanging.
MEET_SECONDS = 5.0


def digest_key(hour: int, account: str = ACCOUNT, org: str = "") -> str:
    region = "us-east-1"
    return (
        f"AWSLogs/{org}{account}/CloudTrail-Digest/{region}/{DAY}/"
        f"{account}_CloudTrail-Digest_{region}_trail_{region}_20240301T{hour:02d}0000Z.json.gz"
    )


def digest_body(hour: int, account: str = ACCOUNT) -> bytes:
    return json.dumps(
        {"awsAccountId": account, "digestEndTime": f"2024-03-01T{hour:02d}:00:00Z", "logFiles": []}
    ).encode()


def write_digests(logs: Path, hours: range, account: str = ACCOUNT, org: str = "") -> list[Path]:
    paths = []
    for hour in hours:
        path = logs / digest_key(hour, account, org)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(digest_body(hour, account), mtime=0))
        paths.append(path)
    return paths


def written(folder: Path) -> list[dict[str, Any]]:
    """The rows of a side table's files, file by file (commit order), each file in row order."""
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def run(logs: Path, warehouse: Path, **overrides: Any) -> IngestSummary:
    return run_ingest([str(logs)], settings(warehouse, **overrides), filters=Filters())


class Meeting:
    """The first `n` calls wait for one another (MEET_SECONDS at most); `met` says whether all
    of them were in at once, which they are only when they run side by side."""

    def __init__(self, n: int) -> None:
        self.barrier = threading.Barrier(n, timeout=MEET_SECONDS)
        self.lock = threading.Lock()
        self.calls = 0
        self.met = True

    def __call__(self) -> bool:
        """Wait for the others; True in exactly one of the first `n` calls (or where no
        meeting took place)."""
        with self.lock:
            self.calls += 1
            first = self.calls <= self.barrier.parties
        if not first:
            return False
        try:
            return self.barrier.wait() == 0
        except threading.BrokenBarrierError:
            self.met = False
            return True


Fetch = Callable[[LocalSource, SourceObject, Path, int], Fetched]


def wrap_fetch(monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[Fetch], Fetch]) -> None:
    monkeypatch.setattr(LocalSource, "fetch", wrapper(LocalSource.fetch))


# ---- side by side, a group at a time --------------------------------------------------------
def test_digests_are_read_side_by_side_on_the_fetch_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As many digests are read at once as there are download threads, no more."""
    logs = tmp_path / "logs"
    paths = write_digests(logs, range(12))
    meeting = Meeting(4)
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def wrapper(fetch: Fetch) -> Fetch:
        def counted(self: LocalSource, obj: SourceObject, spool: Path, above: int) -> Fetched:
            with lock:
                in_flight[0] += 1
                in_flight[1] = max(in_flight)
            try:
                meeting()
                return fetch(self, obj, spool, above)
            finally:
                with lock:
                    in_flight[0] -= 1

        return counted

    wrap_fetch(monkeypatch, wrapper)
    summary = run(logs, tmp_path / "wh", **{"ingest.download_threads": 4})
    assert meeting.met, "digests were read one at a time"
    assert in_flight[1] == 4
    assert (summary.digests_recorded, summary.objects_read, summary.failures) == (12, 0, [])
    assert [r["uri"] for r in written(tmp_path / "wh" / "digests")] == [str(p) for p in paths]


def test_a_group_of_digests_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads wait in memory a group at a time (TASK_MAX_OBJECTS here 3): with the main thread
    slow to record the first digest, eight idle threads start only the first group's reads."""
    logs = tmp_path / "logs"
    write_digests(logs, range(6))
    monkeypatch.setattr(pipeline.ingest, "TASK_MAX_OBJECTS", 3)
    started: list[str] = []
    started_before_first_record: list[int] = []

    def wrapper(fetch: Fetch) -> Fetch:
        def noted(self: LocalSource, obj: SourceObject, spool: Path, above: int) -> Fetched:
            started.append(obj.uri)
            return fetch(self, obj, spool, above)

        return noted

    record = pipeline.ingest._Job._record_digest

    def slow_record(self: Any, obj: SourceObject, read: Any) -> None:
        if not started_before_first_record:
            time.sleep(0.3)  # time enough for idle threads to start any read submitted
            started_before_first_record.append(len(started))
        record(self, obj, read)

    wrap_fetch(monkeypatch, wrapper)
    monkeypatch.setattr(pipeline.ingest._Job, "_record_digest", slow_record)
    summary = run(logs, tmp_path / "wh", **{"ingest.download_threads": 8})
    assert started_before_first_record == [3]
    assert (summary.digests_recorded, len(started)) == (6, 6)


def test_groups_keep_the_order_and_the_bounds_of_a_parse_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline.ingest, "TASK_MAX_OBJECTS", 3)
    monkeypatch.setattr(pipeline.ingest, "TASK_BYTES", 100)
    source: Source = LocalSource(Path(__file__))
    sizes = [10, 10, 10, 10, 60, 40, 1, 500, 5]
    items = [(source, SourceObject(f"o{i}", "digest", s, "v")) for i, s in enumerate(sizes)]
    groups = [[o.uri for _, o in g] for g in pipeline.ingest._groups(items)]
    assert groups == [["o0", "o1", "o2"], ["o3", "o4", "o5"], ["o6", "o7"], ["o8"]]
    assert list(pipeline.ingest._groups([])) == []


# ---- the outcomes, in listing order whatever order the reads end in --------------------------
def test_every_outcome_in_listing_order_whatever_order_the_reads_end_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded digests, an empty one, a truncated gzip, a dangling link, one gone before it is
    read and one whose fetch fails, between events files and Insights of two accounts: the
    first digest's read ends last, yet every row, manifest entry, count and quarantine example
    is what reading them one by one gives, in the same order."""
    logs = tmp_path / "logs"
    org = logs / "AWSLogs" / "o-aa11bb22cc"
    events_dir = org / ACCOUNT / "CloudTrail" / "us-east-1" / DAY
    events_dir.mkdir(parents=True)
    good_events = events_dir / f"{ACCOUNT}_CloudTrail_us-east-1_20240301T0000Z_a1.json.gz"
    good_events.write_bytes((CASES / "good_cloudtrail.json.gz").read_bytes())
    empty_events = events_dir / f"{ACCOUNT}_CloudTrail_us-east-1_20240301T0000Z_b2.json.gz"
    empty_events.write_bytes(b"")
    ours = write_digests(logs, range(8), org="o-aa11bb22cc/")
    ours[1].write_bytes(gzip.compress(b"", mtime=0))
    ours[2].write_bytes(gzip.compress(digest_body(2), mtime=0)[:-12])
    ours[3].unlink()
    ours[3].symlink_to(tmp_path / "nowhere.json.gz")
    gone, failing = ours[5], ours[6]
    theirs = write_digests(logs, range(2), OTHER_ACCOUNT, org="o-aa11bb22cc/")
    insights = []
    for account in (ACCOUNT, OTHER_ACCOUNT):
        insight = org / account / "CloudTrail-Insight" / "us-east-1" / DAY / f"{account}_i.json.gz"
        insight.parent.mkdir(parents=True)
        insight.write_bytes(b"{}")
        insights.append(insight)

    listed = [o.uri for o in LocalSource(logs).list(Filters())]
    first = str(ours[0])
    others_left = {str(p) for p in [*ours[1:], *theirs]} - {str(ours[3])}
    ended: list[str] = []
    all_others_ended = threading.Event()
    lock = threading.Lock()

    def wrapper(fetch: Fetch) -> Fetch:
        def scrambled(self: LocalSource, obj: SourceObject, spool: Path, above: int) -> Fetched:
            try:
                if obj.uri == first:
                    all_others_ended.wait(MEET_SECONDS)
                if obj.uri == str(gone):
                    gone.unlink()
                if obj.uri == str(failing):
                    raise SourceError(f"cannot read {obj.uri}", hint="check the disk", source="x")
                return fetch(self, obj, spool, above)
            finally:
                with lock:
                    ended.append(obj.uri)
                    others_left.discard(obj.uri)
                    if not others_left:
                        all_others_ended.set()

        return scrambled

    wrap_fetch(monkeypatch, wrapper)
    seen: list[Progress] = []
    summary = run_ingest(
        [str(logs)],
        settings(tmp_path / "wh", **{"ingest.download_threads": 3}),
        filters=Filters(),
        progress=seen.append,
    )
    digests_ended = [uri for uri in ended if "CloudTrail-Digest" in uri]
    assert digests_ended[-1] == first, "the reads ended in listing order: nothing was scrambled"

    link_reason = (
        f"cannot read: symbolic link to {tmp_path / 'nowhere.json.gz'}, which cannot be opened "
        "(No such file or directory)"
    )
    quarantine = [
        (empty_events, "empty file: no records"),
        (ours[1], "digest: empty file"),
        (ours[2], "digest: truncated gzip: the compressed stream ends early"),
        (ours[3], link_reason),
        (gone, "digest: cannot read: No such file or directory"),
    ]
    assert summary.quarantine == [{"uri": str(p), "reason": r} for p, r in quarantine]
    assert summary.failures == [
        {"uri": str(failing), "error": f"cannot read {failing} (check the disk)"}
    ]
    assert (
        summary.objects_listed,
        summary.objects_read,
        summary.digests_recorded,
        summary.objects_quarantined,
        dict(summary.skipped_by_kind),
        summary.events_written,
        int(summary.exit_code),
    ) == (14, 6, 5, 5, {"insight": 2}, 3, 3)
    assert (seen[-1].objects_done, seen[-1].objects_total) == (14, 14)

    recorded = [(ours[0], 0, ACCOUNT), (ours[4], 4, ACCOUNT), (ours[7], 7, ACCOUNT)]
    recorded += [(theirs[0], 0, OTHER_ACCOUNT), (theirs[1], 1, OTHER_ACCOUNT)]
    rows = written(tmp_path / "wh" / "digests")
    assert [
        {k: v for k, v in r.items() if k not in ("day", "recorded_at", "run_id")} for r in rows
    ] == [
        {
            "uri": str(path),
            "account": account,
            "region": "us-east-1",
            "size": path.stat().st_size,
            "version": f"mtime_ns:{path.stat().st_mtime_ns}",
            "sha256": sha(digest_body(hour, account)),
            "signature": None,
            "signature_algorithm": None,
            "body": digest_body(hour, account).decode(),
        }
        for path, hour, account in recorded
    ]
    assert {(str(r["day"]), r["run_id"]) for r in rows} == {("2024-03-01", summary.run_id)}

    assert listed == [
        str(p) for p in [good_events, empty_events, *ours, insights[0], *theirs, insights[1]]
    ]
    entries: dict[Path, tuple[str, str, str | None, str | None]] = {
        path: ("digest", "ingested", "digest recorded", sha(digest_body(hour, account)))
        for path, hour, account in recorded
    }
    for path, reason in quarantine:
        entries[path] = (
            "events" if path == empty_events else "digest",
            "quarantined",
            reason,
            None,
        )
    skipped = ("insight", "skipped", "insight object, not events", None)
    entries |= {insights[0]: skipped, insights[1]: skipped}
    read = gzip.decompress(good_events.read_bytes())
    entries[good_events] = ("events", "ingested", None, sha(read))  # parsed: after the others
    order = [empty_events, *ours[:6], ours[7], insights[0], *theirs, insights[1], good_events]
    found = written(tmp_path / "wh" / "manifest")
    assert [(e["uri"], e["kind"], e["status"], e["reason"], e["sha256"]) for e in found] == [
        (str(path), *entries[path]) for path in order
    ]


# ---- a full disk, Ctrl-C ---------------------------------------------------------------------
def test_a_full_disk_while_a_digest_is_read_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A digest spooled to a full disk (ENOSPC) is not quarantined: the run stops with the
    disk's one-line error, commits nothing, and the re-run with room again records every digest."""
    logs = tmp_path / "logs"
    paths = write_digests(logs, range(6))

    def wrapper(fetch: Fetch) -> Fetch:
        def full(self: LocalSource, obj: SourceObject, spool: Path, above: int) -> Fetched:
            if obj.uri == str(paths[3]):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(spool / "s3-x"))
            return fetch(self, obj, spool, above)

        return full

    with monkeypatch.context() as patched:
        wrap_fetch(patched, wrapper)
        with pytest.raises(WarehouseError) as raised:
            run(logs, tmp_path / "wh", **{"ingest.download_threads": 3})
    wh = tmp_path / "wh"
    assert raised.value.message == f"cannot write the warehouse {wh}: its disk is full"
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.ENOSPC
    assert [p.name for p in wh.rglob("*.parquet")] == []
    assert not (wh / "_staging").exists()
    again = run(logs, wh, **{"ingest.download_threads": 3})
    assert (again.digests_recorded, again.objects_quarantined, again.failures) == (6, 0, [])
    assert [r["uri"] for r in written(wh / "digests")] == [str(p) for p in paths]


class Stop(BaseException):
    """What the CLI's signal handler raises (KeyboardInterrupt for Ctrl-C)."""


def test_ctrl_c_while_digests_are_read_unwinds_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal raised in the main thread while three reads run: the run waits for those three
    only (the nine queued behind them are cancelled, never read), removes its staged files,
    commits nothing and frees the lock; the re-run records every digest."""
    logs = tmp_path / "logs"
    paths = write_digests(logs, range(12))
    meeting = Meeting(3)
    calls: list[str] = []
    main = threading.main_thread().ident
    assert main is not None

    handled = threading.Event()

    def wrapper(fetch: Fetch) -> Fetch:
        def interrupted(self: LocalSource, obj: SourceObject, spool: Path, above: int) -> Fetched:
            calls.append(obj.uri)
            if meeting():
                signal.pthread_kill(main, signal.SIGUSR1)  # as Ctrl-C reaches the CLI
            # Still reading when the main thread unwinds: from the moment its handler ran, long
            # enough that no read finishes (and a fourth starts) before the queued ones are
            # cancelled. (A fixed 1 s from the signal failed once on a loaded machine, where the
            # main thread ran the handler late: 0.3 s had failed in a full parallel run before.)
            handled.wait(timeout=30)
            time.sleep(1.0)
            return fetch(self, obj, spool, above)

        return interrupted

    def handler(signum: int, frame: FrameType | None) -> None:
        handled.set()
        raise_now_or_later(Stop())  # as the CLI's handler does

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        with monkeypatch.context() as patched:
            wrap_fetch(patched, wrapper)
            with pytest.raises(Stop):
                run(logs, tmp_path / "wh", **{"ingest.download_threads": 3})
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert meeting.met
    assert len(calls) == 3
    wh = tmp_path / "wh"
    assert [p.name for p in wh.rglob("*.parquet")] == []
    assert not (wh / "_staging").exists()
    again = run(logs, wh)
    assert (again.digests_recorded, again.objects_unchanged) == (12, 0)
    assert [r["uri"] for r in written(wh / "digests")] == [str(p) for p in paths]


# ---- over S3 -------------------------------------------------------------------------------
BUCKET = "digest-trail"


def test_s3_digests_side_by_side_with_their_signatures_in_listing_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_bucket: Callable[[str], S3Client],
    put_objects: Callable[..., None],
) -> None:
    """Four GetObject calls in flight at once (a botocore hook holds each until all four are
    in), yet the digests table and manifest follow the key order; an empty digest, a truncated
    gzip and a digest deleted after listing end as when read one by one."""
    client = make_bucket(BUCKET)
    keys = [digest_key(hour) for hour in range(10)]
    bodies = {k: gzip.compress(digest_body(h), mtime=0) for h, k in enumerate(keys)}
    bodies[keys[2]] = gzip.compress(b"", mtime=0)
    bodies[keys[5]] = bodies[keys[5]][:-12]
    for hour, key in enumerate(keys):
        client.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=bodies[key],
            Metadata={"signature": f"sig-{hour}", "signature-algorithm": "SHA256withRSA"},
        )
    deleted = keys[7]
    listed: list[SourceObject] = []
    plan = pipeline.ingest._Job._plan

    def plan_then_delete(self: Any) -> Any:
        todo = plan(self)
        listed.extend(obj for _, obj in todo)
        client.delete_object(Bucket=BUCKET, Key=deleted)
        return todo

    monkeypatch.setattr(pipeline.ingest._Job, "_plan", plan_then_delete)
    meeting = Meeting(4)

    def held(**_: Any) -> None:
        meeting()

    client.meta.events.register("before-call.s3.GetObject", held)
    summary = run_ingest(
        [f"s3://{BUCKET}"],
        settings(tmp_path / "wh", **{"ingest.download_threads": 4}),
        filters=Filters(),
        s3_client=client,
    )
    assert meeting.met, "digests were downloaded one at a time"

    uri = {k: f"s3://{BUCKET}/{k}" for k in keys}
    assert [o.uri for o in listed] == [uri[k] for k in keys]
    gone = next(o for o in listed if o.uri == uri[deleted])
    with pytest.raises(SourceError) as failure:  # what reading it alone says
        pipeline.ingest.open_source(uri[deleted], s3_client=client).fetch(
            gone, tmp_path, pipeline.ingest.SPOOL_ABOVE
        )
    assert summary.failures == [{"uri": uri[deleted], "error": failure.value.one_line()}]
    quarantine = {
        keys[2]: "digest: empty file",
        keys[5]: "digest: truncated gzip: the compressed stream ends early",
    }
    assert summary.quarantine == [{"uri": uri[k], "reason": r} for k, r in quarantine.items()]
    recorded = [h for h, k in enumerate(keys) if k not in quarantine and k != deleted]
    assert (summary.digests_recorded, summary.objects_read, summary.objects_quarantined) == (
        7,
        2,
        2,
    )
    rows = written(tmp_path / "wh" / "digests")
    assert [
        (r["uri"], r["signature"], r["signature_algorithm"], r["sha256"], r["body"]) for r in rows
    ] == [
        (uri[keys[h]], f"sig-{h}", "SHA256withRSA", sha(digest_body(h)), digest_body(h).decode())
        for h in recorded
    ]
    entries = [(e["uri"], e["status"], e["reason"]) for e in written(tmp_path / "wh" / "manifest")]
    assert entries == [
        (uri[k], "quarantined", quarantine[k])
        if k in quarantine
        else (uri[k], "ingested", "digest recorded")
        for k in keys
        if k != deleted
    ]
