"""The fast path (one typed decode per document) gives exactly the rows of the record-by-record
path, and steps aside for every document it cannot take whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest

import pipeline.parse as parse_stage
from pipeline.parse import ObjectParser
from pipeline.parse import gather as gather_module
from pipeline.parse.fastpath import fast_table
from pipeline.parse.records import _UserIdentity, iam_principal_arn

from .test_differential import DOCS as DIFFERENTIAL_DOCS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = sorted((ROOT / "sample_logs" / "AWSLogs").rglob("*/CloudTrail/*/*/*/*/*.json.gz"))


def _tables(data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> pa.Table:
    if not fast:
        monkeypatch.setattr(parse_stage, "fast_table", lambda *a, **k: None)
    parser = ObjectParser("s3://b/k", "run")
    table = pa.concat_tables(list(parser.tables(data)))
    monkeypatch.undo()
    return table


def test_both_paths_agree_on_every_sample_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(SAMPLE_FILES) == 740
    took_fast = 0
    for path in SAMPLE_FILES:
        data = path.read_bytes()
        assert _tables(data, True, monkeypatch).equals(_tables(data, False, monkeypatch)), path
        doc = gzip.decompress(data)
        took_fast += (
            fast_table(doc, source_uri="x", source_sha256="", run_id="r", fallback_account=None)
            is not None
        )
    # Files holding AwsMcpEvent records (mcpEventDetails is a top-level key that belongs in
    # `extra`) or 1.05-era readOnly strings take the record-by-record path.
    assert took_fast == 726


def _doc(**changes: object) -> bytes:
    record: dict[str, object] = {
        "eventVersion": "1.09",
        "eventID": "e-1",
        "eventTime": "2026-07-01T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/a"},
        "readOnly": True,
    }
    record.update(changes)
    record = {k: v for k, v in record.items() if v is not None}
    return json.dumps({"Records": [record]}).encode()


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        ("unknown top-level key", _doc(edgeDeviceDetails={"x": 1})),
        ("no eventID", _doc(eventID=None)),
        ("no zone in eventTime", _doc(eventTime="2026-07-01T10:00:00")),
        ("readOnly as a string", _doc(readOnly="true")),
        ("userIdentity of the wrong type", _doc(userIdentity="root")),
        ("empty Records", b'{"Records": []}'),
    ],
)
def test_fast_path_steps_aside(name: str, doc: bytes) -> None:
    assert (
        fast_table(doc, source_uri="x", source_sha256="", run_id="r", fallback_account=None) is None
    ), name


def test_fast_path_takes_a_clean_document() -> None:
    result = fast_table(_doc(), source_uri="x", source_sha256="h", run_id="r", fallback_account="9")
    assert result is not None
    table, records = result
    assert records == 1
    row = table.to_pylist()[0]
    assert (row["event_id"], row["recipient_account_id"], row["read_only"]) == ("e-1", "9", True)
    assert row["iam_principal_arn"] == "arn:aws:iam::111111111111:user/a"


@pytest.mark.parametrize("fast", [True, False])
def test_identity_provider_of_web_identity_and_saml_principals(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    saml = "arn:aws:iam::111111111111:saml-provider/Okta"
    identities = [
        {
            "type": "SAMLUser",
            "principalId": "x:alice",
            "userName": "alice",
            "identityProvider": saml,
        },
        {"type": "WebIdentityUser", "userName": "sub", "identityProvider": "accounts.google.com"},
        {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/a"},
    ]
    records = [
        json.loads(_doc(eventID=f"e-{i}", userIdentity=u))["Records"][0]
        for i, u in enumerate(identities)
    ]
    table = _tables(json.dumps({"Records": records}).encode(), fast, monkeypatch)
    assert table.column("identity_provider").to_pylist() == [saml, "accounts.google.com", None]


@pytest.mark.parametrize("fast", [True, False])
def test_assumed_root_of_short_term_root_sessions(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sessionContext.assumedRoot as a flag; an empty or odd value refuses no record (public
    records carry it as "")."""
    root = {"type": "Root", "arn": "arn:aws:iam::111111111111:root", "accountId": "111111111111"}
    values: list[object] = ["true", "TRUE", True, "false", "", "yes", None]
    identities = [
        {**root, "sessionContext": {"assumedRoot": v}} if v is not None else root for v in values
    ]
    records = [
        json.loads(_doc(eventID=f"e-{i}", userIdentity=u))["Records"][0]
        for i, u in enumerate(identities)
    ]
    table = _tables(json.dumps({"Records": records}).encode(), fast, monkeypatch)
    assert table.column("assumed_root").to_pylist() == [True, True, True, False, None, None, None]
    absent = _tables(_doc(), fast, monkeypatch)
    assert absent.column("assumed_root").to_pylist() == [None]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("value", [1, 0.5, {}, ["true"]])
