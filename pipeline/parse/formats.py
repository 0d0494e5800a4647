"""Source bytes -> CloudTrail records, whatever the container.

Formats are detected by content, not by name: gzip by its magic bytes; then a `{"Records": [...]}`
document (what CloudTrail writes), a JSON array of records, or NDJSON (one record per line, as
SIEMs export). Small documents are decoded in one piece (fast); documents above the streaming
threshold are read record by record from a decompressing stream, so memory stays flat. Both
ways read the same records: a lone UTF-16 surrogate escape as U+FFFD (fix_lone_surrogates), a
document with the key "Records" twice as both lists (records_key_once), a first line that is a
whole JSON object with more lines after it as NDJSON (_is_ndjson). Bytes that are not UTF-8
inside a record's strings quarantine that record alone, on both ways: msgspec leaves them in its
raw values (RowBuilder names the field); ijson stops at them, and the streamed document is then
read again by _Spans, which splits it into the records' texts without decoding them.
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Literal, cast

import ijson  # type: ignore[import-untyped]
import msgspec
import pyarrow as pa
from isal import igzip
from isal.igzip_lib import IsalError

from pipeline.errors import ParseError

Raw = msgspec.Raw
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# What a damaged gzip stream raises: zlib's and gzip's errors, and ISA-L's own (not an OSError).
GZIP_ERRORS: tuple[type[Exception], ...] = (OSError, zlib.error, cast(type[Exception], IsalError))
Record = dict[str, Raw]
Format = Literal["records", "array", "ndjson"]
# Opens the streamed document again, from its first byte (as open_stream does), for a second
# reading when ijson stops at bytes that are not UTF-8 (_iter_ijson).
Reopen = Callable[[], IO[bytes]]


class _Envelope(msgspec.Struct):
    Records: list[Record] | None = None


class _LooseEnvelope(msgspec.Struct):
    Records: list[Raw] | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_loose_envelope = msgspec.json.Decoder(_LooseEnvelope)
_record = msgspec.json.Decoder(Record)
_records = msgspec.json.Decoder(list[Record])
_raw_list = msgspec.json.Decoder(list[Raw])
_raw_value = msgspec.json.Decoder(Raw)  # checks a text is one JSON value (not its UTF-8)
# Streamed records come from ijson with numbers as int and Decimal (use_float=False): floats
# would lose digits and yajl's own integers overflow above 64 bits ("integer overflow" failed
# whole files). Decimals are written back as JSON numbers, not strings, so values are kept.
_encode = msgspec.json.Encoder(decimal_format="number")
_RECORD_KEYS = ("eventID", "eventVersion", "eventTime", "eventName")
# How much of a streamed document is looked at to tell NDJSON from a Records document.
_STREAM_HEAD = 1 << 20
# A lone UTF-16 surrogate escape ("\udc00", or "\ud800" not followed by a low one) is in no
# Unicode text: msgspec refuses the whole document, ijson (yajl) raises while decoding it. Such an
# escape is read as U+FFFD, the replacement character (fix_lone_surrogates). Every backslash
# escape is matched, left to right, so that an escaped backslash ("\\udc00") is not taken for
# one; a surrogate pair is matched whole.
_ESCAPE_SEQUENCE = re.compile(
    rb"\\(?:(?P<high>u[dD][89abAB][0-9a-fA-F]{2})(?P<low>\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|(?P<lone>u[dD][c-fC-F][0-9a-fA-F]{2})|.)",
    re.DOTALL,
)
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")  # a text without it has nothing to fix
_REPLACEMENT = rb"\ufffd"
_LONGEST_ESCAPE = 12  # a surrogate pair: "\ud83d\ude00"


@dataclass(frozen=True)
class RecordItem:
    """One record of a source object, or why the item at that position is not one."""

    index: int
    record: Record | None
    raw: bytes | None = None  # the item's text, kept for quarantine when record is None
    error: str | None = None


def decompress(data: bytes) -> bytes:
    """Gunzip when the bytes are gzip (by magic number), else return them unchanged."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        out: bytes = igzip.decompress(data)  # type: ignore[no-untyped-call]
        return out
    except EOFError:
        raise ParseError("truncated gzip: the compressed stream ends early") from None
    except GZIP_ERRORS as exc:
        raise ParseError(f"corrupt gzip: {exc}") from None


