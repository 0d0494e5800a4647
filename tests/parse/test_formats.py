"""Container and format detection by content, in memory and streamed, on the named case files."""

from __future__ import annotations

import gzip
import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ingest_fixtures import CASES

from pipeline.errors import ParseError
from pipeline.parse import ObjectParser, in_memory, streaming
from pipeline.parse.fastpath import fast_table
from pipeline.parse.in_memory import decompress, iter_document
from pipeline.parse.streaming import iter_stream, open_stream
from pipeline.parse.text_faults import fix_lone_surrogates

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


def _nested(container: str, depth: int) -> bytes:
    """A document whose deepest point is `depth` levels down (the containers around the deep
    record's requestParameters count), with a record before the deep one where it can."""
    first = b'{"eventID": "first", "eventTime": "2024-03-01T09:01:00Z"}, '
    head = b'{"eventID": "deep",\n "eventTime": "2024-03-01T09:02:00Z",\n "requestParameters": '
    around = {"records": 3, "array": 2, "single": 1}[container]
    record = head + b"[" * (depth - around) + b"]" * (depth - around) + b"}"
    if container == "records":
        return b'{"Records": [' + first + record + b"]}"
    if container == "array":
        return b"[" + first + record + b"]"
    return record  # one record, pretty-printed


@pytest.mark.parametrize(
    ("container", "records_before"), [("records", 1), ("array", 1), ("single", 0)]
)
def test_a_streamed_document_stops_just_past_the_deepest_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, container: str, records_before: int
) -> None:
    # ijson has no limit of its own (msgspec stops at Python's recursion limit, far above the
    # one set here): the guard's is the one seen, to the level.
    monkeypatch.setattr(streaming, "MAX_DEPTH", 40)
    path = tmp_path / "deep.json"
    path.write_bytes(_nested(container, 40))
    parser = ObjectParser("x", "run", None, STREAMED)
    assert sum(t.num_rows for t in parser.tables(path)) == records_before + 1
    assert parser.quarantined == []
    path.write_bytes(_nested(container, 41))
    with pytest.raises(ParseError) as caught:
        list(ObjectParser("x", "run", None, STREAMED).tables(path))
    assert caught.value.message == (
        f"invalid JSON after {records_before} records: nested too deeply"
    )


