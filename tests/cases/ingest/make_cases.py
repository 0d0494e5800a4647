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
    # A SIEM export that writes responseElements (or a string inside it) as JSON text: the
    # session tokens are inside strings, at one or two levels, one with its key spelt with an
    # escape; the last line is cut inside such a token.
    def credentials(token: str, key: str = "sessionToken") -> dict[str, Any]:
        return {"credentials": {"accessKeyId": "ASIAEXAMPLE8", key: token}}

    def sts(event_id: str, second: int, response: Any) -> dict[str, Any]:
        return record(
            event_id,
            second,
            eventSource="sts.amazonaws.com",
            eventName="AssumeRole",
            responseElements=response,
        )

    escaped = json.dumps(credentials("FAKESESSIONTOKENescapedKey4")).replace(
        "sessionToken", "session\\u0054oken"
    )
    stringified = [
        sts("siem-str-1", 40, json.dumps(credentials("FAKESESSIONTOKENstringified1"))),
        sts("siem-str-2", 41, {"body": json.dumps(credentials("FAKESESSIONTOKENinBody2"))}),
        sts(
            "siem-str-3",
            42,
            json.dumps({"wrapped": json.dumps(credentials("FAKESESSIONTOKENtwice3", "SessionToken"))}),
        ),
        sts("siem-str-4", 43, escaped),
        sts("siem-str-5", 44, json.dumps({"note": "no token here"})),
    ]
    cut = json.dumps(
        sts("siem-str-cut", 45, json.dumps(credentials("FAKESESSIONTOKENcutInString6xyz"))),
        separators=(",", ":"),
    ).encode()
    out["ndjson_stringified_token.ndjson"] = ndjson(stringified) + cut[: cut.index(b"6xyz")]
    # A SIEM export that starts with a header line, which is no record.
    out["ndjson_header_line.ndjson"] = b'{"export":"siem","generated":"2024-03-02"}\n' + ndjson(
        [record("header-1", 50), record("header-2", 51)]
    )
    # Lone UTF-16 surrogate escapes (Python's json reads them; no UTF-8 text holds them), a
    # valid pair, and an escaped backslash before "udc00", which is no escape. json.dumps
    # writes a lone surrogate as its escape.
    out["lone_surrogate.json"] = document(
        [
            record("lone-ok-1", 52),
            record("lone-1", 53, userAgent="agent-\udc00", requestParameters={"k": "x\ud800y"}),
            record("lone-ok-2", 54, requestParameters={"pair": "\U0001f600", "bs": "\\udc00"}),
        ]
    )
    # The key "Records" twice: both lists are records of the object.
    first = document([record("twice-1", 55), record("twice-2", 56)])
    second = document([record("twice-3", 57)])
    out["records_key_twice.json"] = first[:-1] + b"," + second[1:]
    # A SIEM export with Latin-1 bytes (0xE9, "é") inside some records' strings, in each
    # format: in a userAgent, in a nested value, in a key. Those records alone are quarantined,
    # whether the file is read in memory or streamed (ijson stopped at the first such byte).
    latin1 = latin1_records()
    out["latin1_records.json"] = b'{"Records": [' + b", ".join(latin1) + b"]}"
    out["latin1_array.json.gz"] = gz(b"[\n" + b",\n".join(latin1) + b"\n]\n")
    out["latin1_lines.ndjson"] = b"".join(line + b"\n" for line in latin1)
    # Nesting deeper than any decoder's recursion limit.
    out["deeply_nested.json"] = (
        b'{"Records": [{"eventID": "deep-1", "eventTime": "2024-03-01T09:02:00Z", '
        b'"requestParameters": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    )
    return out


def latin1_records() -> list[bytes]:
    """Six records, as JSON text, three of which hold the byte 0xE9 (written where LATIN1 is)."""
    records = [
        record("latin1-ok-1", 20),
        record("latin1-agent", 21, userAgent="Mozilla/5.0 (Windows; caf{LATIN1})"),
        record("latin1-ok-2", 22),
        record("latin1-nested", 23, requestParameters={"bucketName": "r{LATIN1}sum{LATIN1}s"}),
        record("latin1-key", 24, **{"caf{LATIN1}Key": "value"}),
        record("latin1-ok-3", 25, userAgent="caf\u00e9 (UTF-8)"),
    ]
    return [json.dumps(r, ensure_ascii=False).encode().replace(b"{LATIN1}", b"\xe9") for r in records]


def main() -> None:
    for name, data in cases().items():
        (HERE / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
