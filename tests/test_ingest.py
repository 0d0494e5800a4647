"""The ingest job end to end on named case files: bad inputs quarantined with their reason while
the other files' events land, formats by content, lossless rows, redaction, de-duplication,
incremental re-runs, --since/--until, and equality with a plain reading of real datasets."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from ingest_fixtures import (
    ACCOUNT,
    BAD_CASES,
    CASES,
    EVENTS_OF_BAD_FILES,
    FLAGS,
    GOOD_CASES,
    GOOD_EVENTS,
    MANIFEST,
    MANIFEST_STREAMED,
    NESTED,
    OTRF,
    QUARANTINED_RECORDS,
    REDACTED,
    SAMPLE_LOGS,
    SCALARS,
    TOKEN_MARK,
    TOO_LARGE,
    copy_cases,
    deny_listing,
    event,
    event_ids,
    held_open,
    ingest,
    ingest_cli,
    manifest,
    plain_event_ids,
    plain_records,
    quarantined,
    rows,
    scalar,
    settings,
    trail_event_files,
    write_too_large,
)

import pipeline.attribute.classify
import pipeline.ingest
import pipeline.warehouse.connect
from pipeline.errors import AttributionPendingError
from pipeline.ingest import IngestSummary
from pipeline.source import SourceObject
from pipeline.source.local import LocalSource


@dataclass
class Run:
    mode: str
    logs: Path
    warehouse: Path
    summary: IngestSummary


@pytest.fixture(scope="module", params=["in_memory", "streamed"])
def mixed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run over every case file (good and bad) plus a too-large file, in each parse mode."""
    root = tmp_path_factory.mktemp(f"mixed-{request.param}")
    logs = root / "logs"
    copy_cases([*GOOD_CASES, *BAD_CASES], logs)
    write_too_large(logs)
    overrides: dict[str, Any] = {"ingest.max_object_mb": 1}
    if request.param == "streamed":
        # 0.0001 MB: every case file is above the streaming threshold (the parser streams files
        # larger than threshold / 8 bytes as stored, to allow for compression).
        overrides["ingest.stream_threshold_mb"] = 0.0001
    summary = ingest([logs], root / "wh", **overrides)
    return Run(request.param, logs, root / "wh", summary)


def expected_manifest(run: Run) -> dict[str, tuple[str, str | None, int, int, int, int]]:
    return MANIFEST if run.mode == "in_memory" else MANIFEST_STREAMED


def expected_events(run: Run) -> list[str]:
    return sorted(GOOD_EVENTS + EVENTS_OF_BAD_FILES)  # in both modes


def expected_quarantined(run: Run) -> list[tuple[str, int, str]]:
    return QUARANTINED_RECORDS  # in both modes: streaming lost no file to a byte not UTF-8


# ---- bad inputs: message, manifest entry, quarantined records, the other files' events ----------
def test_other_files_events_are_present(mixed: Run) -> None:
    assert event_ids(mixed.warehouse) == expected_events(mixed)
    assert scalar(mixed.warehouse, "SELECT count(*) - count(DISTINCT event_id) FROM events") == 0


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_manifest_entry_of_each_case(mixed: Run, name: str) -> None:
    entry = manifest(mixed.warehouse)[name]
    found = (
        entry["status"],
        entry["reason"],
        entry["records"],
        entry["events_written"],
        entry["duplicates"],
        entry["quarantined_records"],
    )
    assert found == expected_manifest(mixed)[name]
    path = mixed.logs / name
    assert (entry["uri"], entry["kind"], entry["size"]) == (
        str(path),
        "events",
        path.stat().st_size,
    )
    assert entry["version"] == f"mtime_ns:{path.stat().st_mtime_ns}"
    assert entry["run_id"] == mixed.summary.run_id
    assert (entry["outside_period"], entry["period_since"], entry["period_until"]) == (
        0,
        None,
        None,
    )


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_manifest_sha256_is_of_the_decompressed_bytes(mixed: Run, name: str) -> None:
    sha = manifest(mixed.warehouse)[name]["sha256"]
    data = (mixed.logs / name).read_bytes()
    if name in ("truncated.json.gz", "corrupt.json.gz", "empty.json", TOO_LARGE):
        assert sha is None  # never read (empty, too large) or never decompressed whole
        return
    body = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    assert sha == hashlib.sha256(body).hexdigest()


def test_too_large_file_is_quarantined_without_being_read(mixed: Run) -> None:
    entry = manifest(mixed.warehouse)[TOO_LARGE]
    assert (entry["sha256"], entry["records"]) == (None, 0)
    assert "too-large-1" not in event_ids(mixed.warehouse)
    # Not read means no bytes counted either: bytes_read is every other file's size.
    sizes = sum(
        (mixed.logs / n).stat().st_size for n in MANIFEST if n not in (TOO_LARGE, "empty.json")
    )
    assert mixed.summary.bytes_read == sizes


def test_quarantined_records(mixed: Run) -> None:
    assert quarantined(mixed.warehouse) == expected_quarantined(mixed)
    # The record as found, token redacted, parseable where the record was whole.
    text = scalar(
        mixed.warehouse,
        "SELECT text FROM quarantined_records WHERE uri LIKE '%wrong_types.json' AND record_index = 5",
    )
    assert json.loads(text) == plain_records(CASES / "wrong_types.json")[5]


def test_summary(mixed: Run) -> None:
    summary = mixed.summary
    expected = expected_manifest(mixed)
    file_faults = {n for n, e in expected.items() if e[0] == "quarantined"}
    records = sum(e[2] for e in expected.values())
    quarantined_records = sum(e[5] for e in expected.values())
    assert (
        summary.objects_listed,
        summary.objects_unchanged,
        summary.objects_read,
        summary.objects_quarantined,
        summary.records_read,
        summary.records_quarantined,
        summary.events_written,
        summary.duplicates_dropped,
        summary.outside_period,
        summary.failures,
        int(summary.exit_code),
    ) == (
        len(MANIFEST),
        0,
        len(MANIFEST) - 1,  # the too-large file is never read (the empty one: 0 bytes)
        len(file_faults),
        records,
        quarantined_records,
        len(expected_events(mixed)),
        0,
        0,
        [],
        3,
    )
    assert summary.objects_too_large == 1
    # Every record is accounted for.
    assert summary.records_read == (
        summary.events_written
        + summary.duplicates_dropped
        + summary.outside_period
        + summary.records_quarantined
    )
    listed = {(Path(q["uri"]).name, q.get("record"), q["reason"]) for q in summary.quarantine}
    assert listed == {(n, None, expected[n][1]) for n in file_faults} | {
        (n, i, r) for n, i, r in expected_quarantined(mixed)
    }