def _first_byte(doc: bytes) -> bytes:
    stripped = doc.lstrip()
    return stripped[:1]


def fix_lone_surrogates(text: bytes) -> bytes:
    """`text` with every lone UTF-16 surrogate escape replaced by "\\ufffd" (U+FFFD): the same
    object when there is none (the common case, one search). Python's json keeps such an escape
    as a lone surrogate, which no UTF-8 column can hold; a record is not lost over one."""
    if _SURROGATE_HINT.search(text) is None:
        return text
    fixed = _ESCAPE_SEQUENCE.sub(_fix_escape, text)
    return text if fixed == text else fixed


def _fix_escape(match: re.Match[bytes]) -> bytes:
    if match.group("lone") is not None or (match.group("high") and match.group("low") is None):
        return _REPLACEMENT
    return match.group(0)


def _safe_cut(data: bytes, hinted: bool) -> int:
    """Where `data`, which starts outside any escape, may be cut for fix_lone_surrogates to
    read the part before the cut as it would read the whole: at most _LONGEST_ESCAPE bytes
    before its end, with no escape (a surrogate pair) split, at a point outside any escape.
    `hinted`: whether _SURROGATE_HINT occurs in data."""
    limit = len(data) - _LONGEST_ESCAPE
    if limit <= 0:
        return 0
    if not hinted:
        # No surrogate escape at all (any that starts before `limit` ends within data): a
        # cut after an escape's "\\u" leaves hex digits, which are no escape, and a run of
        # backslashes is kept whole, so that the next part starts outside any escape.
        while limit > 0 and data[limit - 1] == 0x5C:
            limit -= 1
        return limit
    cut = limit
    for match in _ESCAPE_SEQUENCE.finditer(data):  # every escape, to know which are escapes
        if match.start() >= limit:
            break
        cut = max(limit, match.end())
    return cut