def test_a_deeply_nested_streamed_document_is_refused_with_little_memory() -> None:
    # 5,000 levels: ijson's item took 65 MB (4 GB at 40,000 levels), the guard stops at 1,000.
    tracemalloc.start()
    try:
        parser = ObjectParser("x", "run", None, STREAMED)
        with pytest.raises(ParseError, match="nested too deeply"):
            list(parser.tables(CASES / "deeply_nested.json"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20


def _depth_cut(text: bytes, limit: int) -> int | None:
    """Where the text first nests deeper than `limit` (outside strings), byte by byte."""
    depth, in_string, escaped = 0, False, False
    for at, byte in enumerate(text):
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = byte == 0x5C, byte != 0x22
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            if depth > limit:
                return at
        elif byte in b"]}":
            depth -= 1
    return None


def test_the_depth_guard_counts_as_a_byte_by_byte_reading_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Brackets, quotes and backslashes in strings, chunks cut anywhere (inside an escape, a
    run of backslashes, a string), the fast count and the exact scan: the guard gives the bytes
    before the first bracket past the limit, then raises, and otherwise every byte."""
    rng = random.Random(20261129)
    pieces = ["a", '"', "\\", "[", "]", "{", "}", "é", "\\u0041", "x" * 30]

    def text() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))

    def value(depth: int, deepest: int) -> Any:
        kind = rng.randrange(6 if depth < deepest else 2)
        if kind < 2:
            return rng.choice([text(), 1, None])
        if kind < 4:
            return {text(): value(depth + 1, deepest) for _ in range(rng.randint(0, 2))}
        return [value(depth + 1, deepest) for _ in range(rng.randint(1, 3))]

    stopped = 0
    for _ in range(1500):
        limit = rng.randint(1, 5)
        monkeypatch.setattr(streaming, "MAX_DEPTH", limit)
        monkeypatch.setattr(streaming, "_PASSES", rng.choice([0, 1, 64]))
        doc = json.dumps(value(0, rng.randint(1, 16)), ensure_ascii=rng.random() < 0.5).encode()
        guard = streaming.DepthGuard(_Trickle(doc, rng.randint(1, 40)))  # type: ignore[arg-type]
        read = b""
        try:
            while chunk := guard.read(rng.choice([7, 64, 1 << 16])):
                read += chunk
        except streaming.TooDeep:
            cut = _depth_cut(doc, limit)
            assert cut is not None, doc
            assert read == doc[:cut], doc
            stopped += 1
        else:
            assert _depth_cut(doc, limit) is None, doc
            assert read == doc, doc
    assert 300 < stopped < 1200  # both outcomes are covered


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


# ---- lone surrogate escapes ------------------------------------------------------------------
def _rows(
    path: Path, threshold: int, columns: list[str]
) -> tuple[ObjectParser, list[dict[str, Any]]]:
    parser = ObjectParser(str(path), "run", None, threshold)
    tables = list(parser.tables(path))
    return parser, [r for t in tables for r in t.select(columns).to_pylist()]


def _containers(tmp_path: Path, name: str) -> list[Path]:
    """The case's records as a Records document (the case), an array and NDJSON."""
    records = json.loads((CASES / name).read_bytes())["Records"]
    array, lines = tmp_path / "array.json", tmp_path / "lines.ndjson"
    array.write_text(json.dumps(records))
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    return [CASES / name, array, lines]


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize("container", ["records", "array", "ndjson"])
def test_a_lone_surrogate_escape_is_read_as_the_replacement_character(
    tmp_path: Path, threshold: int, container: str
) -> None:
    # Python's json reads "\udc00" (msgspec and yajl refuse it, which quarantined the whole
    # object, or crashed the streamed read): the record is kept, the escape read as U+FFFD.
    paths = _containers(tmp_path, "lone_surrogate.json")
    path = dict(zip(["records", "array", "ndjson"], paths, strict=True))[container]
    parser, rows = _rows(path, threshold, ["event_id", "user_agent", "request_parameters"])
    assert parser.quarantined == []
    assert [(r["event_id"], r["user_agent"]) for r in rows] == [
        ("lone-ok-1", "aws-sdk-go/1.50.0"),
        ("lone-1", "agent-\ufffd"),
        ("lone-ok-2", "aws-sdk-go/1.50.0"),
    ]
    parameters = [r["request_parameters"] and json.loads(r["request_parameters"]) for r in rows]
    assert parameters == [None, {"k": "x\ufffdy"}, {"pair": "\U0001f600", "bs": "\\udc00"}]
    if threshold == IN_MEMORY and container == "records":  # the text as found, but the escape
        assert rows[1]["request_parameters"] == '{"k":"x\\ufffdy"}'


def _json_reference(content: bytes) -> str:
    """What fix_lone_surrogates promises: the string as Python's json reads it, with each
    lone surrogate as U+FFFD."""
    text: str = json.loads(b'"' + content + b'"')
    out, i = [], 0
    while i < len(text):
        c = text[i]
        pair = "\ud800" <= c <= "\udbff" and i + 1 < len(text) and "\udc00" <= text[i + 1] <= "\udfff"
        if pair:
            out.append(c + text[i + 1])
            i += 2
            continue
        out.append("\ufffd" if "\ud800" <= c <= "\udfff" else c)
        i += 1
    return "".join(out)


SURROGATE_PIECES = [
    b"a", b"\\\\", b"\\ud800", b"\\uDBFF", b"\\udc00", b"\\uDFFF", b"\\ud83d\\ude00", b"\\u0041",
    b"\\ud7ff", b"\\ue000", b"\\\\ud800", b"\\n", b'\\"', b"\xc3\xa9", b"d800",
]  # fmt: skip


def test_fix_lone_surrogates_reads_strings_as_json_does_with_replacement() -> None:
    rng = random.Random(20261129)
    for _ in range(5000):
        content = b"".join(rng.choice(SURROGATE_PIECES) for _ in range(rng.randint(0, 10)))
        fixed = fix_lone_surrogates(content)
        assert json.loads(b'"' + fixed + b'"') == _json_reference(content), content
        assert msgspec.json.decode(b'"' + fixed + b'"') == _json_reference(content), content
        if fixed != content:
            assert b"\\ufffd" in fixed
        else:
            assert fixed is content  # nothing copied in the common case
    assert fix_lone_surrogates(b'"\\udc00 \\\\udc00 \\ud800\\udc00"') == (
        b'"\\ufffd \\\\udc00 \\ud800\\udc00"'
    )


class _Trickle(io.RawIOBase):
    """A raw stream that gives at most `step` bytes per read."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._at = data, step, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data) - self._at)
        buffer[:n] = self._data[self._at : self._at + n]
        self._at += n
        return n


def test_surrogate_fixer_gives_what_fixing_the_whole_text_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read in chunks (made 37 bytes here), an escape or a run of backslashes may fall across
    two of them: the stream must still read each as the whole text reads it."""
    monkeypatch.setattr(streaming, "_FIX_CHUNK", 37)
    rng = random.Random(11)
    for _ in range(5000):
        text = b"".join(rng.choice(SURROGATE_PIECES) for _ in range(rng.randint(0, 40)))
        fixer = streaming.SurrogateFixer(_Trickle(text, rng.randint(1, 50)))  # type: ignore[arg-type]
        stream = io.BufferedReader(fixer, buffer_size=rng.randint(1, 64))
        assert stream.read() == fix_lone_surrogates(text), text


# ---- NDJSON whose first line is no record ------------------------------------------------------
@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_an_ndjson_header_line_is_quarantined_alone_in_both_modes(threshold: int) -> None:
    # Streamed, such a file was read as one Records document ("trailing garbage") and
    # quarantined whole.
    path = CASES / "ndjson_header_line.ndjson"
    parser, rows = _rows(path, threshold, ["event_id", "source_record_index"])
    assert parser.format == "ndjson"
    assert rows == [
        {"event_id": "header-1", "source_record_index": 1},
        {"event_id": "header-2", "source_record_index": 2},
    ]
    assert [(q.index, q.reason, q.text) for q in parser.quarantined] == [
        (0, "record has no eventID", b'{"export":"siem","generated":"2024-03-02"}')
    ]


def test_a_large_ndjson_export_with_a_header_line_is_streamed_line_by_line(tmp_path: Path) -> None:
    # Above the streaming threshold (stream_threshold_mb / 8), as the export that was lost.
    path = tmp_path / "export.ndjson"
    header = (CASES / "ndjson_header_line.ndjson").read_bytes().split(b"\n", 1)[0]
    line = json.dumps({"eventID": "x", "eventTime": "2024-03-01T00:00:00Z", "pad": "p" * 900})
    with path.open("wb") as out:
        out.write(header + b"\n")
        for i in range(3000):
            out.write(line.replace('"x"', f'"big-{i}"').encode() + b"\n")
    assert path.stat().st_size > (16 << 20) // 8
    parser = ObjectParser(str(path), "run", None, 16 << 20)
    ids = [i for t in parser.tables(path) for i in t["event_id"].to_pylist()]
    assert ids == [f"big-{i}" for i in range(3000)]
    assert (parser.format, parser.records) == ("ndjson", 3001)
    assert [(q.index, q.reason) for q in parser.quarantined] == [(0, "record has no eventID")]


# ---- a first line longer than the streamed head ----------------------------------------------
def _line(event_id: str, pad: int = 0) -> bytes:
    record = {"eventID": event_id, "eventTime": "2024-03-01T00:00:00Z", "pad": "p" * pad}
    return json.dumps(record).encode()


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_ndjson_whose_first_line_is_over_a_megabyte(tmp_path: Path, threshold: int) -> None:
    # Streamed, the format was told from the first megabyte, which held no line break: such
    # a file was read as one Records document ("trailing garbage") and quarantined whole.
    path = tmp_path / "export.ndjson"
    path.write_bytes(b"\n".join([_line("long", 1_100_000), _line("s-1"), _line("s-2"), b""]))
    assert ids(path, threshold) == ("ndjson", ["long", "s-1", "s-2"])


HEAD = 64  # the streamed head in the tests below: every first line runs past it
LONG_FIRST_LINES = [
    pytest.param(
        _line("long", 200) + b"\n" + _line("s-1") + b"\n",
        ("ndjson", ["long", "s-1"], []),
        id="record",
    ),
    pytest.param(
        b'{"export": "siem", "pad": "' + b"h" * 200 + b'"}\n' + _line("s-1"),
        ("ndjson", ["s-1"], [(0, "record has no eventID")]),
        id="header_line",
    ),
    pytest.param(
        b"\xef\xbb\xbf \n\r\n" + _line("long", 200) + b"\n" + b" " * 200 + b"\n" + _line("s-1"),
        ("ndjson", ["long", "s-1"], []),
        id="bom_and_blank_lines",
    ),
    pytest.param(
        _line("short") + b"\n" + b" \n" * 200 + _line("s-1") + b"\n",
        ("ndjson", ["short", "s-1"], []),
        id="blank_lines_past_the_head",
    ),
    # A long first line that is no whole object: a Records document, read from its start.
    pytest.param(
        b'{"Records": [' + _line("long", 200) + b",\n" + _line("s-1") + b"]}",
        ("records", ["long", "s-1"], []),
        id="records_on_two_lines",
    ),
    pytest.param(
        b'{"Records": [' + _line("long", 200) + b"]}\n\n",
        ("records", ["long"], []),
        id="records_on_one_line",
    ),
]


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize(("doc", "expected"), LONG_FIRST_LINES)
def test_a_first_line_longer_than_the_streamed_head_is_judged_as_in_memory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    threshold: int,
    doc: bytes,
    expected: tuple[str, list[str], list[tuple[int, str]]],
) -> None:
    monkeypatch.setattr(streaming, "_STREAM_HEAD", HEAD)
    path = tmp_path / "doc.json.gz"
    path.write_bytes(gzip.compress(doc))
    parser, rows = _rows(path, threshold, ["event_id"])
    found = [(q.index, q.reason) for q in parser.quarantined]
    assert (parser.format, [r["event_id"] for r in rows], found) == expected


def test_a_document_on_one_line_is_never_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudTrail writes a document on one line: nothing follows it, so it is streamed."""

    def refuse(stream: object) -> None:
        raise AssertionError("read whole")

    monkeypatch.setattr(streaming, "_STREAM_HEAD", HEAD)
    monkeypatch.setattr(streaming, "_first_line", refuse)
    path = tmp_path / "one_line.json.gz"
    path.write_bytes(gzip.compress(b'{"Records": [' + _line("long", 200) + b"]}\n \n"))
    assert ids(path, STREAMED) == ("records", ["long"])


# ---- the key "Records" twice -----------------------------------------------------------------
@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_records_key_twice_gives_both_lists_in_both_modes(threshold: int) -> None:
    # In memory the first list was dropped without a word (msgspec keeps the last value of a
    # key); streamed, ijson gave both.
    columns = ["event_id", "source_record_index"]
    parser, rows = _rows(CASES / "records_key_twice.json", threshold, columns)
    assert [(r["event_id"], r["source_record_index"]) for r in rows] == [
        ("twice-1", 0),
        ("twice-2", 1),
        ("twice-3", 2),
    ]
    assert (parser.format, parser.records, parser.quarantined) == ("records", 3, [])


def _twice(first: bytes, second: bytes) -> bytes:
    record = b'{"eventID":"%s","eventTime":"2024-03-01T00:00:00Z","userIdentity":{}}'
    a, b = record % b"a", record % b"b"
    return b'{"Records":' + first.replace(b"A", a) + b',"' + second + b'":[' + b + b"]}"


_OTHER_RECORDS_KEY = (
    b'{"meta":{"Records":[1]},"Records":[{"eventID":"c","eventTime":"2024-03-01T00:00:00Z"}]}'
)


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize(
    ("doc", "expected", "twice"),
    [
        (_twice(b"[A]", b"Records"), ["a", "b"], True),
        (_twice(b"[A]", b"Rec\\u006frds"), ["a", "b"], True),  # the same key, with an escape
        (_twice(b"[]", b"Records"), ["b"], True),
        (_twice(b"null", b"Records"), ["b"], True),
        (_twice(b"[A]", b"records"), ["a"], False),  # another key
        (_OTHER_RECORDS_KEY, ["c"], False),  # "Records" in a nested object: not the same key
    ],
)
def test_records_key_twice_spelt_any_way(
    tmp_path: Path, doc: bytes, expected: list[str], twice: bool, threshold: int
) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(doc + b" " * 32)
    parser, rows = _rows(path, threshold, ["event_id"])
    assert ([r["event_id"] for r in rows], parser.quarantined) == (expected, [])
    # The fast path, which reads one list, steps aside for every document with the key twice.
    taken = fast_table(doc, source_uri="x", source_sha256="", run_id="r", fallback_account=None)
    assert (taken is None) == twice


def test_a_clean_document_is_shown_to_have_one_records_key_without_a_search() -> None:
    """The fast path's check: a value of the first record located in the document (msgspec's
    Raw is a view of it) proves there is no second key, with no pass over the document."""
    doc = (CASES / "records_key_twice.json").read_bytes()
    once = doc.replace(b',"Records":[', b',"records":[')
    for text, expected in ((doc, False), (once, True)):
        records = in_memory._envelope.decode(text).Records
        assert records is not None
        assert in_memory._one_records_key(text, records[0]["userIdentity"]) is expected
    assert in_memory._one_records_key(once, msgspec.Raw(b"{}")) is False  # not a view of `once`
    assert in_memory.repeats_records_key(doc) is True
    assert in_memory.repeats_records_key(once) is False


@pytest.mark.parametrize(
    ("doc", "outcome"),
    [
        (b'{"Records":[],"Records":[]}', ("records", 0)),
        (b'{"Records":null,"Records":null}', "JSON without Records: the object has no 'Records' list"),
        (b'{"Records":"x","Records":[]}', "Records is not a list: it is a string"),
        (b'{"Records":5,"Records":null}', "Records is not a list: it is a number"),
    ],
)
def test_records_key_twice_without_records_is_judged_alike_in_both_modes(
    tmp_path: Path, doc: bytes, outcome: object
) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(doc + b" " * 32)
    for threshold in (IN_MEMORY, STREAMED):
        parser = ObjectParser("x", "run", None, threshold)
        if isinstance(outcome, str):
            with pytest.raises(ParseError) as caught:
                list(parser.tables(path))
            assert caught.value.message == outcome, threshold
        else:
            rows = sum(t.num_rows for t in parser.tables(path))
            assert (parser.format, rows) == outcome, threshold


# ---- bytes that are not UTF-8 inside a record's strings ----------------------------------------
# A SIEM export with Latin-1 bytes (0xE9) in three of its six records: in a userAgent, in a
# nested value, in a key. Streamed (large files), ijson stopped at the first such byte and the
# whole file was quarantined ("invalid bytes in UTF8 string"); in memory, only those records.
LATIN1_CASES = ("latin1_records.json", "latin1_array.json.gz", "latin1_lines.ndjson")
LATIN1_ROWS = [
    {"event_id": "latin1-ok-1", "source_record_index": 0, "user_agent": "aws-sdk-go/1.50.0"},
    {"event_id": "latin1-ok-2", "source_record_index": 2, "user_agent": "aws-sdk-go/1.50.0"},
    {"event_id": "latin1-ok-3", "source_record_index": 5, "user_agent": "caf\u00e9 (UTF-8)"},
]
LATIN1_REASONS = [
    (1, "userAgent: invalid UTF-8 (invalid continuation byte at byte 26)"),
    (3, "requestParameters: invalid UTF-8 (invalid continuation byte at byte 17)"),
    (4, "a key is not valid UTF-8 (invalid continuation byte at byte 3 of the key)"),
]
LATIN1_FORMATS = {"latin1_records.json": "records", "latin1_array.json.gz": "array"}


def _latin1_lines() -> list[bytes]:
    """The six records' texts as the case files hold them (one per line of the NDJSON case)."""
    return (CASES / "latin1_lines.ndjson").read_bytes().splitlines()


