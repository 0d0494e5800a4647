"""One record -> one typed, flattened row: types, booleans, identity columns, lossless nested
parts, redaction, and the reason of every record that cannot become a row."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from ingest_fixtures import CASES, NESTED, REDACTED, plain_records

from pipeline.parse import ObjectParser
from pipeline.parse.records import _REDACTED_JSON, _SESSION_TOKEN, redact_session_tokens

IN_MEMORY = 1 << 30
STREAMED = 16


def parse(
    name: str | Path, threshold: int = IN_MEMORY
) -> tuple[dict[str, dict[str, Any]], ObjectParser]:
    path = CASES / name
    parser = ObjectParser(str(path), "run-1", "999988887777", threshold)
    rows = [r for t in parser.tables(path) for r in t.to_pylist()]
    return {r["event_id"]: r for r in rows}, parser


def reasons(parser: ObjectParser) -> list[tuple[int, str]]:
    return [(q.index, q.reason) for q in parser.quarantined]


def test_sts_record_flattened() -> None:
    rows, parser = parse("sts_assume_role_with_token.json")
    row = rows["sts-1"]
    assert {
        k: row[k]
        for k in (
            "event_time",
            "event_time_source",
            "event_date",
            "event_version",
            "event_source",
            "event_name",
            "event_type",
            "event_category",
            "read_only",
            "management_event",
            "session_credential_from_console",
            "aws_region",
            "source_ip",
            "user_agent",
            "request_id",
            "recipient_account_id",
            "principal_type",
            "principal_id",
            "principal_arn",
            "iam_principal_arn",
            "principal_account_id",
            "access_key_id",
            "session_issuer_type",
            "session_issuer_arn",
            "session_issuer_name",
            "session_creation_date",
            "mfa_authenticated",
            "source_identity",
            "source_record_index",
            "ingest_run_id",
        )
    } == {
        "event_time": datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        "event_time_source": "eventTime",
        "event_date": date(2024, 3, 1),
        "event_version": "1.08",
        "event_source": "sts.amazonaws.com",
        "event_name": "AssumeRole",
        "event_type": "AwsApiCall",
        "event_category": "Management",
        # CloudTrail's "true"/"false" strings become booleans.
        "read_only": True,
        "management_event": False,
        "session_credential_from_console": True,
        "aws_region": "us-east-1",
        "source_ip": "192.0.2.10",
        "user_agent": "Boto3/1.34.0 md/awslabs#mcp",
        "request_id": "req-sts-1",
        "recipient_account_id": "111122223333",
        "principal_type": "AssumedRole",
        "principal_id": "AROAEXAMPLE3:agent-session",
        "principal_arn": "arn:aws:sts::111122223333:assumed-role/AgentRole/agent-session",
        # The role behind the session, with its path, from the session issuer.
        "iam_principal_arn": "arn:aws:iam::111122223333:role/agents/AgentRole",
        "principal_account_id": "111122223333",
        "access_key_id": "ASIAEXAMPLE3",
        "session_issuer_type": "Role",
        "session_issuer_arn": "arn:aws:iam::111122223333:role/agents/AgentRole",
        "session_issuer_name": "AgentRole",
        "session_creation_date": datetime(2024, 3, 1, 11, 55, tzinfo=UTC),
        "mfa_authenticated": False,
        "source_identity": "alice@example.com",
        "source_record_index": 0,
        "ingest_run_id": "run-1",
    }
    assert reasons(parser) == [(1, "readOnly is 'maybe', expected true or false")]


def test_session_token_redacted_in_row_and_in_quarantined_text() -> None:
    rows, parser = parse("sts_assume_role_with_token.json")
    original = plain_records(CASES / "sts_assume_role_with_token.json")[0]["responseElements"]
    stored = json.loads(rows["sts-1"]["response_elements"])
    expected = json.loads(json.dumps(original))
    expected["credentials"]["sessionToken"] = REDACTED
    assert stored == expected
    # The parser keeps the quarantined record as found; ingest redacts it before storing
    # (ingest_task), which the warehouse-level tests check. The function itself:
    text = redact_session_tokens(parser.quarantined[0].text)
    assert b"FAKESESSIONTOKEN" not in text
    assert json.loads(text)["responseElements"]["credentials"]["sessionToken"] == REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"sessionToken":"abc"}', b'{"sessionToken":"<redacted by agenttrail>"}'),
        (b'{"sessionToken" :  "a\\"b\\\\"}', b'{"sessionToken" :  "<redacted by agenttrail>"}'),
        (
            b'[{"sessionToken":"x"},{"sessionToken":"y"}]',
            b'[{"sessionToken":"<redacted by agenttrail>"},{"sessionToken":"<redacted by agenttrail>"}]',
        ),
        # A record cut inside the token (a truncated NDJSON line) keeps no part of it.
        (b'{"c":{"sessionToken":"FQoGZXIvYXdz', b'{"c":{"sessionToken":"<redacted by agenttrail>"'),
        (b'{"c":{"sessionToken":"FQoG\\', b'{"c":{"sessionToken":"<redacted by agenttrail>"'),
        (b'{"sessionToken":null}', b'{"sessionToken":null}'),
        (b'{"other":"sessionToken"}', b'{"other":"sessionToken"}'),
        # A key inside a value, then a real one: only the real one's value goes.
        (
            b'{"a":"\\"sessionToken\\"","sessionToken"\n:\t"s\\"t"}',
            b'{"a":"\\"sessionToken\\"","sessionToken"\n:\t"<redacted by agenttrail>"}',
        ),
        # Any letter case: "SessionToken" is as secret.
        (
            b'{"SessionToken":"abc","SESSIONTOKEN" : "d"}',
            b'{"SessionToken":"<redacted by agenttrail>","SESSIONTOKEN" : "<redacted by agenttrail>"}',
        ),
        (b'{"x":"\\u0053ession\\u0054OKEN"}', b'{"x":"\\u0053ession\\u0054OKEN"}'),
        (
            b'{"\\u0053ession\\u0054OKEN":"abc"}',
            b'{"\\u0053ession\\u0054OKEN":"<redacted by agenttrail>"}',
        ),
        # Keys spelt with escapes are the same key (no CloudTrail writer emits them).
        (
            b'{"session\\u0054oken":"abc","\\u0073ession\\u0054oken" : "d\\"e"}',
            b'{"session\\u0054oken":"<redacted by agenttrail>",'
            b'"\\u0073ession\\u0054oken" : "<redacted by agenttrail>"}',
        ),
        (b'{"x":"session\\u0054oken","y":1}', b'{"x":"session\\u0054oken","y":1}'),
        (b'{"a\\"":"session\\u0054oken"}', b'{"a\\"":"session\\u0054oken"}'),
        (
            b'{"c":{"session\\u0054oken":"FQoG',
            b'{"c":{"session\\u0054oken":"<redacted by agenttrail>"',
        ),
        # A backslash before a line break ends no JSON string: the pattern does not match.
        (b'{"sessionToken":"ab\\\ncd"}', b'{"sessionToken":"ab\\\ncd"}'),
        (
            b'{"sessionToken":"ab\\\n","sessionToken":"x"}',
            b'{"sessionToken":"ab\\\n","sessionToken":"<redacted by agenttrail>"}',
        ),
    ],
)
def test_redact_session_tokens(text: bytes, expected: bytes) -> None:
    assert redact_session_tokens(text) == expected


def test_redact_session_tokens_gives_what_the_pattern_gives() -> None:
    """redact_session_tokens skips values with bytes.find: on every short text over an alphabet
    of its hard cases it gives what _SESSION_TOKEN.sub gives."""
    pieces = [b'"', b"\\", b"\n", b" ", b":", b"a", b'"sessionToken"', b'"sessionToken":"']
    pieces += [b'\\"', b"{", b'"sessionToken" : "', b"\\\n", b'"SessionTOKEN":"']
    rng = random.Random(20260701)
    for _ in range(20_000):
        text = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        expected = _SESSION_TOKEN.sub(lambda m: m.group(1) + _REDACTED_JSON, text)
        assert redact_session_tokens(text) == expected, text


# ---- session tokens inside JSON text held by a string (SIEM exports) ---------------------------
M = b"<redacted by agenttrail>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # responseElements itself a string (one level of escaping)
        (
            b'"{\\"credentials\\":{\\"sessionToken\\":\\"IQoJ\\"}}"',
            b'"{\\"credentials\\":{\\"sessionToken\\":\\"' + M + b'\\"}}"',
        ),
        # a string inside responseElements, with spaces as json.dumps writes them
        (
            b'{"body": "{\\"sessionToken\\": \\"IQoJ\\", \\"n\\": 1}"}',
            b'{"body": "{\\"sessionToken\\": \\"' + M + b'\\", \\"n\\": 1}"}',
        ),
        # two levels, the key in another letter case
        (
            b'"{\\"w\\": \\"{\\\\\\"SessionToken\\\\\\": \\\\\\"IQoJ\\\\\\"}\\"}"',
            b'"{\\"w\\": \\"{\\\\\\"SessionToken\\\\\\": \\\\\\"' + M + b'\\\\\\"}\\"}"',
        ),
        # the inner key spelt with an escape (written escaped once more in the outer string)
        (
            b'"{\\"session\\\\u0054oken\\":\\"IQoJ\\"}"',
            b'"{\\"session\\\\u0054oken\\":\\"' + M + b'\\"}"',
        ),
        # the inner quotes written as \u0022
        (b'"{\\u0022sessionToken\\u0022:\\u0022IQoJ\\u0022}"', b'"{\\"sessionToken\\":\\"' + M + b'\\"}"'),
        # a record cut inside the inner token keeps no part of it (no closing quote either)
        (b'{"body":"{\\"sessionToken\\":\\"IQoJb3Jp', b'{"body":"{\\"sessionToken\\":\\"' + M + b'\\"'),
        (b'{"body":"{\\"sessionToken\\":\\"IQoJ\\', b'{"body":"{\\"sessionToken\\":\\"' + M + b'\\"'),
        # only the string that holds a token changes; the others stay byte for byte
        (
            b'{"a":"\\u00e9\\/","b":"{\\"sessionToken\\":\\"x\\"}","c":"\\"sessionToken\\""}',
            b'{"a":"\\u00e9\\/","b":"{\\"sessionToken\\":\\"' + M + b'\\"}","c":"\\"sessionToken\\""}',
        ),
        # other text of a rewritten string keeps its value (here spelt as JSON's shortest form)
        (
            b'"{\\"sessionToken\\":\\"x\\",\\"e\\":\\"\\\\u00e9\\\\ud83d\\\\ude00\\\\udc00\\\\n\\\\/\\"}"',
            b'"{\\"sessionToken\\":\\"' + M + b'\\",\\"e\\":\\"\\\\u00e9\\\\ud83d\\\\ude00\\\\udc00\\\\n\\\\/\\"}"',
        ),
        # a key in a string that is no JSON key (no colon after it) is left alone
        (b'{"x":"\\"sessionToken\\" is a key"}', b'{"x":"\\"sessionToken\\" is a key"}'),
        (b'{"x":"{\\"sessionToken\\":null}"}', b'{"x":"{\\"sessionToken\\":null}"}'),
    ],
)
def test_session_tokens_in_json_text_held_by_strings(text: bytes, expected: bytes) -> None:
    assert redact_session_tokens(text) == expected


def _nest(rng: random.Random, secrets: list[str], depth: int = 0) -> tuple[Any, Any]:
    """(value, the value as redaction should leave it): objects with session tokens under keys
    of any letter case, some subtrees written as JSON text inside a string, at any depth."""
    if depth > 3 or rng.random() < 0.25:
        leaf = rng.choice(["sessionToken", "x", "é😀", '"q\\', 5, None, True])
        return leaf, leaf
    value: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    for i in range(rng.randint(1, 3)):
        if rng.random() < 0.4:
            key = rng.choice(["sessionToken", "SessionToken", "SESSIONTOKEN"])
            secret = f"SECRET{len(secrets):04d}"
            secrets.append(secret)
            value[key], expected[key] = secret, REDACTED
        else:
            value[f"k{i}"], expected[f"k{i}"] = _nest(rng, secrets, depth + 1)
    if rng.random() < 0.5:  # this subtree as JSON text in a string
        ascii_only = rng.random() < 0.5
        return json.dumps(value, ensure_ascii=ascii_only), ("json", expected)
    return value, expected


def _decoded(value: Any) -> Any:
    """A value with every string that _nest stringified read back as JSON, recursively."""
    if isinstance(value, dict):
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, str) and value[:1] == "{":
        return ("json", _decoded(json.loads(value)))
    return value


def test_session_tokens_are_redacted_at_any_depth_of_json_in_strings() -> None:
    """Random objects, subtrees of which are JSON text in strings (one to four levels deep),
    written with or without escapes for non-ASCII text: every token is gone, everything else
    reads back the same."""
    rng = random.Random(20261129)
    redacted_some = 0
    for _ in range(2000):
        secrets: list[str] = []
        value, expected = _nest(rng, secrets)
        text = json.dumps({"responseElements": value}, ensure_ascii=rng.random() < 0.5).encode()
        out = redact_session_tokens(text)
        assert not any(s.encode() in out for s in secrets), text
        assert _decoded(json.loads(out)) == _decoded({"responseElements": expected}), text
        redacted_some += bool(secrets)
    assert redacted_some > 800


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_session_tokens_in_stringified_response_elements_never_reach_a_row(
    threshold: int,
) -> None:
    rows, parser = parse("ndjson_stringified_token.ndjson", threshold)
    stored = {k: v["response_elements"] for k, v in rows.items()}
    assert not any("FAKESESSIONTOKEN" in v for v in stored.values())
    redacted = {"credentials": {"accessKeyId": "ASIAEXAMPLE8", "sessionToken": REDACTED}}
    assert json.loads(json.loads(stored["siem-str-1"])) == redacted
    assert json.loads(json.loads(stored["siem-str-2"])["body"]) == redacted
    wrapped = json.loads(json.loads(json.loads(stored["siem-str-3"]))["wrapped"])
    assert wrapped == {"credentials": {"accessKeyId": "ASIAEXAMPLE8", "SessionToken": REDACTED}}
    assert json.loads(json.loads(stored["siem-str-4"])) == redacted  # the key spelt "session\u0054oken"
    assert json.loads(json.loads(stored["siem-str-5"])) == {"note": "no token here"}
    if threshold == IN_MEMORY:  # as found, but for the token
        assert stored["siem-str-1"] == (
            '"{\\"credentials\\": {\\"accessKeyId\\": \\"ASIAEXAMPLE8\\", '
            '\\"sessionToken\\": \\"<redacted by agenttrail>\\"}}"'
        )
        assert stored["siem-str-5"] == '"{\\"note\\": \\"no token here\\"}"'
    # The line cut inside its token is quarantined as found; what ingest stores of it (the
    # text redacted) holds no part of the token.
    assert [(q.index, q.reason) for q in parser.quarantined] == [
        (5, "invalid JSON line: Input data was truncated")
    ]
    text = parser.quarantined[0].text
    assert b"FAKESESSIONTOKENcutInString" in text
    stored_text = redact_session_tokens(text)
    assert b"FAKESESSIONTOKEN" not in stored_text
    assert stored_text.endswith(b'\\"sessionToken\\": \\"<redacted by agenttrail>\\"')


def test_the_fast_path_redacts_tokens_in_strings_as_the_record_path_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same records as one Records document, which the fast path takes whole (its C
    # pre-filter, token_candidates, finds the key in a string as anywhere else).
    import pipeline.parse as parse_stage
    from pipeline.parse import gather
    from pipeline.parse.fastpath import fast_table

    lines = (CASES / "ndjson_stringified_token.ndjson").read_text().splitlines()
    records = [json.loads(line) for line in lines[:-1]]  # the last line is cut short
    doc = json.dumps({"Records": records}).encode()
    fast = fast_table(doc, source_uri="u", source_sha256="", run_id="r", fallback_account=None)
    assert fast is not None
    monkeypatch.setattr(gather, "compiled", None)
    twin = fast_table(doc, source_uri="u", source_sha256="", run_id="r", fallback_account=None)
    monkeypatch.setattr(parse_stage, "fast_table", lambda *a, **k: None)
    parser = ObjectParser("u", "r")
    slow = [r for t in parser.tables(doc) for r in t.to_pylist()]
    assert twin is not None
    assert twin[0].equals(fast[0])
    assert fast[0].column("response_elements").to_pylist() == [
        r["response_elements"] for r in slow
    ]
    assert not any("FAKESESSIONTOKEN" in v for v in fast[0]["response_elements"].to_pylist())


def test_at_timestamp_used_when_event_time_is_absent_and_extra_keys_kept() -> None:
    rows, parser = parse("ndjson_with_extra_fields.ndjson")
    assert parser.quarantined == []
    assert {k: (v["event_time"], v["event_time_source"]) for k, v in rows.items()} == {
        "ndjson-1": (datetime(2024, 3, 1, 11, 0, tzinfo=UTC), "@timestamp"),
        "ndjson-2": (datetime(2024, 3, 1, 11, 0, 4, tzinfo=UTC), "eventTime"),
        "ndjson-3": (datetime(2024, 3, 1, 11, 0, 9, tzinfo=UTC), "@timestamp"),
    }
    assert json.loads(rows["ndjson-1"]["extra"]) == {
        "@timestamp": "2024-03-01T11:00:00.000Z",
        "@version": "1",
        "siem": {"index": "cloudtrail-2024.03.01", "tags": ["aws", "prod"]},
    }
    assert json.loads(rows["ndjson-2"]["extra"]) == {
        "@timestamp": "2024-03-01T11:00:05.000Z",
        "@version": "1",
    }
    # Blank lines are not records; indexes count records.
    assert [rows[i]["source_record_index"] for i in ("ndjson-1", "ndjson-2", "ndjson-3")] == [
        0,
        1,
        2,
    ]


# The streamed path once quarantined a file holding an integer beyond 64 bits (ijson's C
# backend overflowed on 12345678901234567890 in requestParameters): now read as any other.
@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_nested_parts_are_lossless(threshold: int) -> None:
    rows, _ = parse("nested_lossless.json", threshold)
    row = rows["nested-1"]
    original = plain_records(CASES / "nested_lossless.json")[0]
    for key, column in NESTED.items():
        value = original[key]
        assert (json.loads(row[column]) if row[column] is not None else None) == value, key
    assert json.loads(row["extra"]) == {
        "edgeDeviceDetails": original["edgeDeviceDetails"],
        "eventContext": original["eventContext"],
        "customUnknownKey": original["customUnknownKey"],
    }
    assert row["tls_version"] == "TLSv1.3"
    assert row["iam_principal_arn"] == "arn:aws:iam::111122223333:root"
    assert row["access_key_id"] is None  # "" in the record
    assert row["event_time"] == datetime(2024, 3, 1, 13, 0, 0, 123456, tzinfo=UTC)


def test_nested_parts_are_byte_for_byte_in_memory() -> None:
    rows, _ = parse("nested_lossless.json")
    text = rows["nested-1"]["request_parameters"]
    raw = (CASES / "nested_lossless.json").read_text()
    assert text in raw  # the exact text CloudTrail wrote, escapes and number spelling included
    assert '"n": 1.10' in text
    assert "\\u00e9" in text


def test_time_zones_become_utc() -> None:
    rows, _ = parse("period/three_days.json")
    assert {k: (v["event_time"], v["event_date"]) for k, v in rows.items()} == {
        "period-1": (datetime(2024, 3, 1, 12, 0, tzinfo=UTC), date(2024, 3, 1)),
        "period-2": (datetime(2024, 3, 2, 0, 0, tzinfo=UTC), date(2024, 3, 2)),
        "period-3": (datetime(2024, 3, 2, 23, 30, tzinfo=UTC), date(2024, 3, 2)),
        "period-4": (datetime(2024, 3, 3, 23, 59, 59, tzinfo=UTC), date(2024, 3, 3)),
    }


def test_account_falls_back_to_the_key_then_unknown(tmp_path: Path) -> None:
    path = tmp_path / "no_account.json"
    path.write_text(
        json.dumps({"Records": [{"eventID": "a", "eventTime": "2024-03-01T00:00:00Z"}]})
    )
    with_key = ObjectParser(str(path), "r", "999988887777")
    without = ObjectParser(str(path), "r", None)
    assert [r["recipient_account_id"] for t in with_key.tables(path) for r in t.to_pylist()] == [
        "999988887777"
    ]
    assert [r["recipient_account_id"] for t in without.tables(path) for r in t.to_pylist()] == [
        "unknown"
    ]


RECORD_FAULTS = {
    "records_missing_eventid.json": (
        ["missing-id-ok"],
        [(1, "record has no eventID"), (2, "record has no eventID"), (3, "record has no eventID")],
    ),
    "records_missing_eventtime.json": (
        ["missing-time-ok"],
        [
            (1, "record missing-time-1 has no eventTime"),
            (
                2,
                "record missing-time-2: eventTime '2024-03-01 16:30:02' is not an ISO 8601 time with a zone",
            ),
            (3, "record missing-time-3: eventTime 'yesterday' is not an ISO 8601 time with a zone"),
        ],
    ),
    "wrong_types.json": (
        ["wrong-ok"],
        [
            (1, "wrong type: eventTime: Expected `str | null`, got `int`"),
            (2, "wrong type: userIdentity: Expected `object | null`, got `str`"),
            (3, "readOnly is 'maybe', expected true or false"),
            (4, "wrong type: eventID: Expected `str | null`, got `int`"),
            (5, "record wrong-account: recipientAccountId '../../../outside' is not an account id"),
            (
                6,
                "wrong type: userIdentity: Expected `str | null`, got `int` - at `$.sessionContext.sourceIdentity`",
            ),
            (7, "record is not a JSON object"),
            (8, "record is not a JSON object"),
        ],
    ),
    "invalid_utf8.json": (
        ["utf8-ok"],
        [(0, "requestParameters: invalid UTF-8 (invalid continuation byte at byte 19)")],
    ),
    "invalid_utf8_in_string.json": (
        ["utf8-name-ok"],
        [(0, "eventName: invalid UTF-8 (invalid continuation byte at byte 4)")],
    ),
    "account_path_traversal.json": (
        ["acct-ok"],
        [(1, "record acct-bad: recipientAccountId '../../../outside' is not an account id")],
    ),
    "ndjson_truncated_token.ndjson": (
        ["ndjson-cut-1"],
        [(1, "invalid JSON line: Input data was truncated")],
    ),
}


@pytest.mark.parametrize("name", sorted(RECORD_FAULTS))
def test_bad_records_are_quarantined_with_their_reason(name: str) -> None:
    rows, parser = parse(name)
    expected_rows, expected_reasons = RECORD_FAULTS[name]
    assert sorted(rows) == expected_rows
    assert reasons(parser) == expected_reasons
    assert parser.records == len(expected_rows) + len(expected_reasons)


def test_wrong_ok_record_keeps_its_boolean() -> None:
    rows, _ = parse("wrong_types.json")
    assert rows["wrong-ok"]["read_only"] is False  # "FALSE"


def test_quarantined_text_is_the_record_as_found() -> None:
    _, parser = parse("records_missing_eventid.json")
    found = [json.loads(q.text) for q in parser.quarantined]
    assert found == plain_records(CASES / "records_missing_eventid.json")[1:]