def test_no_staging_or_temporary_files_left(mixed: Run) -> None:
    assert not (mixed.warehouse / "_staging").exists()
    leftovers = [p for p in mixed.warehouse.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    # Nothing escaped events/ through a crafted recipientAccountId.
    assert sorted(p.name for p in (mixed.warehouse / "events").iterdir()) == [
        f"recipient_account_id={ACCOUNT}"
    ]
    assert sorted(p.name for p in mixed.warehouse.parent.iterdir()) == ["logs", "wh"]


# ---- redaction --------------------------------------------------------------------------------
def test_session_token_is_never_stored(mixed: Run) -> None:
    sources_with_tokens = [
        n for n in [*GOOD_CASES, *BAD_CASES] if TOKEN_MARK in (CASES / n).read_bytes()
    ]
    assert sorted(sources_with_tokens) == [
        "ndjson_truncated_token.ndjson",
        "sts_assume_role_with_token.json",
    ]
    files = [p for p in mixed.warehouse.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert TOKEN_MARK not in path.read_bytes(), path
        if path.suffix == ".parquet":  # compressed pages hide text from a byte search
            table = pq.read_table(path)
            for column in table.columns:
                for value in column.to_pylist():
                    assert TOKEN_MARK.decode() not in str(value), path
    assert rows(
        mixed.warehouse,
        "SELECT uri, record_index FROM quarantined_records"
        " WHERE text LIKE '%<redacted by agenttrail>%' ORDER BY uri, record_index",
    ) == [
        {"uri": str(mixed.logs / "ndjson_truncated_token.ndjson"), "record_index": 1},
        {"uri": str(mixed.logs / "sts_assume_role_with_token.json"), "record_index": 1},
    ]
    stored = json.loads(event(mixed.warehouse, "sts-1")["response_elements"])
    assert stored["credentials"]["sessionToken"] == REDACTED


# ---- formats by content, lossless rows --------------------------------------------------------
def record_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record rebuilt from its row alone: every field of the input must come back."""
    out: dict[str, Any] = {}
    for key, column in {**SCALARS, **FLAGS}.items():
        if row[column] is not None:
            out[key] = row[column]
    for key, column in NESTED.items():
        if row[column] is not None:
            out[key] = json.loads(row[column])
    if row["event_time_source"] == "eventTime":
        out["eventTime"] = row["event_time"]
    if row["extra"] is not None:
        out.update(json.loads(row["extra"]))
    return out


def normalised(record: dict[str, Any]) -> dict[str, Any]:
    """The input record as its row should hold it: flags as booleans, the time parsed, the session
    token redacted, null-valued keys dropped."""
    out = {k: v for k, v in record.items() if v is not None}
    for key in FLAGS:
        if isinstance(out.get(key), str):
            out[key] = out[key].lower() == "true"
    if "eventTime" in out:
        out["eventTime"] = datetime.fromisoformat(out["eventTime"])
    credentials = (out.get("responseElements") or {}).get("credentials") or {}
    if "sessionToken" in credentials:
        credentials["sessionToken"] = REDACTED
    return out


@pytest.mark.parametrize("name", GOOD_CASES)
def test_every_field_of_every_record_is_kept(mixed: Run, name: str) -> None:
    for index, record in enumerate(plain_records(CASES / name)):
        if record["eventID"] not in expected_events(mixed):
            continue  # quarantined (checked above)
        row = event(mixed.warehouse, record["eventID"])
        assert record_from_row(row) == normalised(record), (name, index)
        assert (row["source_uri"], row["source_record_index"]) == (str(mixed.logs / name), index)
        assert row["ingest_run_id"] == mixed.summary.run_id


def test_formats_detected_by_content(mixed: Run) -> None:
    # A gzip file named .json, NDJSON gzipped under .json.gz, an array, one pretty record.
    by_file = rows(
        mixed.warehouse,
        "SELECT regexp_extract(source_uri, '[^/]+$') AS file, count(*) AS n FROM events GROUP BY 1",
    )
    counts = {r["file"]: r["n"] for r in by_file}
    assert {
        n: counts.get(n)
        for n in (
            "gzip_named.json",
            "ndjson_gzipped.json.gz",
            "array_of_records.json",
            "single_record_pretty.json",
        )
    } == {
        "gzip_named.json": 1,
        "ndjson_gzipped.json.gz": 2,
        "array_of_records.json": 2,
        "single_record_pretty.json": 1,
    }


def test_at_timestamp_and_typed_columns(mixed: Run) -> None:
    found = rows(
        mixed.warehouse,
        "SELECT event_id, event_time_source, event_time, event_date, typeof(event_time) AS t, "
        "typeof(read_only) AS b FROM events WHERE event_id LIKE 'ndjson-_' ORDER BY 1",
    )
    assert [
        (r["event_id"], r["event_time_source"], r["event_date"], r["t"], r["b"]) for r in found
    ] == [
        ("ndjson-1", "@timestamp", date(2024, 3, 1), "TIMESTAMP WITH TIME ZONE", "BOOLEAN"),
        ("ndjson-2", "eventTime", date(2024, 3, 1), "TIMESTAMP WITH TIME ZONE", "BOOLEAN"),
        ("ndjson-3", "@timestamp", date(2024, 3, 1), "TIMESTAMP WITH TIME ZONE", "BOOLEAN"),
    ]
    assert [r["event_time"] for r in found] == [
        datetime(2024, 3, 1, 11, 0, tzinfo=UTC),
        datetime(2024, 3, 1, 11, 0, 4, tzinfo=UTC),
        datetime(2024, 3, 1, 11, 0, 9, tzinfo=UTC),
    ]
    sts = event(mixed.warehouse, "sts-1")
    assert (sts["read_only"], sts["management_event"], sts["session_credential_from_console"]) == (
        True,
        False,
        True,
    )


def test_streamed_rows_equal_in_memory_rows(tmp_path: Path) -> None:
    """A file above the streaming threshold gives the same rows as the in-memory parse."""
    names = [*GOOD_CASES, "wrong_types.json"]
    logs = tmp_path / "logs"
    copy_cases(names, logs)
    memory = ingest([logs], tmp_path / "memory")
    streamed = ingest([logs], tmp_path / "streamed", **{"ingest.stream_threshold_mb": 0.0001})
    sql = "SELECT * EXCLUDE (ingest_run_id) FROM events ORDER BY event_id"
    a, b = rows(tmp_path / "memory", sql), rows(tmp_path / "streamed", sql)
    assert [r["event_id"] for r in a] == [r["event_id"] for r in b]
    assert len(a) == 18
    json_columns = {*NESTED.values(), "extra"}
    for left, right in zip(a, b, strict=True):
        for column, value in left.items():
            if column in json_columns and value is not None:
                assert json.loads(value) == json.loads(right[column]), (left["event_id"], column)
            else:
                assert value == right[column], (left["event_id"], column)
    assert quarantined(tmp_path / "memory") == quarantined(tmp_path / "streamed")
    summary_a = {
        k: v
        for k, v in memory.to_dict().items()
        if k in ("records_read", "events_written", "records_quarantined")
    }
    summary_b = {
        k: v
        for k, v in streamed.to_dict().items()
        if k in ("records_read", "events_written", "records_quarantined")
    }
    assert (
        summary_a
        == summary_b
        == {"records_read": 27, "events_written": 18, "records_quarantined": 9}
    )


# ---- de-duplication ---------------------------------------------------------------------------
def kept_copies(warehouse: Path) -> list[tuple[str, str, str, int]]:
    found = rows(
        warehouse,
        "SELECT event_id, event_name, regexp_extract(source_uri, '[^/]+$') AS file, "
        "source_record_index FROM events ORDER BY 1",
    )
    return [(r["event_id"], r["event_name"], r["file"], r["source_record_index"]) for r in found]


def test_duplicates_in_one_run_keep_the_smallest_source_uri(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(["dedup/b.json", "dedup/a.json"], logs)
    # The same objects named twice (as files and through their folder) are listed once.
    sources = [logs / "dedup" / "b.json", logs / "dedup" / "a.json", logs / "dedup"]
    summary = ingest(sources, tmp_path / "wh")
    assert summary.objects_listed == 2
    assert kept_copies(tmp_path / "wh") == [
        ("dup-1", "FromA", "a.json", 0),
        ("dup-2", "FromA", "a.json", 1),
        ("dup-3", "FromA", "a.json", 2),
        ("dup-4", "FromB-first", "b.json", 2),
    ]
    assert (summary.records_read, summary.events_written, summary.duplicates_dropped) == (7, 4, 3)
    assert int(summary.exit_code) == 0
    entries = manifest(tmp_path / "wh")
    assert {
        n: (e["records"], e["events_written"], e["duplicates"]) for n, e in entries.items()
    } == {
        "a.json": (3, 3, 0),
        "b.json": (4, 1, 3),
    }


def test_duplicates_across_runs_keep_the_first_ingested(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(["dedup/b.json", "dedup/a.json"], logs)
    first = ingest([logs / "dedup" / "b.json"], tmp_path / "wh")
    second = ingest([logs / "dedup"], tmp_path / "wh")
    assert (first.events_written, first.duplicates_dropped) == (3, 1)
    assert (second.objects_unchanged, second.objects_read) == (1, 1)
    assert (second.events_written, second.duplicates_dropped) == (1, 2)
    assert kept_copies(tmp_path / "wh") == [
        ("dup-1", "FromA", "a.json", 0),
        ("dup-2", "FromB", "b.json", 0),
        ("dup-3", "FromB", "b.json", 1),
        ("dup-4", "FromB-first", "b.json", 2),
    ]
    assert {
        n: (e["events_written"], e["duplicates"]) for n, e in manifest(tmp_path / "wh").items()
    } == {
        "a.json": (1, 2),
        "b.json": (3, 1),
    }


def test_database_held_open_commits_events_and_attribution_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analyst's DuckDB client holds agenttrail.duckdb while a scheduled ingest ends: the
    events land (the trail may be gone from S3 tomorrow), the run says attribution is pending
    and how to finish it, and the next run catches up without reading anything again."""
    warehouse = tmp_path / "wh"
    ingest(copy_cases(["good_cloudtrail.json.gz"], tmp_path / "first"), warehouse)
    monkeypatch.setattr(pipeline.warehouse.connect, "DATABASE_WAIT_SECONDS", 0.3)
    later = copy_cases(["array_of_records.json"], tmp_path / "later")
    with held_open(warehouse / "agenttrail.duckdb") as holder:
        with pytest.raises(AttributionPendingError) as caught:
            ingest(later, warehouse)
        assert caught.value.message.startswith(
            "2 new events are committed, but attribution could not run: "
            f"{warehouse / 'agenttrail.duckdb'} is open in "
        )
        assert caught.value.message.endswith(f"(PID {holder.pid})")
        assert caught.value.hint == (
            f"close it, then run 'agenttrail attribute --warehouse {warehouse}'"
            " (the next ingest also catches up)"
        )
        # The run's summary comes with it: what was committed is still reported.
        summary = caught.value.summary
        assert (summary.objects_read, summary.events_written) == (1, 2)
        assert summary.attribution == {"error": caught.value.one_line()}
        assert caught.value.exit_code == summary.exit_code == 1
        assert scalar(warehouse, "SELECT count(*) FROM events") == 5
        assert scalar(warehouse, "SELECT count(*) FROM events_classified") == 3
    again = ingest(later, warehouse)
    assert (again.objects_unchanged, again.objects_read) == (1, 0)
    assert again.attribution["events"] == 5
    assert scalar(warehouse, "SELECT count(*) FROM events_classified") == 5


def test_a_full_disk_during_attribution_keeps_the_summary_and_the_highest_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild meets a full disk after the commits: the events and the quarantine stay
    reported (exit 3, the highest code that applies), with the disk's line and what to run."""

    def full(*args: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "derived/gen-x/part-0.parquet")

    monkeypatch.setattr(pipeline.attribute.classify, "refresh_attribution", full)
    logs = copy_cases(["array_of_records.json", "no_records.json"], tmp_path / "logs")
    warehouse = tmp_path / "wh"
    with pytest.raises(AttributionPendingError) as caught:
        ingest(logs, warehouse)
    assert caught.value.one_line() == (
        f"2 new events are committed, but attribution could not run: cannot write the "
        f"warehouse {warehouse}: its disk is full (make room, then run 'agenttrail attribute "
        f"--warehouse {warehouse}' (the next ingest also catches up))"
    )
    summary = caught.value.summary
    assert (summary.events_written, summary.objects_quarantined) == (2, 1)
    assert caught.value.exit_code == summary.exit_code == 3
    assert summary.to_dict()["attribution"] == {"error": caught.value.one_line()}


def _records_file(path: Path, ids: list[str], name: str) -> None:
    records = [
        {
            "eventID": i,
            "eventTime": "2024-03-01T08:00:00Z",
            "eventName": name,
            "recipientAccountId": ACCOUNT,
        }
        for i in ids
    ]
    path.write_text(json.dumps({"Records": records}))


def test_kept_copy_is_deterministic_across_commits_of_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers, one object per task, a commit after every task: the big first file finishes
    after the small second one, yet its copy (the smaller source_uri) is the one kept."""
    monkeypatch.setattr(pipeline.ingest, "TASK_MAX_OBJECTS", 1)
    logs = tmp_path / "logs"
    logs.mkdir()
    _records_file(logs / "a_big.json", [f"big-{i}" for i in range(30_000)] + ["shared"], "FromBig")
    _records_file(logs / "b_small.json", ["shared", "small-1"], "FromSmall")
    summary = ingest([logs], tmp_path / "wh", **{"ingest.workers": 2, "ingest.commit_rows": 1})
    assert (summary.events_written, summary.duplicates_dropped) == (30_002, 1)
    assert scalar(tmp_path / "wh", "SELECT count(*) - count(DISTINCT event_id) FROM events") == 0
    assert rows(
        tmp_path / "wh",
        "SELECT event_name, regexp_extract(source_uri, '[^/]+$') AS file FROM events "
        "WHERE event_id = 'shared'",
    ) == [{"event_name": "FromBig", "file": "a_big.json"}]
    assert {
        n: (e["events_written"], e["duplicates"]) for n, e in manifest(tmp_path / "wh").items()
    } == {
        "a_big.json": (30_001, 0),
        "b_small.json": (1, 1),
    }


# ---- incremental ------------------------------------------------------------------------------
INCREMENTAL = [
    "good_cloudtrail.json.gz",
    "array_of_records.json",
    "ndjson_with_extra_fields.ndjson",
]


def test_rerun_reads_nothing_and_touch_rereads_only_that_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(INCREMENTAL, logs)
    first = ingest([logs], tmp_path / "wh")
    assert (first.objects_read, first.events_written) == (3, 8)
    before = event_ids(tmp_path / "wh")

    again = ingest([logs], tmp_path / "wh")
    assert (again.objects_listed, again.objects_unchanged, again.objects_read) == (3, 3, 0)
    assert (again.records_read, again.events_written, again.duplicates_dropped) == (0, 0, 0)
    assert int(again.exit_code) == 0

    touched = logs / "array_of_records.json"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after_touch = ingest([logs], tmp_path / "wh")
    assert (after_touch.objects_unchanged, after_touch.objects_read) == (2, 1)
    assert (
        after_touch.records_read,
        after_touch.events_written,
        after_touch.duplicates_dropped,
    ) == (2, 0, 2)
    entry = manifest(tmp_path / "wh")["array_of_records.json"]
    assert (entry["version"], entry["run_id"], entry["duplicates"]) == (
        f"mtime_ns:{touched.stat().st_mtime_ns}",
        after_touch.run_id,
        2,
    )
    assert manifest(tmp_path / "wh")["good_cloudtrail.json.gz"]["run_id"] == first.run_id
    assert event_ids(tmp_path / "wh") == before

    # A new file is read, alone.
    copy_cases(["gzip_named.json"], logs)
    added = ingest([logs], tmp_path / "wh")
    assert (added.objects_unchanged, added.objects_read, added.events_written) == (3, 1, 1)
    assert scalar(tmp_path / "wh", "SELECT count(*) FROM manifest_history") == 5


def test_quarantined_object_is_not_read_again_unless_asked(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(["no_records.json"], logs)
    first = ingest([logs], tmp_path / "wh")
    again = ingest([logs], tmp_path / "wh")
    assert (first.objects_quarantined, int(first.exit_code)) == (1, 3)
    assert (again.objects_unchanged, again.objects_quarantined, int(again.exit_code)) == (1, 0, 0)
    retried = pipeline.ingest.run_ingest(
        [str(logs)],
        settings(tmp_path / "wh"),
        retry_quarantined=True,
    )
    assert (retried.objects_read, retried.objects_quarantined, int(retried.exit_code)) == (1, 1, 3)


def test_since_until_keep_records_by_event_time_and_wider_run_rereads(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(["period/three_days.json", "period/march_fourth.json"], logs)
    narrow = ingest([logs], tmp_path / "wh", since=date(2024, 3, 2), until=date(2024, 3, 2))
    # period-3 is 2024-03-03T00:30:00+01:00, that is 2024-03-02 in UTC.
    assert event_ids(tmp_path / "wh") == ["period-2", "period-3"]
    assert (narrow.records_read, narrow.events_written, narrow.outside_period) == (5, 2, 3)
    entries = manifest(tmp_path / "wh")
    assert {
        n: (e["events_written"], e["outside_period"], e["period_since"], e["period_until"])
        for n, e in entries.items()
    } == {
        "three_days.json": (2, 2, date(2024, 3, 2), date(2024, 3, 2)),
        "march_fourth.json": (0, 1, date(2024, 3, 2), date(2024, 3, 2)),
    }
    assert int(narrow.exit_code) == 0  # dropping by period is not a quarantine

    same = ingest([logs], tmp_path / "wh", since=date(2024, 3, 2), until=date(2024, 3, 2))
    assert (same.objects_unchanged, same.objects_read) == (2, 0)

    later_only = ingest([logs], tmp_path / "wh", since=date(2024, 3, 4), until=date(2024, 3, 4))
    assert (later_only.objects_unchanged, later_only.objects_read, later_only.events_written) == (
        0,
        2,
        1,
    )
    assert event_ids(tmp_path / "wh") == ["period-2", "period-3", "period-5"]

    wider = ingest([logs], tmp_path / "wh")
    assert (wider.objects_read, wider.events_written, wider.duplicates_dropped) == (1, 2, 2)
    assert event_ids(tmp_path / "wh") == [
        "period-1",
        "period-2",
        "period-3",
        "period-4",
        "period-5",
    ]
    entry = manifest(tmp_path / "wh")["three_days.json"]
    assert (entry["outside_period"], entry["period_since"], entry["period_until"]) == (
        0,
        None,
        None,
    )
    final = ingest([logs], tmp_path / "wh")
    assert (final.objects_unchanged, final.objects_read) == (2, 0)


# ---- equality with a plain reading of real data -----------------------------------------------
def test_otrf_dataset_equals_a_plain_reading(tmp_path: Path) -> None:
    records = OTRF / "records.ndjson"
    if not records.exists():
        pytest.skip(f"dataset not present: {OTRF}")
    summary = ingest([records], tmp_path / "wh")
    expected = plain_event_ids([records])
    assert len(expected) == 103
    assert set(event_ids(tmp_path / "wh")) == expected
    assert scalar(tmp_path / "wh", "SELECT count(*) FROM events") == len(expected)
    assert (summary.records_read, summary.events_written, int(summary.exit_code)) == (103, 103, 0)
    # The real records carry @timestamp, not eventTime.
    assert rows(tmp_path / "wh", "SELECT DISTINCT event_time_source FROM events") == [
        {"event_time_source": "@timestamp"}
    ]
    lines = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    by_id = {r["event_id"]: r for r in rows(tmp_path / "wh", "SELECT * FROM events")}
    for record in lines:
        row = by_id[record["eventID"]]
        assert row["event_time"] == datetime.fromisoformat(record["@timestamp"])
        assert record_from_row(row) == normalised(record)


def test_sample_logs_equal_a_plain_reading(tmp_path: Path) -> None:
    trail = SAMPLE_LOGS / "AWSLogs"
    if not trail.is_dir():
        pytest.skip("sample_logs/AWSLogs not generated yet")
    summary = ingest([trail], tmp_path / "wh", **{"ingest.workers": 2})
    files = trail_event_files(trail)
    expected = plain_event_ids(files)
    total = sum(len(plain_records(f)) for f in files)
    assert set(event_ids(tmp_path / "wh")) == expected
    assert scalar(tmp_path / "wh", "SELECT count(*) FROM events") == len(expected)
    assert summary.records_read == total
    assert summary.duplicates_dropped == total - len(expected)
    assert (summary.records_quarantined, summary.objects_quarantined) == (0, 0)


# ---- object kinds, progress, leftovers --------------------------------------------------------
def test_digest_insight_and_events_in_the_trail_layout(tmp_path: Path) -> None:
    base = tmp_path / "logs" / "AWSLogs" / "o-aa11bb22cc" / ACCOUNT
    day = "us-east-1/2024/03/01"
    files = {
        f"CloudTrail/{day}/{ACCOUNT}_CloudTrail_us-east-1_20240301T0000Z_a1.json.gz": (
            "good_cloudtrail.json.gz"
        ),
        f"CloudTrail-Digest/{day}/{ACCOUNT}_CloudTrail-Digest_us-east-1_t_20240301T010000Z.json.gz": (
            "truncated.json.gz"
        ),
        f"CloudTrail-Insight/{day}/{ACCOUNT}_CloudTrail-Insight_us-east-1_20240301T0000Z_b2.json.gz": (
            "good_cloudtrail.json.gz"
        ),
    }
    for relative, case in files.items():
        (base / relative).parent.mkdir(parents=True, exist_ok=True)
        (base / relative).write_bytes((CASES / case).read_bytes())
    seen: list[pipeline.ingest.Progress] = []
    summary = pipeline.ingest.run_ingest(
        [str(tmp_path / "logs")],
        settings(tmp_path / "wh"),
        progress=seen.append,
    )
    assert dict(summary.skipped_by_kind) == {"insight": 1}
    assert (summary.events_written, summary.digests_recorded, summary.objects_quarantined) == (
        3,
        0,
        1,
    )
    assert [(Path(q["uri"]).name.split("_")[1], q["reason"]) for q in summary.quarantine] == [
        ("CloudTrail-Digest", "digest: truncated gzip: the compressed stream ends early")
    ]
    statuses = {
        Path(n).name.split("_")[1]: (e["kind"], e["status"])
        for n, e in manifest(tmp_path / "wh").items()
    }
    assert statuses == {
        "CloudTrail": ("events", "ingested"),
        "CloudTrail-Digest": ("digest", "quarantined"),
        "CloudTrail-Insight": ("insight", "skipped"),
    }
    # Progress reaches every listed object, the quarantined digest included.
    assert (seen[-1].objects_done, seen[-1].objects_total) == (3, 3)


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(["gzip_named.json"], logs)
    ingest([logs], tmp_path / "wh")
    wh = tmp_path / "wh"
    leftovers = [
        wh / "_staging" / "20240301T000000Z-deadbeef" / "part.parquet",
        wh / "manifest" / ".part-20240301T000000Z-deadbeef-00000.parquet.tmp",
        wh / "quarantine" / ".part-20240301T000000Z-deadbeef-00000.parquet.tmp",
        wh / "digests" / ".part-20240301T000000Z-deadbeef-00000.parquet.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    copy_cases(["array_of_records.json"], logs)
    summary = ingest([logs], wh)
    assert (summary.objects_read, summary.events_written) == (1, 2)
    assert [p for p in leftovers if p.exists()] == []
    assert not (wh / "_staging").exists()
    assert event_ids(wh) == ["array-1", "array-2", "gzip-named-1"]


def test_tasks_end_at_a_folder_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task that reached its target takes the rest of its folder (up to twice the target)."""
    monkeypatch.setattr(pipeline.ingest, "TASK_BYTES", 100)
    monkeypatch.setattr(pipeline.ingest, "TASK_MIN_BYTES", 100)
    source = LocalSource(tmp_path)
    keys = ["01/a", "01/b", "01/c", "02/a", "03/a", "03/b", "03/c", "03/d", "03/e", "04/a"]
    objects = [SourceObject(f"/trail/{k}.json", "events", 40, "v") for k in reversed(keys)]
    tasks = pipeline.ingest._tasks(((source, o) for o in objects), 1)
    assert [[o.uri[7:-5] for _, o in task] for task in tasks] == [
        ["01/a", "01/b", "01/c"],
        ["02/a", "03/a", "03/b", "03/c", "03/d"],
        ["03/e", "04/a"],
    ]


def test_last_tasks_shrink_so_that_workers_finish_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline.ingest, "TASK_BYTES", 400)
    monkeypatch.setattr(pipeline.ingest, "TASK_MIN_BYTES", 100)
    source = LocalSource(tmp_path)
    objects = [SourceObject(f"/trail/{i:03d}/a.json", "events", 50, "v") for i in range(60)]
    tasks = pipeline.ingest._tasks(((source, o) for o in objects), 2)
    # 3,000 bytes in 50-byte objects: 400-byte tasks while a quarter of what is left is at
    # least 400, then a quarter of what is left (rounded up to whole objects), at least 100.
    assert [sum(o.size for _, o in task) for task in tasks] == (
        [400] * 4 + [350, 300, 200, 150, 100, 100, 100, 100]
    )


LATIN1_CASES = ("latin1_array.json.gz", "latin1_lines.ndjson", "latin1_records.json")
LATIN1_REASONS = {
    1: "userAgent: invalid UTF-8 (invalid continuation byte at byte 26)",
    3: "requestParameters: invalid UTF-8 (invalid continuation byte at byte 17)",
    4: "a key is not valid UTF-8 (invalid continuation byte at byte 3 of the key)",
}


@pytest.mark.parametrize("mode", ["in_memory", "streamed"])
def test_bytes_not_utf8_quarantine_their_record_alone_at_any_file_size(
    tmp_path: Path, mode: str
) -> None:
    """A SIEM export with Latin-1 bytes in some records' strings (a userAgent, a nested value, a
    key), as a Records document, a gzipped array and NDJSON. Streamed (a file above
    stream_threshold_mb / 8), the whole file was quarantined ("invalid bytes in UTF8 string")
    and every other record of it lost; now, as in memory, only those records."""
    logs = tmp_path / "logs"
    copy_cases(LATIN1_CASES, logs)
    overrides = {"ingest.stream_threshold_mb": 0.0001} if mode == "streamed" else {}
    summary = ingest([logs], tmp_path / "wh", **overrides)
    assert (
        summary.objects_read,
        summary.objects_quarantined,
        summary.records_read,
        summary.events_written,
        summary.records_quarantined,
        summary.failures,
        int(summary.exit_code),
    ) == (3, 0, 18, 3, 9, [], 3)  # one event in three files: the same eventIDs, deduplicated
    assert event_ids(tmp_path / "wh") == ["latin1-ok-1", "latin1-ok-2", "latin1-ok-3"]
    assert rows(tmp_path / "wh", "SELECT user_agent FROM events ORDER BY event_id") == [
        {"user_agent": "aws-sdk-go/1.50.0"},
        {"user_agent": "aws-sdk-go/1.50.0"},
        {"user_agent": "caf\u00e9 (UTF-8)"},
    ]
    assert quarantined(tmp_path / "wh") == [
        (name, index, reason) for name in LATIN1_CASES for index, reason in LATIN1_REASONS.items()
    ]
    reason = "; ".join(f"1 record(s): {r}" for r in LATIN1_REASONS.values())
    found = manifest(tmp_path / "wh")
    for name in LATIN1_CASES:
        entry = found[name]
        assert (
            entry["status"],
            entry["reason"],
            entry["records"],
            entry["quarantined_records"],
        ) == ("ingested", reason, 6, 3), name
    # Each quarantined record's text is the record as found (its byte 0xE9 stored as U+FFFD).
    lines = (logs / "latin1_lines.ndjson").read_bytes().splitlines()
    texts = rows(
        tmp_path / "wh", "SELECT uri, record_index, text FROM quarantined_records ORDER BY 1, 2"
    )
    assert [(Path(r["uri"]).name, r["record_index"]) for r in texts] == [
        (name, index) for name in LATIN1_CASES for index in LATIN1_REASONS
    ]
    for r in texts:
        expected = json.loads(lines[r["record_index"]].decode("utf-8", "replace"))
        assert json.loads(r["text"]) == expected
        assert "\ufffd" in r["text"]


def test_bytes_not_utf8_give_the_same_warehouse_in_memory_and_streamed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    copy_cases(LATIN1_CASES, logs)
    ingest([logs], tmp_path / "memory")
    ingest([logs], tmp_path / "streamed", **{"ingest.stream_threshold_mb": 0.0001})
    sql = "SELECT * EXCLUDE (ingest_run_id) FROM events ORDER BY event_id"
    a, b = rows(tmp_path / "memory", sql), rows(tmp_path / "streamed", sql)
    assert (
        [r["event_id"] for r in a]
        == [r["event_id"] for r in b]
        == [
            "latin1-ok-1",
            "latin1-ok-2",
            "latin1-ok-3",
        ]
    )
    json_columns = {*NESTED.values(), "extra"}
    for left, right in zip(a, b, strict=True):
        for column, value in left.items():
            if column in json_columns and value is not None:  # ijson's text has no spaces
                assert json.loads(value) == json.loads(right[column]), (left["event_id"], column)
            else:
                assert value == right[column], (left["event_id"], column)
    sql = "SELECT uri, record_index, reason, text FROM quarantined_records ORDER BY 1, 2"
    memory = rows(tmp_path / "memory", sql)
    assert len(memory) == 9
    assert rows(tmp_path / "streamed", sql) == memory


# ---- file names, symbolic links and dot-files in a source folder -------------------------------
def _record(event_id: str, event_time: str = "2024-03-01T10:00:00Z") -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": event_time,
        "recipientAccountId": ACCOUNT,
    }