def iter_document(doc: bytes) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a whole decompressed document. Raises ParseError for file-level faults."""
    if doc.startswith(UTF8_BOM):  # exports written on Windows start with one
        doc = doc[len(UTF8_BOM) :]
    first = _first_byte(doc)
    if not first:
        raise ParseError("empty file: no records")
    if first == b"[":
        return "array", _iter_array(doc)
    if first != b"{":
        raise ParseError(f"not JSON: starts with {doc.lstrip()[:16]!r}")
    try:
        envelope = _envelope.decode(doc)
    except (msgspec.ValidationError, UnicodeDecodeError):
        # UnicodeDecodeError: a record's key that is not UTF-8; read record by record, that
        # record is quarantined alone (_decode_each).
        if _is_ndjson(doc):
            return "ndjson", _iter_ndjson(io.BytesIO(doc))
        fixed = fix_lone_surrogates(doc)  # msgspec stopped before reaching one, maybe
        if fixed is not doc:
            return iter_document(fixed)
        if repeats_records_key(doc):
            return "records", _iter_records_twice(doc)
        return "records", _iter_loose(doc)
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    except msgspec.DecodeError as exc:
        if _is_ndjson(doc):
            return "ndjson", _iter_ndjson(io.BytesIO(doc))
        fixed = fix_lone_surrogates(doc)
        if fixed is not doc:
            return iter_document(fixed)
        raise ParseError(f"invalid JSON: {exc}") from None
    records = envelope.Records
    first_value = next(iter(records[0].values()), None) if records else None
    if not records_key_once(doc, first_value):
        # "Records" twice (no CloudTrail writer does it): msgspec keeps the last list only;
        # both lists' records are read, in order, as the streaming path reads them.
        return "records", _iter_records_twice(doc)
    if records is not None:
        return "records", (RecordItem(i, r) for i, r in enumerate(records))
    # One JSON object without Records: a single record (one NDJSON line, or one record
    # pretty-printed over several lines) when its own top-level keys say so.
    try:
        record = _record.decode(doc)
    except UnicodeDecodeError as exc:  # its keys cannot be told (the streamed path says the same)
        raise ParseError(bad_key(exc)) from None
    if _is_record(record):
        return "ndjson", iter([RecordItem(0, record)])
    raise ParseError(NO_RECORDS)


NO_RECORDS = "JSON without Records: the object has no 'Records' list"


def bad_key(exc: UnicodeDecodeError) -> str:
    """The reason for a key that is not UTF-8 (msgspec decodes keys, and raises on one)."""
    return f"a key is not valid UTF-8 ({exc.reason} at byte {exc.start} of the key)"


def _json_fault(text: bytes) -> str | None:
    """Why `text` is not one JSON value, or None when it is one. Strings are not checked for
    UTF-8 (msgspec skips them as raw text). Only on error paths."""
    try:
        _raw_value.decode(fix_lone_surrogates(text))
    except msgspec.MsgspecError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    return None


def _is_record(obj: Record) -> bool:
    return "Records" not in obj and any(key in obj for key in _RECORD_KEYS)


def _is_ndjson(head: bytes) -> bool:
    """Whether a document (or the head of a streamed one) is NDJSON: its first line is a whole
    JSON object and more follows it. Such a document is no one JSON value, whatever its first
    line holds (a SIEM export's header line, a Records document on one line): each line is then
    a record, or quarantined alone."""
    first_line, _, rest = head.lstrip().partition(b"\n")
    if not rest.strip():
        return False
    if _decode_line(first_line) is not None:
        return True
    # A whole object whose keys are not all UTF-8: its line is quarantined alone.
    return first_line.lstrip()[:1] == b"{" and _json_fault(first_line) is None


def _decode_line(line: bytes) -> Record | None:
    """One line as a JSON object, lone surrogate escapes read as U+FFFD; None if it is none."""
    for text in (line, fix_lone_surrogates(line)):
        try:
            return _record.decode(text)
        except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
            pass
    return None


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string token
_str = msgspec.json.Decoder(str)
_RECORDS_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_RECORDS_KEY = b'"Records"'
# The string "Records" with any of its letters escaped (or none).
_RECORDS_SPELT = re.compile(
    rb'"(?:R|\\u0052)(?:e|\\u0065)(?:c|\\u0063)(?:o|\\u006[fF])(?:r|\\u0072)(?:d|\\u0064)'
    rb'(?:s|\\u0073)"'
)


def records_key_once(doc: bytes, first_value: Raw | None) -> bool:
    """Whether the document's top-level object has the key "Records" at most once: shown
    cheaply where it can be (_one_records_key), else searched for (repeats_records_key)."""
    return _one_records_key(doc, first_value) or not repeats_records_key(doc)


def _one_records_key(doc: bytes, first_value: Raw | None) -> bool:
    """True when the document certainly has the key "Records" once at its top level, proven
    cheaply (no pass over the document): it starts with `{"Records": [` and `first_value`, a
    value of the first record msgspec kept, lies in its first record. msgspec keeps the last
    "Records" list of an object, so a second key, spelt plainly or with escapes, would stand
    between the two. False when that cannot be shown this way.

    `first_value` is a msgspec.Raw decoded from `doc`: it points into doc's own buffer, which
    gives its offset."""
    head = _RECORDS_HEAD.match(doc)
    if head is None or first_value is None:
        return False
    offset = pa.py_buffer(first_value).address - pa.py_buffer(doc).address
    if not head.end() <= offset < len(doc):
        return False  # a copy, not a view of doc
    before = doc[head.end() : offset]
    if _RECORDS_KEY in before:
        return False
    if b"\\u" in before:  # a key may be spelt with escapes: decode the strings that have one
        for token in _STRING.findall(before):
            if b"\\u" in token and _decode_str(token) == "Records":
                return False
    return True


def _decode_str(token: bytes) -> str | None:
    try:
        text: str | None = _str.decode(fix_lone_surrogates(token))
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None
    return text


def repeats_records_key(doc: bytes) -> bool:
    """Whether the document's top-level object has the key "Records" more than once (however
    it is spelt). A search through the document, and a parse only where the key's text occurs
    twice (anywhere: in a value, in a nested object)."""
    spelt = len(_RECORDS_SPELT.findall(doc)) if b"\\u" in doc else doc.count(_RECORDS_KEY)
    if spelt < 2:
        return False
    keys = 0
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(doc)):
            if prefix == "" and event == "map_key" and value == "Records":
                keys += 1
                if keys > 1:
                    return True
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        if _not_utf8(exc):  # msgspec reads such a document (and kept the last list only)
            return _counts_records_keys(doc)
    except RecursionError:
        pass  # judged by the decoder that reads the document next
    return False


def _counts_records_keys(doc: bytes) -> bool:
    """repeats_records_key for a document with strings that are not UTF-8 (read with _Spans)."""
    spans = _Spans(io.BytesIO(doc))
    keys = 0
    try:
        for key in spans.members():
            keys += _is_records_key(key)
            if keys > 1:
                return True
            spans.value()
    except _Malformed:
        pass  # judged by the decoder that reads the document next
    return False


def _iter_records_twice(doc: bytes) -> Iterator[RecordItem]:
    """The records of every "Records" list of a document, in order, read as the streaming path
    reads them (ijson), faults included."""
    found = 0
    for item in _iter_ijson(io.BytesIO(doc), "Records.item", lambda: io.BytesIO(doc)):
        found += 1
        yield item
    if not found:
        check_records_key(io.BytesIO(doc), lambda: io.BytesIO(doc))  # as ObjectParser._stream


def _iter_array(doc: bytes) -> Iterator[RecordItem]:
    try:
        items = _raw_list.decode(doc)
    except msgspec.MsgspecError as exc:
        fixed = fix_lone_surrogates(doc)
        if fixed is not doc:
            return _iter_array(fixed)
        raise ParseError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    return _decode_each(items)


def _iter_loose(doc: bytes) -> Iterator[RecordItem]:
    """Slow path for a Records list holding non-objects: decode element by element."""
    try:
        envelope = _loose_envelope.decode(doc)
    except msgspec.MsgspecError as exc:
        raise ParseError(f"Records is not a list: {exc}") from None
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    return _decode_each(envelope.Records or [])


def _decode_each(items: list[Raw]) -> Iterator[RecordItem]:
    for index, raw in enumerate(items):
        try:
            yield RecordItem(index, _record.decode(raw))
        except (msgspec.MsgspecError, RecursionError):
            yield RecordItem(index, None, bytes(raw), "record is not a JSON object")
        except UnicodeDecodeError as exc:
            yield RecordItem(index, None, bytes(raw), bad_key(exc))


def _iter_ndjson(stream: IO[bytes]) -> Iterator[RecordItem]:
    index = 0
    for line in stream:
        if not line.strip():
            continue
        try:
            yield RecordItem(index, _record.decode(line))
        except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError) as exc:
            record = _decode_line(line)  # lone surrogate escapes (rare: only on an error)
            if record is not None:
                yield RecordItem(index, record)
            else:
                yield RecordItem(index, None, line.rstrip(b"\r\n"), _line_fault(line, exc))
        index += 1


def _line_fault(line: bytes, exc: Exception) -> str:
    """Why an NDJSON line is quarantined: a key that is not UTF-8 in a line that is JSON, or
    what makes it no JSON."""
    if isinstance(exc, UnicodeDecodeError):
        fault = _json_fault(line)
        return bad_key(exc) if fault is None else f"invalid JSON line: {fault}"
    return f"invalid JSON line: {exc}"


class HashingReader(io.RawIOBase):
    """A readable stream that hashes and counts every byte read through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(buffer))
        n = len(chunk)
        buffer[:n] = chunk
        self.sha256.update(chunk)
        self.size += n
        return n

    def read(self, size: int = -1) -> bytes:
        """The inner stream's bytes as they are (SurrogateFixer reads them so: no copy)."""
        chunk: bytes = self._inner.read(size)
        self.sha256.update(chunk)
        self.size += len(chunk)
        return chunk