def _quarantined(parser: ObjectParser) -> list[tuple[int, str, bytes]]:
    return [(q.index, q.reason, q.text) for q in parser.quarantined]


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize("name", LATIN1_CASES)
def test_a_record_with_bytes_not_utf8_is_quarantined_alone(name: str, threshold: int) -> None:
    parser, rows = _rows(CASES / name, threshold, ["event_id", "source_record_index", "user_agent"])
    assert (parser.format, parser.records, parser.rows) == (
        LATIN1_FORMATS.get(name, "ndjson"),
        6,
        3,
    )
    assert rows == LATIN1_ROWS
    found = _quarantined(parser)
    assert [(index, reason) for index, reason, _ in found] == LATIN1_REASONS
    lines = _latin1_lines()
    for index, _, text in found:
        # The record as found, its bytes included (0xE9 is "é" in Latin-1, the text's only
        # byte above 0x7F): nothing of it is lost.
        assert b"\xe9" in text
        assert json.loads(text.decode("latin-1")) == json.loads(lines[index].decode("latin-1"))
    assert found[2][2] == lines[4]  # a key not UTF-8: the text exactly as found


@pytest.mark.parametrize("name", LATIN1_CASES)
def test_bytes_not_utf8_give_the_same_records_in_memory_and_streamed(name: str) -> None:
    """Same rows, and the same quarantined records byte for byte (index, reason, text)."""
    columns = ["event_id", "source_record_index", "user_agent", "request_parameters", "extra"]
    memory, memory_rows = _rows(CASES / name, IN_MEMORY, columns)
    streamed, streamed_rows = _rows(CASES / name, STREAMED, columns)
    assert streamed_rows == memory_rows
    assert _quarantined(streamed) == _quarantined(memory)
    assert (streamed.format, streamed.records, streamed.rows) == (
        memory.format,
        memory.records,
        memory.rows,
    )


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_a_streamed_document_is_read_again_past_bytes_not_utf8_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Read again after ijson stopped (streaming.Spans), in chunks of any size: brackets, quotes
    and escapes inside strings, and values cut by a chunk's end, split no record wrongly."""
    monkeypatch.setattr(streaming, "_SPAN_CHUNK", chunk)
    lines = _latin1_lines()
    tricky = json.dumps(
        {
            "eventID": "tricky",
            "eventTime": "2024-03-01T09:00:30Z",
            "requestParameters": {"s": 'a]b}c{d[e\\"f', "n": [1, -2.5e3, True, None, {}]},
        }
    ).encode()
    doc = b'{"meta": {"Records": []},\n "Records": [\n' + b",\n".join([*lines, tricky, b"7"])
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(doc + b'\n ], "after": "caf\xe9"}\n'))
    parser, rows = _rows(path, STREAMED, ["event_id", "source_record_index", "request_parameters"])
    assert [(r["event_id"], r["source_record_index"]) for r in rows] == [
        ("latin1-ok-1", 0),
        ("latin1-ok-2", 2),
        ("latin1-ok-3", 5),
        ("tricky", 6),
    ]
    assert json.loads(rows[3]["request_parameters"]) == {
        "s": 'a]b}c{d[e\\"f',
        "n": [1, -2500.0, True, None, {}],
    }
    assert [(i, r) for i, r, _ in _quarantined(parser)] == [
        *LATIN1_REASONS,
        (7, "record is not a JSON object"),
    ]
    assert parser.quarantined[3].text == b"7"


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
def test_records_key_twice_with_bytes_not_utf8_gives_both_lists(
    tmp_path: Path, threshold: int
) -> None:
    # In memory, the search for a second "Records" key (ijson) stopped at the byte and said
    # "once": msgspec's last list was read, and the first list lost without a word.
    lines = _latin1_lines()
    doc = b'{"Records": [' + b",".join(lines[:3]) + b'], "Records": [' + b",".join(lines[3:])
    path = tmp_path / "twice.json"
    path.write_bytes(doc + b"]}" + b" " * 32)
    parser, rows = _rows(path, threshold, ["event_id", "source_record_index", "user_agent"])
    assert rows == LATIN1_ROWS
    assert [(i, r) for i, r, _ in _quarantined(parser)] == LATIN1_REASONS