def test_assumed_root_of_another_json_type_refuses_no_record(
    fast: bool, value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sessionContext.assumedRoot that is no string or boolean reads as NULL: the record is
    kept (it was, before the column existed), not refused over a field no rule needs."""
    root = {
        "type": "Root",
        "arn": "arn:aws:iam::111111111111:root",
        "accountId": "111111111111",
        "sessionContext": {"assumedRoot": value},
    }
    table = _tables(_doc(eventID="e-odd", userIdentity=root), fast, monkeypatch)
    assert table.column("event_id").to_pylist() == ["e-odd"]
    assert table.column("assumed_root").to_pylist() == [None]


@pytest.mark.parametrize("fast", [True, False])
def test_an_empty_error_code_is_no_error(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """errorCode "" (as some exports write it for a call that succeeded) is stored as NULL, so
    no failure count and no rule reads it as a failed call."""
    records = [
        json.loads(_doc(eventID=f"e-{i}", errorCode=v))["Records"][0]
        for i, v in enumerate(["", "AccessDenied", None])
    ]
    table = _tables(json.dumps({"Records": records}).encode(), fast, monkeypatch)
    assert table.column("error_code").to_pylist() == [None, "AccessDenied", None]


def test_rows_leave_in_record_order_with_their_record_index() -> None:
    # Out of time order, as CloudTrail's objects often are: staging sorts where it pays.
    records = [
        json.loads(_doc(eventID=e, eventTime=t))["Records"][0]
        for e, t in [
            ("late", "2026-07-01T10:05:00Z"),
            ("early", "2026-07-01T09:00:00Z"),
            ("tie-first", "2026-07-01T10:00:00Z"),
            ("tie-second", "2026-07-01T10:00:00Z"),
        ]
    ]
    doc = json.dumps({"Records": records}).encode()
    result = fast_table(doc, source_uri="x", source_sha256="h", run_id="r", fallback_account="9")
    assert result is not None
    rows = result[0].select(["event_id", "source_record_index"]).to_pylist()
    assert [(r["event_id"], r["source_record_index"]) for r in rows] == [
        ("late", 0),
        ("early", 1),
        ("tie-first", 2),
        ("tie-second", 3),
    ]


def test_session_tokens_redacted_in_each_record_that_holds_one() -> None:
    credentials = {"credentials": {"accessKeyId": "ASIA1", "sessionToken": "secret-1"}}
    two = {"a": {"sessionToken": "secret-2"}, "b": [{"sessionToken": "secret-3"}]}
    records = [
        json.loads(_doc(eventID=f"e-{i}", responseElements=r))["Records"][0]
        for i, r in enumerate([credentials, {"note": "no token"}, two, None])
    ]
    doc = json.dumps({"Records": records}, separators=(",", ":")).encode()
    result = fast_table(doc, source_uri="x", source_sha256="h", run_id="r", fallback_account="9")
    assert result is not None
    redacted = '"<redacted by agenttrail>"'
    assert result[0]["response_elements"].to_pylist() == [
        '{"credentials":{"accessKeyId":"ASIA1","sessionToken":' + redacted + "}}",
        '{"note":"no token"}',
        '{"a":{"sessionToken":' + redacted + '},"b":[{"sessionToken":' + redacted + "}]}",
        None,
    ]


@pytest.mark.skipif(gather_module.compiled is None, reason="_columns.c is not built here")
def test_compiled_and_python_builders_give_the_same_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [gzip.decompress(path.read_bytes()) for path in SAMPLE_FILES]
    docs += [data for _, data in DIFFERENTIAL_DOCS]

    def tables() -> list[pa.Table | None]:
        out = []
        for doc in docs:
            found = fast_table(doc, source_uri="u", source_sha256="h", run_id="r",
                               fallback_account="9")  # fmt: skip
            out.append(None if found is None else found[0])
        return out

    compiled = tables()
    monkeypatch.setattr(gather_module, "compiled", None)
    python = tables()
    assert [t is None for t in compiled] == [t is None for t in python]
    assert sum(t is not None for t in compiled) == 726 + 14
    for left, right in zip(compiled, python, strict=True):
        assert left is None or right is None or left.equals(right)


def test_iam_principal_arn_of_every_identity_shape() -> None:
    """The fast path's vectorised iam_principal_arn gives what records.iam_principal_arn gives,
    for every type with and without (empty) ARNs and session issuers."""
    identities: list[dict[str, object] | None] = [None]
    for kind in ("AssumedRole", "FederatedUser", "IAMUser", "Root", "AWSService", None):
        for arn in ("arn:aws:iam::1:user/u", "", None):
            for issuer in ({"arn": "arn:aws:iam::1:role/p/r"}, {"arn": ""}, {}, None):
                identity: dict[str, object] = {"type": kind, "arn": arn}
                if issuer is not None:
                    identity["sessionContext"] = {"sessionIssuer": issuer}
                identities.append({k: v for k, v in identity.items() if v is not None})
    records = [
        {"eventID": f"e-{i}", "eventTime": "2026-07-01T10:00:00Z", "userIdentity": u}
        for i, u in enumerate(identities)
    ]
    doc = json.dumps({"Records": records}).encode()
    fast = fast_table(doc, source_uri="u", source_sha256="h", run_id="r", fallback_account="1")
    assert fast is not None
    decode = msgspec.json.Decoder(_UserIdentity | None)
    expected = [
        iam_principal_arn(u) if u else None
        for u in (decode.decode(json.dumps(i)) for i in identities)
    ]
    assert fast[0]["iam_principal_arn"].to_pylist() == expected
    assert (len(expected), expected.count(None)) == (73, 59)  # both outcomes are covered


# One record's text with a byte that is not UTF-8 (0xE9, Latin-1 "é") in a value the fast path
# reads on its own: with the offset RowBuilder names, from the value's first byte.
NOT_UTF8_VALUES = [
    pytest.param("responseElements", b'"responseElements": {"x": "caf\xe9"}', 10, id="response"),
    # Inside a sessionToken, which redaction replaces: checked before it.
    pytest.param(
        "responseElements",
        b'"responseElements": {"credentials": {"sessionToken": "IQo\xe9b3"}}',
        37,
        id="sessionToken",
    ),
    pytest.param(
        "userIdentity",
        b'"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/caf\xe9"}',
        51,
        id="arn",
    ),
    pytest.param(
        "userIdentity",
        b'"userIdentity": {"type": "AssumedRole", "sessionContext": {"sourceIdentity": "caf\xe9"}}',
        65,
        id="sourceIdentity",
    ),
    pytest.param(
        "userIdentity",
        b'"userIdentity": {"type": "IdentityCenterUser", "onBehalfOf": {"userId": "caf\xe9"}}',
        60,
        id="onBehalfOf",
    ),
    pytest.param("tlsDetails", b'"tlsDetails": {"tlsVersion": "TLSv1.\xe9"}', 22, id="tlsVersion"),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast_path", "record_by_record"])
@pytest.mark.parametrize(("key", "value", "offset"), NOT_UTF8_VALUES)
def test_a_value_not_utf8_quarantines_its_record_alone_on_both_paths(
    key: str, value: bytes, offset: int, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path wrote such a responseElements (a Parquet file no reader could read then),
    # and a userIdentity or tlsDetails one raised out of the parser (the object quarantined).
    time = b'"eventTime": "2026-07-01T10:00:00Z"'
    records = [
        b'{"eventID": "e-0", ' + time + b"}",
        b'{"eventID": "e-1", ' + time + b", " + value + b"}",
        b'{"eventID": "e-2", ' + time + b', "userAgent": "caf\xc3\xa9"}',  # UTF-8: not ASCII
    ]
    doc = b'{"Records": [' + b", ".join(records) + b"]}"
    assert (
        fast_table(doc, source_uri="x", source_sha256="", run_id="r", fallback_account=None) is None
    )
    if not fast:
        monkeypatch.setattr(parse_stage, "fast_table", lambda *a, **k: None)
    parser = ObjectParser("s3://b/k", "run")
    table = pa.concat_tables(list(parser.tables(doc)))
    table.validate(full=True)  # every text column UTF-8
    assert table["event_id"].to_pylist() == ["e-0", "e-2"]
    assert [(q.index, q.reason) for q in parser.quarantined] == [
        (1, f"{key}: invalid UTF-8 (invalid continuation byte at byte {offset})")
    ]