_FIX_CHUNK = 1 << 20


class SurrogateFixer(io.RawIOBase):
    """A readable stream of `inner`'s bytes with fix_lone_surrogates applied, for documents
    parsed as they are read (ijson would raise on such an escape, failing the whole file)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self._pending = b""  # read, not fixed yet: may end inside an escape
        self._ready = memoryview(b"")  # fixed, not returned yet
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._ready and not self._eof:
            data = self._pending
            while len(data) < _FIX_CHUNK:  # a whole chunk, or the rest of the stream
                chunk = self._inner.read(_FIX_CHUNK - len(data))
                if not chunk:
                    self._eof = True
                    break
                data = data + chunk if data else chunk
            # A backslash first: one byte, found with memchr; most chunks of most logs have none.
            hinted = b"\\" in data and _SURROGATE_HINT.search(data) is not None
            cut = len(data) if self._eof else _safe_cut(data, hinted)
            ready = memoryview(data)[:cut]
            self._ready = memoryview(fix_lone_surrogates(data[:cut])) if hinted else ready
            self._pending = data[cut:]
        n = min(len(buffer), len(self._ready))
        buffer[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n


def open_stream(path: str, *, fix_surrogates: bool = True) -> tuple[IO[bytes], HashingReader]:
    """A buffered, decompressed, hashing stream over a file of any size, lone surrogate escapes
    read as U+FFFD (SurrogateFixer) unless only hashed; the hash is of the bytes as found."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller through the returned stream
    magic = raw.read(2)
    raw.seek(0)
    inner: IO[bytes] = raw
    if magic == GZIP_MAGIC:
        inner = cast(IO[bytes], igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]
    hashing = HashingReader(inner)
    source: io.RawIOBase = SurrogateFixer(cast(IO[bytes], hashing)) if fix_surrogates else hashing
    return io.BufferedReader(source, buffer_size=1 << 20), hashing