def _write_records(path: Path | bytes, *records: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump({"Records": list(records)}, f)


def test_a_file_name_that_is_not_utf8_is_read_recorded_and_unchanged_on_rerun(
    tmp_path: Path,
) -> None:
    """A Latin-1 name beside valid logs: its events land, the manifest records it under a
    file:// URI of its bytes (the other objects keep their plain paths), and a re-run finds it
    unchanged."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("a1"))
    latin1 = os.fsencode(logs) + b"/caf\xe9.json"
    _write_records(latin1, _record("latin1"))
    first = ingest([logs], tmp_path / "wh")
    assert (first.objects_listed, first.objects_read, first.events_written) == (2, 2, 2)
    assert (first.objects_quarantined, first.failures, int(first.exit_code)) == (0, [], 0)
    uri = f"file://{logs}/caf%E9.json"
    found = rows(
        tmp_path / "wh", "SELECT uri, status, version, events_written FROM manifest ORDER BY uri"
    )
    assert found == [
        {
            "uri": str(logs / "a.json"),
            "status": "ingested",
            "version": f"mtime_ns:{(logs / 'a.json').stat().st_mtime_ns}",
            "events_written": 1,
        },
        {
            "uri": uri,
            "status": "ingested",
            "version": f"mtime_ns:{os.stat(latin1).st_mtime_ns}",
            "events_written": 1,
        },
    ]
    assert rows(tmp_path / "wh", "SELECT event_id, source_uri FROM events ORDER BY 1") == [
        {"event_id": "a1", "source_uri": str(logs / "a.json")},
        {"event_id": "latin1", "source_uri": uri},
    ]
    assert first.attribution["events"] == 2
    again = ingest([logs], tmp_path / "wh")
    assert (again.objects_listed, again.objects_unchanged, again.objects_read) == (2, 2, 0)
    assert int(again.exit_code) == 0


@pytest.mark.parametrize("mode", ["in_memory", "streamed"])
def test_an_event_time_outside_years_1_to_9999_in_utc_quarantines_that_record(
    tmp_path: Path, mode: str
) -> None:
    """A valid time with a zone whose UTC day is in year 0 or 10000 has no partition: that
    record is quarantined as found, the object's other records and the other objects land."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("ok1"))
    early = _record("y0", "0001-01-01T00:00:00+01:00")
    late = _record("y10000", "9999-12-31T23:59:59-01:00")
    _write_records(logs / "b.json", _record("ok2"), early, late, _record("ok3"))
    overrides = {"ingest.stream_threshold_mb": 0.0001} if mode == "streamed" else {}
    summary = ingest([logs], tmp_path / "wh", **overrides)
    assert (
        summary.records_read,
        summary.records_quarantined,
        summary.events_written,
        summary.objects_quarantined,
        summary.failures,
        int(summary.exit_code),
    ) == (5, 2, 3, 0, [], 3)
    assert event_ids(tmp_path / "wh") == ["ok1", "ok2", "ok3"]
    reason = (
        "record {}: eventTime {!r} is outside the years 1 to 9999 in UTC"
        " (events are partitioned by their UTC date)"
    )
    expected = [
        ("b.json", 1, reason.format("y0", early["eventTime"])),
        ("b.json", 2, reason.format("y10000", late["eventTime"])),
    ]
    assert quarantined(tmp_path / "wh") == expected
    assert summary.quarantine == [
        {"uri": str(logs / "b.json"), "record": i, "reason": r} for _, i, r in expected
    ]
    texts = rows(tmp_path / "wh", "SELECT text FROM quarantined_records ORDER BY record_index")
    assert [json.loads(r["text"]) for r in texts] == [early, late]
    entry = manifest(tmp_path / "wh")["b.json"]
    assert (entry["status"], entry["records"], entry["events_written"]) == ("ingested", 4, 2)
    assert (entry["quarantined_records"], entry["reason"]) == (
        2,
        f"1 record(s): {expected[0][2]}; 1 record(s): {expected[1][2]}",
    )
    again = ingest([logs], tmp_path / "wh", **overrides)
    assert (again.objects_unchanged, again.objects_read, int(again.exit_code)) == (2, 0, 0)


def test_a_dangling_symlink_is_quarantined_and_the_run_carries_on(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("a1"))
    target = tmp_path / "nowhere.json"
    (logs / "old.json").symlink_to(target)
    reason = (
        f"cannot read: symbolic link to {target}, which cannot be opened (No such file or"
        " directory)"
    )
    first = ingest([logs], tmp_path / "wh")
    assert (
        first.objects_listed,
        first.objects_read,
        first.objects_quarantined,
        first.events_written,
        first.failures,
        int(first.exit_code),
    ) == (2, 2, 1, 1, [], 3)
    assert first.quarantine == [{"uri": str(logs / "old.json"), "reason": reason}]
    entry = manifest(tmp_path / "wh")["old.json"]
    assert (entry["status"], entry["reason"], entry["size"], entry["version"]) == (
        "quarantined",
        reason,
        0,
        f"unreadable:mtime_ns:{(logs / 'old.json').lstat().st_mtime_ns}",
    )
    assert event_ids(tmp_path / "wh") == ["a1"]
    again = ingest([logs], tmp_path / "wh")
    assert (again.objects_unchanged, again.objects_read, int(again.exit_code)) == (2, 0, 0)
    # Once the link leads somewhere, its file is read.
    _write_records(target, _record("late1"))
    found = ingest([logs], tmp_path / "wh")
    assert (found.objects_unchanged, found.objects_read, found.events_written) == (1, 1, 1)
    assert event_ids(tmp_path / "wh") == ["a1", "late1"]
    assert manifest(tmp_path / "wh")["old.json"]["status"] == "ingested"


def test_a_folder_that_cannot_be_listed_is_quarantined_and_read_once_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subfolder that cannot be listed (permission denied): os.walk passed over it without a
    word, and its files were neither read nor counted (exit 0). It is one quarantined object,
    named in the summary and the manifest, and the run exits 3; once it can be listed, the next
    run reads its files."""
    logs = tmp_path / "logs"
    (logs / "locked" / "deeper").mkdir(parents=True)
    _write_records(logs / "a.json", _record("a1"))
    _write_records(logs / "locked" / "b.json", _record("b1"))
    _write_records(logs / "locked" / "deeper" / "c.json", _record("c1"))
    deny_listing(monkeypatch, logs / "locked")
    reason = "cannot read: a folder whose files cannot be listed (Permission denied)"
    first = ingest([logs], tmp_path / "wh")
    assert (
        first.objects_listed,
        first.objects_read,
        first.objects_quarantined,
        first.events_written,
        first.failures,
        int(first.exit_code),
    ) == (2, 2, 1, 1, [], 3)
    assert first.quarantine == [{"uri": str(logs / "locked"), "reason": reason}]
    entry = manifest(tmp_path / "wh")["locked"]
    assert (entry["uri"], entry["kind"], entry["status"], entry["reason"], entry["size"]) == (
        str(logs / "locked"),
        "events",
        "quarantined",
        reason,
        0,
    )
    assert entry["version"] == f"unreadable:mtime_ns:{(logs / 'locked').stat().st_mtime_ns}"
    assert event_ids(tmp_path / "wh") == ["a1"]
    # Still denied and unchanged: already in the manifest, as a dangling link is.
    again = ingest([logs], tmp_path / "wh")
    assert (again.objects_unchanged, again.objects_read, int(again.exit_code)) == (2, 0, 0)
    # Listed again once it can be: its files (at any depth) are read.
    monkeypatch.undo()
    found = ingest([logs], tmp_path / "wh")
    assert (
        found.objects_listed,
        found.objects_unchanged,
        found.objects_read,
        found.events_written,
        int(found.exit_code),
    ) == (3, 1, 2, 2, 0)
    assert event_ids(tmp_path / "wh") == ["a1", "b1", "c1"]
    statuses = {name: e["status"] for name, e in manifest(tmp_path / "wh").items()}
    assert statuses == {
        "a.json": "ingested",
        "b.json": "ingested",
        "c.json": "ingested",
        "locked": "quarantined",  # the first run's entry, kept as history
    }


def test_a_folder_without_read_permission_is_quarantined(tmp_path: Path) -> None:
    """A real chmod (the first run without root's powers, ingest_cli), beside the
    monkeypatched twin above."""
    logs = tmp_path / "logs"
    (logs / "locked").mkdir(parents=True)
    _write_records(logs / "a.json", _record("a1"))
    _write_records(logs / "locked" / "b.json", _record("b1"))
    (logs / "locked").chmod(0o000)
    try:
        first = ingest_cli(logs, tmp_path / "wh")
    finally:
        (logs / "locked").chmod(0o755)
    assert (first["objects_quarantined"], first["events_written"], first["exit_code"]) == (1, 1, 3)
    assert first["quarantine"] == [
        {
            "uri": str(logs / "locked"),
            "reason": "cannot read: a folder whose files cannot be listed (Permission denied)",
        }
    ]
    found = ingest([logs], tmp_path / "wh")
    assert (found.objects_read, found.events_written, int(found.exit_code)) == (1, 1, 0)
    assert event_ids(tmp_path / "wh") == ["a1", "b1"]


def test_a_digest_gone_before_it_is_read_is_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A digest file that cannot be read (removed after listing, unreadable) is quarantined
    as an events file would be, not the end of the run."""
    logs = tmp_path / "logs"
    digest = logs / (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/01/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T010000Z.json.gz"
    )
    digest.parent.mkdir(parents=True)
    digest.write_bytes(gzip.compress(b"{}"))
    _write_records(logs / "a.json", _record("a1"))
    fetch = LocalSource.fetch

    def fetch_then_remove(self: LocalSource, obj: SourceObject, *args: Any) -> Any:
        fetched = fetch(self, obj, *args)
        if obj.kind == "digest":
            digest.unlink()
        return fetched

    monkeypatch.setattr(LocalSource, "fetch", fetch_then_remove)
    summary = ingest([logs], tmp_path / "wh")
    assert (
        summary.objects_read,
        summary.digests_recorded,
        summary.objects_quarantined,
        summary.events_written,
        int(summary.exit_code),
    ) == (2, 0, 1, 1, 3)
    assert summary.quarantine == [
        {"uri": str(digest), "reason": "digest: cannot read: No such file or directory"}
    ]
    assert manifest(tmp_path / "wh")[digest.name]["status"] == "quarantined"


def test_dot_files_are_read_like_any_file(tmp_path: Path) -> None:
    """A source folder is read whole: a hidden file's records land, a .DS_Store is
    quarantined, and both are in the manifest and the counts."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("visible"))
    _write_records(logs / ".b.json", _record("hidden"))
    (logs / ".DS_Store").write_bytes(b"junk")
    (logs / ".git").mkdir()
    _write_records(logs / ".git" / "c.json", _record("in_hidden_folder"))
    summary = ingest([logs], tmp_path / "wh")
    assert (
        summary.objects_listed,
        summary.objects_read,
        summary.objects_quarantined,
        summary.events_written,
        int(summary.exit_code),
    ) == (4, 4, 1, 3, 3)
    assert event_ids(tmp_path / "wh") == ["hidden", "in_hidden_folder", "visible"]
    found = rows(tmp_path / "wh", "SELECT uri, status, reason FROM manifest ORDER BY uri")
    assert found == [
        {
            "uri": str(logs / ".DS_Store"),
            "status": "quarantined",
            "reason": "not JSON: starts with b'junk'",
        },
        {"uri": str(logs / ".b.json"), "status": "ingested", "reason": None},
        {"uri": str(logs / ".git" / "c.json"), "status": "ingested", "reason": None},
        {"uri": str(logs / "a.json"), "status": "ingested", "reason": None},
    ]


def test_a_warehouse_inside_the_source_folder_is_not_read_as_logs(tmp_path: Path) -> None:
    """`ingest ~/logs -w ~/logs/warehouse`: the warehouse's own files are left out of the
    listing, so a re-run finds nothing new instead of quarantining the files the last run
    wrote."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("a1"))
    first = ingest([logs], logs / "warehouse")
    assert (first.objects_listed, first.events_written, int(first.exit_code)) == (1, 1, 0)
    again = ingest([logs], logs / "warehouse")
    assert (again.objects_listed, again.objects_read, again.objects_quarantined) == (1, 0, 0)
    assert int(again.exit_code) == 0


@pytest.mark.parametrize(
    "content", [b"", gzip.compress(b"", mtime=0), gzip.compress(b" \n", mtime=0)]
)
def test_an_empty_digest_is_quarantined_as_an_empty_events_file_is(
    tmp_path: Path, content: bytes
) -> None:
    """A digest that says nothing proves nothing: it is not recorded as one that does."""
    logs = tmp_path / "logs"
    digest = logs / (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/01/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T010000Z.json.gz"
    )
    digest.parent.mkdir(parents=True)
    digest.write_bytes(content)
    _write_records(logs / "a.json", _record("a1"))
    summary = ingest([logs], tmp_path / "wh")
    assert (summary.digests_recorded, summary.objects_quarantined, int(summary.exit_code)) == (
        0,
        1,
        3,
    )
    assert summary.quarantine == [{"uri": str(digest), "reason": "digest: empty file"}]


# ---- files that cannot be read for a reason that is not their content -------------------------


def _parse_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse tasks on a thread of the test's process instead of parse processes (forked from a
    server started before the test), so that a monkeypatch reaches them."""
    monkeypatch.setattr(
        pipeline.ingest._Job, "_parse_processes", lambda self: ThreadPoolExecutor(1)
    )


def _refuse_reading(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    """Reading these files fails with EACCES, as it does a file without read permission for
    anyone but root (the tests run as root, whom chmod 000 does not stop)."""
    refused = {str(p) for p in paths}
    read_bytes = Path.read_bytes

    def refusing(self: Path) -> bytes:
        if str(self) in refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refusing)


def test_a_file_that_cannot_be_read_is_read_again_once_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file unreadable for its permissions (EACCES) was quarantined under its own version
    (its mtime), which a chmod does not change: every later run counted it unchanged, and its
    events never arrived. It is quarantined and reported as before, under a marked version, so
    the next run reads it again (quarantined again while it cannot be read)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("a1"))
    _write_records(logs / "b.json", _record("b1"), _record("b2"))
    _parse_in_this_process(monkeypatch)
    _refuse_reading(monkeypatch, logs / "b.json")
    reason = f"cannot read: [Errno 13] Permission denied: '{logs / 'b.json'}'"
    for first in (True, False):  # quarantined again by the next run while still refused
        denied = ingest([logs], tmp_path / "wh")
        assert (
            denied.objects_read,
            denied.objects_quarantined,
            denied.events_written,
            int(denied.exit_code),
        ) == ((2, 1, 1, 3) if first else (1, 1, 0, 3))
        assert denied.quarantine == [{"uri": str(logs / "b.json"), "reason": reason}]
    entry = manifest(tmp_path / "wh")["b.json"]
    mtime = (logs / "b.json").stat().st_mtime_ns
    assert (entry["status"], entry["reason"], entry["version"]) == (
        "quarantined",
        reason,
        f"unreadable:mtime_ns:{mtime}",
    )
    monkeypatch.undo()  # chmod 644: its mtime stays
    found = ingest([logs], tmp_path / "wh")
    assert (found.objects_unchanged, found.objects_read, found.events_written) == (1, 1, 2)
    assert int(found.exit_code) == 0
    assert event_ids(tmp_path / "wh") == ["a1", "b1", "b2"]
    entry = manifest(tmp_path / "wh")["b.json"]
    assert (entry["status"], entry["version"]) == ("ingested", f"mtime_ns:{mtime}")
    again = ingest([logs], tmp_path / "wh")
    assert (again.objects_unchanged, again.objects_read) == (2, 0)


def test_a_file_without_read_permission_is_read_once_it_has_it(tmp_path: Path) -> None:
    """A real chmod (the first run without root's powers, ingest_cli); its mtime unchanged."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("a1"))
    _write_records(logs / "b.json", _record("b1"))
    (logs / "b.json").chmod(0o000)
    try:
        first = ingest_cli(logs, tmp_path / "wh")
    finally:
        (logs / "b.json").chmod(0o644)
    assert (first["objects_quarantined"], first["events_written"], first["exit_code"]) == (1, 1, 3)
    found = ingest([logs], tmp_path / "wh")
    assert (found.objects_read, found.events_written, int(found.exit_code)) == (1, 1, 0)
    assert event_ids(tmp_path / "wh") == ["a1", "b1"]


def test_a_digest_that_cannot_be_read_is_read_again_once_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    digest = logs / (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/01/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T010000Z.json.gz"
    )
    digest.parent.mkdir(parents=True)
    digest.write_bytes(gzip.compress(b'{"digestEndTime": "2024-03-01T01:00:00Z"}', mtime=0))
    _write_records(logs / "a.json", _record("a1"))
    _refuse_reading(monkeypatch, digest)
    denied = ingest([logs], tmp_path / "wh")
    assert (denied.digests_recorded, denied.objects_quarantined, int(denied.exit_code)) == (0, 1, 3)
    assert denied.quarantine == [
        {"uri": str(digest), "reason": "digest: cannot read: Permission denied"}
    ]
    assert manifest(tmp_path / "wh")[digest.name]["version"].startswith("unreadable:mtime_ns:")
    monkeypatch.undo()
    found = ingest([logs], tmp_path / "wh")
    assert (found.objects_unchanged, found.digests_recorded, int(found.exit_code)) == (1, 1, 0)
    entry = manifest(tmp_path / "wh")[digest.name]
    assert (entry["status"], entry["reason"]) == ("ingested", "digest recorded")
    assert entry["version"] == f"mtime_ns:{digest.stat().st_mtime_ns}"


# ---- a run killed between its renames into events/ and its manifest ------------------------------


class _Killed(BaseException):
    """Stands for SIGKILL: raised where the kill lands, it skips every later step of the run."""


def test_rows_a_killed_run_committed_count_as_written_not_as_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its staged files were renamed into events/ and before its manifest: the
    re-run reads those objects again and finds their rows in events/. It drops them (rows are
    never written twice) but counted them as duplicates (41,500 of them in a source holding
    none). They are its objects' own records: counted as written, in the summary and in each
    object's manifest entry, and only true copies count as duplicates."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _records_file(logs / "a.json", ["e1", "e2", "e3"], "A")
    _records_file(logs / "b.json", ["e3", "e4", "e5"], "B")  # e3: a true duplicate
    append = pipeline.ingest.manifest.append

    def killed(*args: Any) -> None:
        raise _Killed

    monkeypatch.setattr(pipeline.ingest.manifest, "append", killed)
    with pytest.raises(_Killed):
        ingest([logs], tmp_path / "wh")
    monkeypatch.setattr(pipeline.ingest.manifest, "append", append)
    # The on-disk state of the kill: every row in events/, no manifest, no database yet.
    assert not list((tmp_path / "wh" / "manifest").glob("*.parquet"))
    assert len(list((tmp_path / "wh" / "events").glob("*/*/*.parquet"))) == 1
    rerun = ingest([logs], tmp_path / "wh")
    assert (
        rerun.records_read,
        rerun.events_written,
        rerun.duplicates_dropped,
        int(rerun.exit_code),
    ) == (6, 5, 1, 0)
    assert rerun.records_read == (
        rerun.events_written
        + rerun.duplicates_dropped
        + rerun.outside_period
        + rerun.outside_scope
        + rerun.records_quarantined
    )
    entries = manifest(tmp_path / "wh")
    assert {name: (e["events_written"], e["duplicates"]) for name, e in entries.items()} == {
        "a.json": (3, 0),
        "b.json": (2, 1),
    }
    assert event_ids(tmp_path / "wh") == ["e1", "e2", "e3", "e4", "e5"]
    # Read again later (touched: another version, the same content), every row is a duplicate:
    # the entries the re-run wrote account for them.
    for path in (logs / "a.json", logs / "b.json"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    touched = ingest([logs], tmp_path / "wh")
    assert (touched.records_read, touched.events_written, touched.duplicates_dropped) == (6, 0, 6)


# ---- quarantined records of an object's replaced version ------------------------------------------


def test_quarantined_records_are_those_of_each_objects_latest_version(tmp_path: Path) -> None:
    """A file rewritten with its bad record fixed and ingested again: the manifest says it
    quarantined nothing, and quarantined_records no longer lists the record either (its history
    keeps it)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    bad = {**_record("fixed-later"), "eventTime": "yesterday"}
    _write_records(logs / "a.json", _record("a1"), bad)
    _write_records(logs / "b.json", _record("b1"), {**_record("b-bad"), "eventTime": 7})
    first = ingest([logs], tmp_path / "wh")
    assert (first.records_quarantined, int(first.exit_code)) == (2, 3)
    assert [(uri, index) for uri, index, _ in quarantined(tmp_path / "wh")] == [
        ("a.json", 1),
        ("b.json", 1),
    ]
    _write_records(logs / "a.json", _record("a1"), _record("fixed-later"))
    os.utime(logs / "a.json", ns=(0, (logs / "a.json").stat().st_mtime_ns + 1_000_000_000))
    fixed = ingest([logs], tmp_path / "wh")
    assert (fixed.objects_read, fixed.records_quarantined, fixed.events_written) == (1, 0, 1)
    assert manifest(tmp_path / "wh")["a.json"]["quarantined_records"] == 0
    assert [(uri, index) for uri, index, _ in quarantined(tmp_path / "wh")] == [("b.json", 1)]
    history = rows(tmp_path / "wh", "SELECT uri FROM quarantined_records_history ORDER BY uri")
    assert [Path(r["uri"]).name for r in history] == ["a.json", "b.json"]


class _Killed(Exception):
    """Stands for a kill: the run stops where it is, with what it wrote so far on disk."""


def test_history_views_leave_out_the_rows_of_a_run_killed_before_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit writes its digests and quarantined records before its manifest entries; a run
    killed in between left them, and the re-run wrote them again, so digests_history and
    quarantined_records_history counted them twice. They hold the rows of runs whose manifest
    recorded the object: once each here, as the views without the suffix."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_records(logs / "a.json", _record("a1"))
    _write_records(logs / "b.json", _record("b1"), {**_record("b-bad"), "eventTime": 7})
    digest = (
        logs / f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/01"
        / f"{ACCOUNT}_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T100000Z.json.gz"
    )  # fmt: skip
    digest.parent.mkdir(parents=True)
    digest.write_bytes(gzip.compress(b'{"logFiles": []}'))
    warehouse = tmp_path / "wh"

    def killed(*_: Any) -> None:
        raise _Killed

    monkeypatch.setattr(pipeline.ingest.manifest, "append", killed)
    with pytest.raises(_Killed):
        ingest([logs], warehouse)
    # What the killed run left: its side-table files, and no manifest.
    assert len(list((warehouse / "quarantine").glob("*.parquet"))) == 1
    assert len(list((warehouse / "digests").glob("*.parquet"))) == 1
    assert not list((warehouse / "manifest").glob("*.parquet"))
    monkeypatch.undo()

    rerun = ingest([logs], warehouse)
    assert (rerun.records_quarantined, rerun.digests_recorded) == (1, 1)
    for view in ("quarantined_records", "digests"):
        for name in (view, f"{view}_history"):
            found = rows(warehouse, f"SELECT uri, run_id FROM {name}")
            assert [(Path(r["uri"]).name, r["run_id"]) for r in found] == [
                ("b.json" if view == "quarantined_records" else digest.name, rerun.run_id)
            ], name
