"""Seeded random documents, hard on the parser (escapes, non-ASCII text, big and odd numbers,
string flags, unknown keys, session tokens, bad records among good ones), read three ways: the
fast path, the record-by-record path and the streaming path. All three must agree, and every
kept row must give back its record's values as plain `json` reads them: nothing lost, nothing
changed but the redacted session tokens."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from ingest_fixtures import FLAGS, NESTED, SCALARS

import pipeline.parse as parse_stage
from pipeline.parse import ObjectParser
from pipeline.parse.fastpath import fast_table

SEED = 20261128
DOCUMENTS = 40
MARKER = "<redacted by agenttrail>"

# Top-level keys the parser types itself (eventID, eventTime, recipientAccountId are checked
# on their own in _check_row).
STRING_KEYS = {k: v for k, v in SCALARS.items() if k not in ("eventID", "recipientAccountId")}
FLAG_KEYS = FLAGS
JSON_KEYS = NESTED
KNOWN = {"eventID", "eventTime", "recipientAccountId", *STRING_KEYS, *FLAG_KEYS, *JSON_KEYS}
PIECES = [
    "a", "Z", "0", " ", "é", "中", "😀", "\u2028", '"', "\\", "/", "\n", "\t", "\x01",
    "sessionToken", "{", "}", "[", "]", ":", ",", "\\u0041", "null", "true",
]  # fmt: skip


def _text(rng: random.Random, most: int = 12) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, most)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 7, 2**53 + 1, 2**70, -(2**64)])
    if kind == 3:
        return rng.choice([1.5, -0.0, 1e-7, 6.02e23, 0.1 + 0.2])
    if kind in (4, 5):
        return _text(rng)
    if kind in (6, 7):
        return {_text(rng, 4) or "k": _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _token(rng: random.Random) -> str:
    return "IQoJb3JpZ2luX2Vj" + "".join(rng.choice('AZaz09+/=\\"é') for _ in range(40))


def _identity(rng: random.Random) -> Any:
    kind = rng.randrange(5)
    if kind == 0:
        return None
    if kind == 1:
        return {"type": "AWSService", "invokedBy": rng.choice(["ec2.amazonaws.com", _text(rng)])}
    if kind == 2:
        return {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::111122223333:user/{_text(rng, 4)}",
            "accessKeyId": rng.choice(["", "AKIAEXAMPLE", None]),
            "userName": _text(rng, 5),
        }
    return {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:" + _text(rng, 4),
        "arn": "arn:aws:sts::111122223333:assumed-role/R/" + _text(rng, 4),
        "accessKeyId": "ASIA" + str(rng.randrange(10**6)),
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": "arn:aws:iam::111122223333:role/path/R",
                "userName": "R",
            },
            "attributes": {
                "creationDate": rng.choice(["2026-07-01T09:00:00Z", "not a time", None]),
                "mfaAuthenticated": rng.choice(["false", "TRUE", False, None]),
            },
            "sourceIdentity": rng.choice([None, _text(rng, 5)]),
            "extraContext": _value(rng, 1),
        },
    }


def _record(rng: random.Random, n: int, *, clean: bool) -> dict[str, Any]:
    """A random record; a `clean` one has nothing that keeps the fast path off its document
    (unknown top-level keys, string flags, faults)."""
    record: dict[str, Any] = {
        "eventVersion": rng.choice(["1.05", "1.08", "1.11"]),
        "eventID": f"e-{n}-{_text(rng, 3)}",
        "eventTime": rng.choice(
            [
                f"2026-07-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                f"2026-07-01T10:00:{n % 60:02d}.123Z",
                "2026-07-01T23:30:00-05:00",
                "2026-07-02T01:00:00+05:30",
            ]
        ),
        "recipientAccountId": rng.choice(["111122223333", "444455556666"]),
    }
    for key in STRING_KEYS:
        if rng.random() < 0.5:
            record[key] = rng.choice([_text(rng), None])
    for key in FLAG_KEYS:
        if rng.random() < 0.5:
            record[key] = rng.choice([True, False, None] if clean else [True, "true", "False"])
    for key in JSON_KEYS:
        if rng.random() < 0.5:
            record[key] = _value(rng)
    record["userIdentity"] = _identity(rng)
    if rng.random() < 0.3:
        key = rng.choice(["sessionToken", "sessionToken", "SessionToken"])  # any letter case
        credentials = {"accessKeyId": "ASIA1", key: _token(rng), "x": _value(rng)}
        record["responseElements"] = {"credentials": credentials, "other": _value(rng)}
    if clean:
        if "tlsDetails" in record:  # the fast path reads tlsVersion: an object or null
            record["tlsDetails"] = rng.choice([None, {"tlsVersion": _text(rng, 3), "x": 1}])
        return record
    if rng.random() < 0.2:
        record[rng.choice(["edgeDeviceDetails", "insightDetails", _text(rng, 4) or "k"])] = _value(
            rng
        )
    if rng.random() < 0.1:  # a record the parser must quarantine, alone
        fault = rng.randrange(4)
        if fault == 0:
            del record["eventID"]
        elif fault == 1:
            record["eventName"] = 5
        elif fault == 2:
            record["eventTime"] = "2026-07-01T10:00:00"
        else:
            record["readOnly"] = "yes"
    return record


def _documents() -> list[tuple[list[dict[str, Any]], bytes]]:
    rng = random.Random(SEED)
    docs = []
    for d in range(DOCUMENTS):
        clean = d % 3 == 0
        records = [_record(rng, d * 100 + i, clean=clean) for i in range(rng.randint(1, 25))]
        data = json.dumps({"Records": records}, ensure_ascii=rng.random() < 0.5).encode()
        if d % 4 == 1:  # keys (and texts) spelt with an escape: the same JSON values
            data = data.replace(b"sessionToken", b"\\u0073essionToken")
        docs.append((records, data))
    return docs


DOCS = _documents()


def _read(
    data: bytes, *, fast: bool, stream_file: Path | None, monkeypatch: pytest.MonkeyPatch
) -> tuple[pa.Table | None, list[tuple[int, str]]]:
    if not fast:
        monkeypatch.setattr(parse_stage, "fast_table", lambda *a, **k: None)
    if stream_file is None:
        parser = ObjectParser("s3://b/k", "run")
        tables = list(parser.tables(data))
    else:
        stream_file.write_bytes(gzip.compress(data))
        parser = ObjectParser("s3://b/k", "run", stream_threshold_bytes=0)
        tables = list(parser.tables(stream_file))
    monkeypatch.undo()
    return pa.concat_tables(tables) if tables else None, [
        (q.index, q.reason) for q in parser.quarantined
    ]


def _expected_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MARKER if k.lower() == "sessiontoken" and isinstance(v, str) else _redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _check_row(record: dict[str, Any], row: dict[str, Any]) -> None:
    assert row["event_id"] == record["eventID"]
    assert row["event_time"] == _expected_time(record["eventTime"])
    assert row["recipient_account_id"] == record["recipientAccountId"]
    for key, column in STRING_KEYS.items():
        # An empty errorCode is no error: NULL, as an absent one.
        expected = (record.get(key) or None) if key == "errorCode" else record.get(key)
        assert row[column] == expected, key
    for key, column in FLAG_KEYS.items():
        value = record.get(key)
        assert row[column] == (value.lower() == "true" if isinstance(value, str) else value), key
    for key, column in JSON_KEYS.items():
        value = record.get(key)
        if key == "responseElements":
            value = _redacted(value)
        stored = row[column]
        assert (None if stored is None else json.loads(stored)) == value, key
    unknown = {k: v for k, v in record.items() if k not in KNOWN}
    assert (json.loads(row["extra"]) if row["extra"] else None) == (unknown or None)
    identity = record.get("userIdentity") or {}
    assert row["principal_type"] == identity.get("type")
    assert row["principal_arn"] == identity.get("arn")
    assert row["access_key_id"] == (identity.get("accessKeyId") or None)
    assert row["invoked_by"] == identity.get("invokedBy")


@pytest.mark.parametrize("number", range(DOCUMENTS))
def test_three_paths_agree_and_keep_every_value(
    number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records, data = DOCS[number]
    by_record, quarantined = _read(data, fast=False, stream_file=None, monkeypatch=monkeypatch)
    streamed, stream_quarantined = _read(
        data, fast=False, stream_file=tmp_path / "doc.json.gz", monkeypatch=monkeypatch
    )
    assert stream_quarantined == quarantined
    # Streaming re-serialises nested parts (ijson); the values are compared below.
    if by_record is None or streamed is None:  # every record of the document was bad
        assert by_record is streamed is None
        assert len(quarantined) == len(records)
        return
    assert streamed.drop_columns(_JSON_COLUMNS).equals(by_record.drop_columns(_JSON_COLUMNS))
    fast = fast_table(data, source_uri="s3://b/k", source_sha256="", run_id="run",
                      fallback_account=None)  # fmt: skip
    if fast is not None:
        assert not quarantined
        assert (
            fast[0]
            .drop_columns(["source_sha256"])
            .equals(by_record.drop_columns(["source_sha256"]))
        )
    kept = {r["eventID"]: r for i, r in enumerate(records) if i not in dict(quarantined)}
    for table in (by_record, streamed):
        rows = table.to_pylist()
        assert sorted(r["event_id"] for r in rows) == sorted(kept)
        for row in rows:
            _check_row(kept[row["event_id"]], row)
            for value in row.values():
                assert not (isinstance(value, str) and "IQoJb3JpZ2luX2Vj" in value), row


_JSON_COLUMNS = [*JSON_KEYS.values(), "extra"]


def test_the_documents_cover_every_path() -> None:
    """The seed gives documents the fast path takes (every clean one), documents it leaves, and
    bad records among good ones."""
    took_fast = [
        n
        for n, (_, d) in enumerate(DOCS)
        if fast_table(d, source_uri="x", source_sha256="", run_id="r", fallback_account=None)
        is not None
    ]
    assert took_fast == list(range(0, DOCUMENTS, 3))
    bad = [
        r
        for records, _ in DOCS
        for r in records
        if "eventID" not in r
        or r.get("eventName") == 5
        or r.get("readOnly") == "yes"
        or r["eventTime"] == "2026-07-01T10:00:00"
    ]
    assert (len(bad), sum(len(records) for records, _ in DOCS)) == (29, 535)