def _skip_bom(stream: IO[bytes]) -> None:
    if hasattr(stream, "peek") and stream.peek(len(UTF8_BOM)).startswith(UTF8_BOM):
        stream.read(len(UTF8_BOM))


def iter_stream(
    stream: IO[bytes], reopen: Reopen | None = None
) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a large document read incrementally. Raises ParseError for file faults.
    `reopen`: the document again, for a Records document or an array with bytes that are not
    UTF-8 in its strings (without it, such a document is a file fault)."""
    _skip_bom(stream)
    head = stream.peek(_STREAM_HEAD)[:_STREAM_HEAD] if hasattr(stream, "peek") else b""
    first = _first_byte(head)
    if not first:
        raise ParseError("empty file: no records")
    if first == b"[":
        return "array", _iter_ijson(stream, "item", reopen)
    if first != b"{":
        raise ParseError(f"not JSON: starts with {head.lstrip()[:16]!r}")
    # NDJSON as in memory (iter_document): a first line that is a whole JSON object with more
    # after it (a header line, or a record), or one record on one line with no newline.
    if _is_ndjson(head):
        return "ndjson", _iter_ndjson(stream)
    first_object = _decode_line(head.lstrip().split(b"\n", 1)[0])
    if first_object is not None and _is_record(first_object):
        return "ndjson", _iter_ndjson(stream)
    return "records", _iter_ijson(stream, "Records.item", reopen)


def check_records_key(stream: IO[bytes], reopen: Reopen | None = None) -> bool:
    """For a streamed document that gave no records, decide as the in-memory path does: False for
    an empty Records list, True for one record without a Records list (a single record
    pretty-printed over several lines), else raise the same ParseError. `reopen` as for
    iter_stream."""
    _skip_bom(stream)
    events = ijson.parse(stream, use_float=False)
    keys: set[str] = set()
    try:
        for prefix, event, value in events:
            if prefix == "" and event == "map_key":
                if value == "Records":
                    _, kind, _ = next(events)
                    if kind == "start_array":
                        return False
                    if kind == "null":
                        keys.add(value)
                        continue
                    raise ParseError(f"Records is not a list: it is {_KIND_NAMES.get(kind, kind)}")
                keys.add(value)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        if reopen is None or not _not_utf8(exc):
            raise ParseError(f"invalid JSON: {_ijson_message(exc)}") from None
        with reopen() as again:
            return _check_records_key_again(again)
    return _single_or_fault(keys)


def _single_or_fault(keys: set[str]) -> bool:
    if "Records" not in keys and any(key in keys for key in _RECORD_KEYS):
        return True
    raise ParseError(NO_RECORDS)


def _check_records_key_again(stream: IO[bytes]) -> bool:
    """check_records_key for a document with bytes that are not UTF-8 in its strings, read with
    _Spans. A top-level key that is not UTF-8 is a fault of the document, as in memory (where it
    makes the keys of a single record unknown), unless it has a Records list."""
    _skip_bom(stream)
    spans = _Spans(stream)
    keys: set[str] = set()
    not_utf8: UnicodeDecodeError | None = None
    try:
        for token in spans.members():
            try:
                key = _str.decode(fix_lone_surrogates(token))
            except UnicodeDecodeError as exc:
                not_utf8 = not_utf8 or exc
                spans.value()
                continue
            except (msgspec.MsgspecError, RecursionError) as exc:
                raise _Malformed(f"a key is no JSON string ({exc})") from None
            keys.add(key)
            if key != "Records":
                spans.value()
                continue
            first = spans.peek()
            if first == b"[":
                return False
            value = spans.value()
            fault = _json_fault(value)
            if fault is not None:
                raise _Malformed(fault)
            if first != b"n":  # null
                kind = _KINDS.get(first, "number")
                raise ParseError(f"Records is not a list: it is {_KIND_NAMES.get(kind, kind)}")
        spans.end()
    except _Malformed as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    except EOFError:
        raise ParseError("truncated gzip: the compressed stream ends early") from None
    except GZIP_ERRORS as exc:
        raise ParseError(f"corrupt gzip: {exc}") from None
    if not_utf8 is not None:
        raise ParseError(bad_key(not_utf8))
    return _single_or_fault(keys)


def iter_single(stream: IO[bytes], reopen: Reopen | None = None) -> Iterator[RecordItem]:
    """The one record of a streamed document that is a single record (`reopen` as for
    iter_stream)."""
    _skip_bom(stream)
    return _iter_ijson(stream, "", reopen)


_KIND_NAMES = {"start_map": "an object", "string": "a string", "number": "a number"}
# ijson's event for a value, by its first byte (what _Spans reads).
_KINDS = {b"{": "start_map", b'"': "string", b"t": "boolean", b"f": "boolean"}


def _iter_ijson(
    stream: IO[bytes], prefix: str, reopen: Reopen | None = None
) -> Iterator[RecordItem]:
    """The items at `prefix` ("Records.item", "item", or "" for the whole document), as ijson
    reads them. ijson stops at a string that is not UTF-8 (yajl: "invalid bytes in UTF8
    string"; or Python's decoder, for bytes yajl lets pass): with `reopen`, the document is then
    read again with _Spans from the item ijson stopped in, so that the item is quarantined alone
    (RowBuilder names its field) and the items after it are read. Clean documents never pay for
    it: this is the error path."""
    index = 0
    again = False
    try:
        for item in ijson.items(stream, prefix, use_float=False):
            text = _encode.encode(item)
            if isinstance(item, dict):
                yield RecordItem(index, _record.decode(text))
            else:
                yield RecordItem(index, None, text, "record is not a JSON object")
            index += 1
    except EOFError:
        raise ParseError("truncated gzip: the compressed stream ends early") from None
    except GZIP_ERRORS as exc:
        raise ParseError(f"corrupt gzip: {exc}") from None
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        if reopen is None or not _not_utf8(exc):
            raise ParseError(f"invalid JSON after {index} records: {_ijson_message(exc)}") from None
        again = True
    except RecursionError:
        raise ParseError(f"invalid JSON after {index} records: nested too deeply") from None
    if again and reopen is not None:
        yield from _iter_spans(reopen, prefix, index)


_NOT_UTF8 = "invalid bytes in UTF8 string"


def _not_utf8(exc: Exception) -> bool:
    """Whether ijson stopped at a string that is not UTF-8 (and at nothing else)."""
    return isinstance(exc, UnicodeDecodeError) or _NOT_UTF8 in _ijson_message(exc)


def _iter_spans(reopen: Reopen, prefix: str, start: int) -> Iterator[RecordItem]:
    """The items at `prefix` from the `start`-th on (those before it were read by ijson), each
    decoded from its text as found, as the in-memory path decodes them (_decode_each)."""
    index = 0
    with reopen() as stream:
        _skip_bom(stream)
        spans = _Spans(stream)
        try:
            for text in spans.items(prefix):
                if index >= start:
                    yield _span_item(index, text)
                index += 1
        except _Malformed as exc:
            raise ParseError(f"invalid JSON after {index} records: {exc}") from None
        except EOFError:
            raise ParseError("truncated gzip: the compressed stream ends early") from None
        except GZIP_ERRORS as exc:
            raise ParseError(f"corrupt gzip: {exc}") from None


def _span_item(index: int, text: bytes) -> RecordItem:
    """The item whose text is `text`: a record (its values as found, bytes that are not UTF-8
    included: RowBuilder quarantines it), or why it is none. Raises _Malformed for text that is
    no JSON, a fault of the whole document as in memory."""
    try:
        return RecordItem(index, _record.decode(text))
    except UnicodeDecodeError as exc:  # a key (values are kept raw)
        reason = bad_key(exc)
    except msgspec.ValidationError:  # JSON, but no object
        reason = "record is not a JSON object"
    except msgspec.DecodeError as exc:
        raise _Malformed(str(exc)) from None
    except RecursionError:
        raise _Malformed("nested too deeply") from None
    fault = _json_fault(text)
    if fault is not None:
        raise _Malformed(fault)
    return RecordItem(index, None, text, reason)


class _Malformed(Exception):
    """Text that is no JSON where _Spans reads (its message says what is wrong)."""


_WHITESPACE = re.compile(rb"[ \t\r\n]*")
# Inside a container, up to its next bracket: bytes outside strings, and whole strings. It stops
# at a quote where the string it opens does not end in the bytes read so far.
_CONTAINER_TEXT = re.compile(rb'[^"\[\]{}]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"\[\]{}]*)*', re.DOTALL)
_STRING_TAIL = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # after the opening quote
_SCALAR = re.compile(rb'[^ \t\r\n,:\[\]{}"]*')  # a number, true, false or null (checked later)
_OPENING = frozenset(b"[{")
_SPAN_CHUNK = 1 << 20


class _Spans:
    """The texts of a streamed JSON document's values, as they are (undecoded), found by
    matching brackets outside strings: a string is skipped whatever bytes it holds. Each
    value's syntax is left to the decoder of its text (_span_item, _json_fault). Reads the
    stream in chunks: memory holds a chunk, or the value being read when it is larger.

    The reading ijson cannot do: yajl refuses a string that is not UTF-8 and stops there, with
    the whole rest of the document. Slower than ijson (a Python step per bracket and per
    unfinished string), and only used after ijson stopped."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0  # where the next value (or whitespace before it) starts in _buf
        self._eof = False

    def _more(self) -> bool:
        """Reads more, keeping _buf from _pos on (offsets from _pos stay valid); False at the
        end of the stream. Reads at least as much as it keeps, so that a value of any size is
        copied a bounded number of times per byte."""
        if self._eof:
            return False
        kept = self._buf[self._pos :]
        chunk = self._stream.read(max(_SPAN_CHUNK, len(kept)))
        if not chunk:
            self._eof = True
            return False
        self._buf = kept + chunk
        self._pos = 0
        return True

    def peek(self) -> bytes:
        """The next byte that is no whitespace, not read (b"" at the end of the document)."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf) or not self._more():
                return self._buf[self._pos : self._pos + 1]

    def take(self, char: bytes) -> bool:
        """Reads `char` when it comes next (after whitespace)."""
        if self.peek() != char:
            return False
        self._pos += 1
        return True

    def expect(self, char: bytes) -> None:
        if not self.take(char):
            found = self.peek()
            raise _Malformed(
                f"expected {char.decode()!r}, found {found.decode('latin-1')!r}"
                if found
                else f"expected {char.decode()!r}, the document ends"
            )

    def value(self) -> bytes:
        """The text of the value that comes next, read."""
        first = self.peek()
        if not first:
            raise _Malformed("the document ends where a value should be")
        if first in (b"{", b"["):
            end = self._container_end()
        elif first == b'"':
            end = self._string_end()
        else:
            end = self._scalar_end()
        text = self._buf[self._pos : end]
        self._pos = end
        return text

    def _string_end(self) -> int:
        while True:
            match = _STRING_TAIL.match(self._buf, self._pos + 1)
            if match is not None:
                return match.end()
            if not self._more():
                raise _Malformed("the document ends inside a string")

    def _scalar_end(self) -> int:
        while True:
            end = _SCALAR.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if end < len(self._buf) or not self._more():
                break
        if end == self._pos:
            raise _Malformed(f"unexpected {self._buf[end : end + 1].decode('latin-1')!r}")
        return end

    def _container_end(self) -> int:
        depth = 0
        done = 0  # scanned, from _pos
        while True:
            buf = self._buf
            end = _CONTAINER_TEXT.match(buf, self._pos + done).end()  # type: ignore[union-attr]
            if end < len(buf) and buf[end] != 0x22:  # a bracket (a quote: a string not ended)
                depth += 1 if buf[end] in _OPENING else -1
                end += 1
                if depth == 0:
                    return end
                done = end - self._pos
                continue
            done = end - self._pos
            if not self._more():
                raise _Malformed("the document ends inside a value")

    def elements(self) -> Iterator[bytes]:
        """The texts of the elements of the array that comes next, read with its brackets."""
        self.expect(b"[")
        if self.take(b"]"):
            return
        while True:
            yield self.value()
            if not self.take(b","):
                self.expect(b"]")
                return

    def members(self) -> Iterator[bytes]:
        """The keys (as JSON text) of the object that comes next, read with its braces. After
        each key and its colon, the caller reads the value before taking the next key."""
        self.expect(b"{")
        if self.take(b"}"):
            return
        while True:
            if self.peek() != b'"':
                raise _Malformed("a key is no string")
            key = self.value()
            self.expect(b":")
            yield key
            if not self.take(b","):
                self.expect(b"}")
                return

    def end(self) -> None:
        """Only whitespace may follow the document (as yajl requires)."""
        if self.peek():
            raise _Malformed("trailing data after the document")

    def items(self, prefix: str) -> Iterator[bytes]:
        """The texts ijson.items(stream, prefix) gives the values of: the elements of every
        top-level "Records" list ("Records.item"), of a top-level array ("item"), or the whole
        document ("")."""
        if prefix == "":
            yield self.value()
        elif prefix == "item":
            yield from self.elements()
        else:
            for key in self.members():
                if _is_records_key(key) and self.peek() == b"[":
                    yield from self.elements()
                else:
                    value = self.value()
                    fault = _json_fault(value)
                    if fault is not None:
                        raise _Malformed(fault)
        self.end()


def _is_records_key(token: bytes) -> bool:
    """Whether a key's JSON text is "Records" (spelt with escapes, maybe)."""
    return token == _RECORDS_KEY or (b"\\" in token and _decode_str(token) == "Records")


def _ijson_message(exc: Exception) -> str:
    """yajl's message without its multi-line excerpt (which may hold record text)."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