@pytest.mark.parametrize("threshold", [IN_MEMORY, STREAMED], ids=["in_memory", "streamed"])
@pytest.mark.parametrize(
    ("doc", "outcome"),
    [
        # One record on its own, pretty-printed: quarantined alone, as any record.
        (_latin1_lines()[1].replace(b", ", b",\n  "), ("ndjson", 1, 0)),
        # No Records list beside a key that is not UTF-8: the keys of the object are unknown.
        (
            b'{"caf\xe9": 1,\n "eventID": "x"}',
            "a key is not valid UTF-8 (unexpected end of data at byte 3 of the key)",
        ),
        (b'{"caf\xe9": "\xe9",\n "Records": []}', ("records", 0, 0)),
        (b'{"Records": 5,\n "x": "caf\xe9"}', "Records is not a list"),
        (b'{"Records": [{"eventID": "caf\xe9"},\n {"a": tru}]}', "invalid JSON"),
        (b'{"Records": [{"eventID": "caf\xe9"},\n {"eventID": "x"}]} trailing', "invalid JSON"),
        (b'{"Records": [{"eventID": "caf\xe9"}, {"eventID": "cut', "invalid JSON"),
    ],
)
def test_documents_with_bytes_not_utf8_are_judged_alike_in_both_modes(
    tmp_path: Path, threshold: int, doc: bytes, outcome: object
) -> None:
    """A fault of the file stays one (its message starts the same way in both modes)."""
    path = tmp_path / "doc.json"
    path.write_bytes(doc + b" " * 32)
    parser = ObjectParser("x", "run", None, threshold)
    if isinstance(outcome, str):
        with pytest.raises(ParseError) as caught:
            list(parser.tables(path))
        assert caught.value.message.startswith(outcome)
    else:
        rows = sum(t.num_rows for t in parser.tables(path))
        assert (parser.format, parser.records, rows) == outcome


def test_a_clean_streamed_document_is_read_once_by_ijson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second reading is the error path only: a clean file (UTF-8 text beyond ASCII
    included) never reaches it, so streaming costs what it did."""

    def refuse(*args: object) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(streaming, "Spans", refuse)
    monkeypatch.setattr(in_memory, "Spans", refuse)
    for name, expected in (
        ("good_cloudtrail.json.gz", ["good-1", "good-2", "good-3"]),
        ("array_of_records.json", ["array-1", "array-2"]),
        ("nested_lossless.json", ["nested-1"]),
    ):
        parser, rows = _rows(CASES / name, STREAMED, ["event_id"])
        assert ([r["event_id"] for r in rows], parser.quarantined) == (expected, []), name
    path = tmp_path / "utf8.json"
    path.write_bytes(_latin1_lines()[5].join([b'{"Records": [', b"]}"]))
    parser, rows = _rows(path, STREAMED, ["user_agent"])
    assert rows == [{"user_agent": "caf\u00e9 (UTF-8)"}]
