"""Container and format detection by content, in memory and streamed, on the named case files."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from ingest_fixtures import CASES

from pipeline.errors import ParseError
from pipeline.parse import ObjectParser
from pipeline.parse.formats import decompress, iter_document, iter_stream, open_stream

IN_MEMORY = 1 << 30  # stream threshold that keeps every case in memory
STREAMED = 16  # ... and one that streams every case (the parser streams above threshold / 8)


def ids(path: Path, threshold: int) -> tuple[str | None, list[str]]:
    parser = ObjectParser(str(path), "run", None, threshold)
    tables = list(parser.tables(path))
    return parser.format, [i for t in tables for i in t["event_id"].to_pylist()]


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize(
    ("name", "expected_format", "expected_ids"),
    [
        ("good_cloudtrail.json.gz", "records", ["good-1", "good-2", "good-3"]),
        ("gzip_named.json", "records", ["gzip-named-1"]),
        ("ndjson_gzipped.json.gz", "ndjson", ["ndjson-gz-1", "ndjson-gz-2"]),
        ("ndjson_with_extra_fields.ndjson", "ndjson", ["ndjson-1", "ndjson-2", "ndjson-3"]),
        ("array_of_records.json", "array", ["array-1", "array-2"]),
        ("bom_prefixed.json", "records", ["bom-1"]),
        ("ndjson_crlf_null_eventtime.ndjson", "ndjson", ["crlf-1", "crlf-2"]),
        ("sts_assume_role_with_token.json", "records", ["sts-1"]),
    ],
)
def test_format_is_detected_by_content_not_by_name(
    name: str, expected_format: str, expected_ids: list[str], threshold: int
) -> None:
    assert ids(CASES / name, threshold) == (expected_format, expected_ids)


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_single_record_without_records_list_is_one_record(threshold: int) -> None:
    # One record pretty-printed over several lines (as the console shows an event): one
    # record, not one quarantined "line" per line.
    parser = ObjectParser("x", "run", None, threshold)
    tables = list(parser.tables(CASES / "single_record_pretty.json"))
    assert [t["event_id"].to_pylist() for t in tables] == [["pretty-1"]]
    assert parser.quarantined == []


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_one_line_ndjson_without_newline(tmp_path: Path, threshold: int) -> None:
    path = tmp_path / "one.ndjson"
    record = {"eventID": "one", "eventTime": "2024-03-01T00:00:00Z", "pad": "x" * 200}
    path.write_bytes(json.dumps(record).encode())
    assert ids(path, threshold) == ("ndjson", ["one"])


FILE_FAULTS = [
    ("truncated.json.gz", "truncated gzip: the compressed stream ends early"),
    ("corrupt.json.gz", "corrupt gzip: Error -1 Invalid deflate block found"),
    ("empty.json.gz", "empty file: no records"),
    ("empty.json", "empty file: no records"),
    ("not_json.txt", "not JSON: starts with b'hello, this is n'"),
    ("no_records.json", "JSON without Records: the object has no 'Records' list"),
]


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize(("name", "message"), FILE_FAULTS)
def test_file_faults_raise_the_same_message_in_both_modes(
    name: str, message: str, threshold: int
) -> None:
    parser = ObjectParser(name, "run", None, threshold)
    with pytest.raises(ParseError) as caught:
        list(parser.tables(CASES / name))
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (
            IN_MEMORY,
            "Records is not a list: Expected `array | null`, got `object` - at `$.Records`",
        ),
        (STREAMED, "Records is not a list: it is an object"),
    ],
    ids=["in_memory", "streamed"],
)
def test_records_that_is_not_a_list(threshold: int, message: str) -> None:
    parser = ObjectParser("x", "run", None, threshold)
    with pytest.raises(ParseError) as caught:
        list(parser.tables(CASES / "records_not_list.json"))
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (IN_MEMORY, "invalid JSON: JSON is malformed: invalid character (byte 205)"),
        (STREAMED, "invalid JSON after 1 records: lexical error: invalid character inside string."),
    ],
    ids=["in_memory", "streamed"],
)
def test_invalid_json(threshold: int, message: str) -> None:
    parser = ObjectParser("x", "run", None, threshold)
    with pytest.raises(ParseError) as caught:
        list(parser.tables(CASES / "invalid_json.json"))
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (IN_MEMORY, "invalid JSON: nested too deeply"),
        (STREAMED, "invalid JSON after 0 records: nested too deeply"),
    ],
    ids=["in_memory", "streamed"],
)
def test_deep_nesting_is_a_file_fault_not_a_crash(threshold: int, message: str) -> None:
    parser = ObjectParser("x", "run", None, threshold)
    with pytest.raises(ParseError) as caught:
        list(parser.tables(CASES / "deeply_nested.json"))
    assert caught.value.message == message


def test_empty_records_list_is_not_a_fault_in_either_mode(tmp_path: Path) -> None:
    path = tmp_path / "empty_list.json"
    path.write_bytes(b'{"Records": [], "padding": "' + b"." * 200 + b'"}')
    for threshold in (IN_MEMORY, STREAMED):
        parser = ObjectParser("x", "run", None, threshold)
        assert list(parser.tables(path)) == []
        assert (parser.format, parser.records, parser.quarantined) == ("records", 0, [])


def test_decompress_by_magic_bytes_only() -> None:
    body = b'{"Records": []}'
    assert decompress(gzip.compress(body)) == body
    assert decompress(body) == body
    # Several gzip members (concatenated .gz files) are one stream.
    assert decompress(gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def test_iter_document_formats() -> None:
    record = b'{"eventID": "a", "eventTime": "2024-03-01T00:00:00Z"}'
    other = record.replace(b'"a"', b'"b"')
    cases = [
        (b'{"Records": [' + record + b"," + other + b"]}", "records"),
        (b"[" + record + b"," + other + b"]", "array"),
        (record + b"\n" + other + b"\n", "ndjson"),
        (b"  \n" + record + b"\n\n" + other, "ndjson"),
    ]
    for doc, expected in cases:
        fmt, items = iter_document(doc)
        found = [(i.index, bytes(i.record["eventID"])) for i in items if i.record is not None]
        assert (fmt, found) == (expected, [(0, b'"a"'), (1, b'"b"')]), doc


def test_stream_hashes_the_decompressed_bytes(tmp_path: Path) -> None:
    path = CASES / "good_cloudtrail.json.gz"
    stream, hashing = open_stream(str(path))
    with stream:
        fmt, items = iter_stream(stream)
        assert fmt == "records"
        assert len(list(items)) == 3
        stream.read()
    import hashlib

    assert (
        hashing.sha256.hexdigest() == hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    )
    assert hashing.size == len(gzip.decompress(path.read_bytes()))


def test_ndjson_stream_keeps_lines_byte_for_byte() -> None:
    line = b'{"eventID":"a","eventTime":"2024-03-01T00:00:00Z","requestParameters":{"n": 1.10}}'
    stream = io.BufferedReader(io.BytesIO(line + b"\n" + line.replace(b'"a"', b'"b"')))  # type: ignore[arg-type]
    fmt, items = iter_stream(stream)
    assert fmt == "ndjson"
    assert [bytes(i.record["requestParameters"]) for i in items if i.record] == [b'{"n": 1.10}'] * 2
