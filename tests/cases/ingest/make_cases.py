"""Write the binary and gzipped ingest test cases next to this script (deterministic).

    python tests/cases/ingest/make_cases.py

The plain-text cases (*.json, *.ndjson written by hand) sit beside the files written here; the
tests read both and never run this script. gzip headers carry mtime 0 and no file name, so the
same zlib writes the same bytes.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ACCOUNT = "111122223333"


def record(event_id: str, second: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": f"2024-03-01T09:00:{second:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.20",
        "userAgent": "aws-sdk-go/1.50.0",
        "recipientAccountId": ACCOUNT,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE9",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/builder",
            "accountId": ACCOUNT,
            "userName": "builder",
        },
    }
    base.update(fields)
    return base


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def document(records: list[Any]) -> bytes:
    return json.dumps({"Records": records}, separators=(",", ":")).encode()


def ndjson(records: list[Any]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)


def cases() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    # Good files, by content rather than by name.
    out["good_cloudtrail.json.gz"] = gz(document([record(f"good-{i}", i) for i in range(1, 4)]))
    out["gzip_named.json"] = gz(document([record("gzip-named-1", 10)]))
    out["ndjson_gzipped.json.gz"] = gz(
        ndjson([record("ndjson-gz-1", 11), record("ndjson-gz-2", 12)])
    )
    # A file cut short: the first half of a gzip stream.
    whole = gz(document([record(f"truncated-{i}", i) for i in range(20)]))
    out["truncated.json.gz"] = whole[: len(whole) // 2]
    # A damaged deflate stream (bytes zeroed inside the first block).
    damaged = bytearray(gz(document([record(f"corrupt-{i}", i) for i in range(20)])))
    damaged[20:30] = bytes(10)
    out["corrupt.json.gz"] = bytes(damaged)
    out["empty.json.gz"] = gz(b"")
    # One record with an invalid UTF-8 byte inside requestParameters, one good record.
    out["invalid_utf8.json"] = (
        b'{"Records": [{"eventVersion": "1.08", "eventID": "utf8-bad", '
        b'"eventTime": "2024-03-01T09:01:00Z", "recipientAccountId": "111122223333", '
        b'"requestParameters": {"bucketName": "caf\xe9"}}, '
        + json.dumps(record("utf8-ok", 1, requestParameters={"bucketName": "café"})).encode()
        + b"]}"
    )
    # A clean document but for one record's eventName, which is not UTF-8.
    out["invalid_utf8_in_string.json"] = (
        b'{"Records": [{"eventVersion": "1.08", "eventID": "utf8-name-bad", '
        b'"eventTime": "2024-03-01T09:03:00Z", "eventName": "caf\xe9", '
        b'"recipientAccountId": "111122223333"}, '
        + json.dumps(record("utf8-name-ok", 2)).encode()
        + b"]}"
    )
    # NDJSON whose last line was cut inside a session token (an export interrupted mid-write).
    token_record = record(
        "ndjson-cut-2",
        31,
        eventSource="sts.amazonaws.com",
        eventName="AssumeRole",
        responseElements={
            "credentials": {
                "accessKeyId": "ASIAEXAMPLE7",
                "sessionToken": "FAKESESSIONTOKENcutLineIQoJb3JpZ2luX2VjEJr0123456789abcdef",
            }
        },
    )
    line = json.dumps(token_record, separators=(",", ":")).encode()
    out["ndjson_truncated_token.ndjson"] = (
        ndjson([record("ndjson-cut-1", 30)]) + line[: line.index(b"IQoJb3") + 6]
    )
    # Nesting deeper than any decoder's recursion limit.
    out["deeply_nested.json"] = (
        b'{"Records": [{"eventID": "deep-1", "eventTime": "2024-03-01T09:02:00Z", '
        b'"requestParameters": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    )
    return out


def main() -> None:
    for name, data in cases().items():
        (HERE / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
