"""Source bytes -> CloudTrail records, whatever the container.

Formats are detected by content, not by name: gzip by its magic bytes; then a `{"Records": [...]}`
document (what CloudTrail writes), a JSON array of records, or NDJSON (one record per line, as
SIEMs export). Small documents are decoded in one piece (fast); documents above the streaming
threshold are read record by record from a decompressing stream, so memory stays flat. Both
ways read the same records: a lone UTF-16 surrogate escape as U+FFFD (fix_lone_surrogates), a
document with the key "Records" twice as both lists (records_key_once), a first line that is a
whole JSON object with more lines after it as NDJSON (_is_ndjson).
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections.abc import Iterator
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


class _Envelope(msgspec.Struct):
    Records: list[Record] | None = None


class _LooseEnvelope(msgspec.Struct):
    Records: list[Raw] | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_loose_envelope = msgspec.json.Decoder(_LooseEnvelope)
_record = msgspec.json.Decoder(Record)
_records = msgspec.json.Decoder(list[Record])
_raw_list = msgspec.json.Decoder(list[Raw])
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
    except msgspec.ValidationError:
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
    record = _record.decode(doc)
    if _is_record(record):
        return "ndjson", iter([RecordItem(0, record)])
    raise ParseError(NO_RECORDS)


NO_RECORDS = "JSON without Records: the object has no 'Records' list"


def _is_record(obj: Record) -> bool:
    return "Records" not in obj and any(key in obj for key in _RECORD_KEYS)


def _is_ndjson(head: bytes) -> bool:
    """Whether a document (or the head of a streamed one) is NDJSON: its first line is a whole
    JSON object and more follows it. Such a document is no one JSON value, whatever its first
    line holds (a SIEM export's header line, a Records document on one line): each line is then
    a record, or quarantined alone."""
    first_line, _, rest = head.lstrip().partition(b"\n")
    return bool(rest.strip()) and _decode_line(first_line) is not None


def _decode_line(line: bytes) -> Record | None:
    """One line as a JSON object, lone surrogate escapes read as U+FFFD; None if it is none."""
    for text in (line, fix_lone_surrogates(line)):
        try:
            return _record.decode(text)
        except (msgspec.MsgspecError, RecursionError):
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
    except (msgspec.MsgspecError, RecursionError):
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
    except (ijson.JSONError, UnicodeDecodeError, RecursionError):
        pass  # judged by the decoder that reads the document next
    return False


def _iter_records_twice(doc: bytes) -> Iterator[RecordItem]:
    """The records of every "Records" list of a document, in order, read as the streaming path
    reads them (ijson), faults included."""
    found = 0
    for item in _iter_ijson(io.BytesIO(doc), "Records.item"):
        found += 1
        yield item
    if not found:
        check_records_key(io.BytesIO(doc))  # raises as ObjectParser._stream does


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


def _iter_ndjson(stream: IO[bytes]) -> Iterator[RecordItem]:
    index = 0
    for line in stream:
        if not line.strip():
            continue
        try:
            yield RecordItem(index, _record.decode(line))
        except (msgspec.MsgspecError, RecursionError) as exc:
            record = _decode_line(line)  # lone surrogate escapes (rare: only on an error)
            if record is not None:
                yield RecordItem(index, record)
            else:
                yield RecordItem(index, None, line.rstrip(b"\r\n"), f"invalid JSON line: {exc}")
        index += 1


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


def iter_stream(stream: IO[bytes]) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a large document read incrementally. Raises ParseError for file faults."""
    _skip_bom(stream)
    head = stream.peek(_STREAM_HEAD)[:_STREAM_HEAD] if hasattr(stream, "peek") else b""
    first = _first_byte(head)
    if not first:
        raise ParseError("empty file: no records")
    if first == b"[":
        return "array", _iter_ijson(stream, "item")
    if first != b"{":
        raise ParseError(f"not JSON: starts with {head.lstrip()[:16]!r}")
    # NDJSON as in memory (iter_document): a first line that is a whole JSON object with more
    # after it (a header line, or a record), or one record on one line with no newline.
    if _is_ndjson(head):
        return "ndjson", _iter_ndjson(stream)
    first_object = _decode_line(head.lstrip().split(b"\n", 1)[0])
    if first_object is not None and _is_record(first_object):
        return "ndjson", _iter_ndjson(stream)
    return "records", _iter_ijson(stream, "Records.item")


def check_records_key(stream: IO[bytes]) -> bool:
    """For a streamed document that gave no records, decide as the in-memory path does: False for
    an empty Records list, True for one record without a Records list (a single record
    pretty-printed over several lines), else raise the same ParseError."""
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
    except ijson.JSONError as exc:
        raise ParseError(f"invalid JSON: {_ijson_message(exc)}") from None
    if "Records" not in keys and any(key in keys for key in _RECORD_KEYS):
        return True
    raise ParseError(NO_RECORDS)


def iter_single(stream: IO[bytes]) -> Iterator[RecordItem]:
    """The one record of a streamed document that is a single record."""
    _skip_bom(stream)
    return _iter_ijson(stream, "")


_KIND_NAMES = {"start_map": "an object", "string": "a string", "number": "a number"}


def _iter_ijson(stream: IO[bytes], prefix: str) -> Iterator[RecordItem]:
    index = 0
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
    except ijson.JSONError as exc:
        raise ParseError(f"invalid JSON after {index} records: {_ijson_message(exc)}") from None
    except RecursionError:
        raise ParseError(f"invalid JSON after {index} records: nested too deeply") from None


def _ijson_message(exc: Exception) -> str:
    """yajl's message without its multi-line excerpt (which may hold record text)."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
