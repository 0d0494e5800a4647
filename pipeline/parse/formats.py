"""Source bytes -> CloudTrail records, whatever the container.

Formats are detected by content, not by name: gzip by its magic bytes; then a `{"Records": [...]}`
document (what CloudTrail writes), a JSON array of records, or NDJSON (one record per line, as
SIEMs export). Small documents are decoded in one piece (fast); documents above the streaming
threshold are read record by record from a decompressing stream, so memory stays flat.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal, cast

import ijson  # type: ignore[import-untyped]
import msgspec
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
        return "records", _iter_loose(doc)
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    except msgspec.DecodeError as exc:
        if b"\n" in doc.strip() and _first_line_is_object(doc):
            return "ndjson", _iter_ndjson(io.BytesIO(doc))
        raise ParseError(f"invalid JSON: {exc}") from None
    if envelope.Records is not None:
        return "records", (RecordItem(i, r) for i, r in enumerate(envelope.Records))
    # One JSON object without Records: a single record (one NDJSON line, or one record
    # pretty-printed over several lines) when its own top-level keys say so.
    record = _record.decode(doc)
    if _is_record(record):
        return "ndjson", iter([RecordItem(0, record)])
    raise ParseError(NO_RECORDS)


NO_RECORDS = "JSON without Records: the object has no 'Records' list"


def _is_record(obj: Record) -> bool:
    return "Records" not in obj and any(key in obj for key in _RECORD_KEYS)


def _first_line_is_object(doc: bytes) -> bool:
    line = doc.lstrip().split(b"\n", 1)[0]
    try:
        _record.decode(line)
    except (msgspec.MsgspecError, RecursionError):
        return False
    return True


def _iter_array(doc: bytes) -> Iterator[RecordItem]:
    try:
        items = _raw_list.decode(doc)
    except msgspec.MsgspecError as exc:
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


def open_stream(path: str) -> tuple[IO[bytes], HashingReader]:
    """A buffered, decompressed, hashing stream over a file of any size."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller through the returned stream
    magic = raw.read(2)
    raw.seek(0)
    inner: IO[bytes] = raw
    if magic == GZIP_MAGIC:
        inner = cast(IO[bytes], igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]
    hashing = HashingReader(inner)
    return io.BufferedReader(hashing, buffer_size=1 << 20), hashing


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
    # NDJSON when the first line is a whole record (also a file of one line, with no newline).
    first_line = head.lstrip().split(b"\n", 1)[0]
    try:
        first_object = _record.decode(first_line)
    except (msgspec.MsgspecError, RecursionError):
        first_object = None
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
