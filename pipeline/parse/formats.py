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
from typing import IO, Literal

import ijson  # type: ignore[import-untyped]
import msgspec
from isal import igzip

from pipeline.errors import ParseError

Raw = msgspec.Raw
GZIP_MAGIC = b"\x1f\x8b"
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
_encode = msgspec.json.Encoder()
_RECORD_HINTS = (b'"eventID"', b'"eventVersion"', b'"eventTime"', b'"eventName"')


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
    except (OSError, zlib.error) as exc:
        raise ParseError(f"corrupt gzip: {exc}") from None


def _first_byte(doc: bytes) -> bytes:
    stripped = doc.lstrip()
    return stripped[:1]


def _looks_like_record(text: bytes) -> bool:
    return any(hint in text for hint in _RECORD_HINTS)


def iter_document(doc: bytes) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a whole decompressed document. Raises ParseError for file-level faults."""
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
    except msgspec.DecodeError as exc:
        if b"\n" in doc.strip() and _first_line_is_object(doc):
            return "ndjson", _iter_ndjson(io.BytesIO(doc))
        raise ParseError(f"invalid JSON: {exc}") from None
    if envelope.Records is not None:
        return "records", (RecordItem(i, r) for i, r in enumerate(envelope.Records))
    # One JSON object without Records: a one-line NDJSON file if it is a record itself.
    if _looks_like_record(doc):
        return "ndjson", _iter_ndjson(io.BytesIO(doc))
    raise ParseError("JSON without Records: the object has no 'Records' list")


def _first_line_is_object(doc: bytes) -> bool:
    line = doc.lstrip().split(b"\n", 1)[0]
    try:
        _record.decode(line)
    except msgspec.MsgspecError:
        return False
    return True


def _iter_array(doc: bytes) -> Iterator[RecordItem]:
    try:
        items = _raw_list.decode(doc)
    except msgspec.MsgspecError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    return _decode_each(items)


def _iter_loose(doc: bytes) -> Iterator[RecordItem]:
    """Slow path for a Records list holding non-objects: decode element by element."""
    try:
        envelope = _loose_envelope.decode(doc)
    except msgspec.MsgspecError as exc:
        raise ParseError(f"Records is not a list: {exc}") from None
    return _decode_each(envelope.Records or [])


def _decode_each(items: list[Raw]) -> Iterator[RecordItem]:
    for index, raw in enumerate(items):
        try:
            yield RecordItem(index, _record.decode(raw))
        except msgspec.MsgspecError:
            yield RecordItem(index, None, bytes(raw), "record is not a JSON object")


def _iter_ndjson(stream: IO[bytes]) -> Iterator[RecordItem]:
    index = 0
    for line in stream:
        if not line.strip():
            continue
        try:
            yield RecordItem(index, _record.decode(line))
        except msgspec.MsgspecError as exc:
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
    inner: IO[bytes] = igzip.IGzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw
    hashing = HashingReader(inner)
    return io.BufferedReader(hashing, buffer_size=1 << 20), hashing


def iter_stream(stream: IO[bytes]) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a large document read incrementally. Raises ParseError for file faults."""
    head = stream.peek(1 << 16)[: 1 << 16] if hasattr(stream, "peek") else b""
    first = _first_byte(head)
    if not first:
        raise ParseError("empty file: no records")
    if first == b"[":
        return "array", _iter_ijson(stream, "item")
    if first != b"{":
        raise ParseError(f"not JSON: starts with {head.lstrip()[:16]!r}")
    first_line = head.lstrip().split(b"\n", 1)[0]
    if b"\n" in head.lstrip() and _looks_like_record(first_line) and b'"Records"' not in first_line:
        return "ndjson", _iter_ndjson(stream)
    return "records", _iter_ijson(stream, "Records.item")


def _iter_ijson(stream: IO[bytes], prefix: str) -> Iterator[RecordItem]:
    index = 0
    try:
        for item in ijson.items(stream, prefix, use_float=True):
            text = _encode.encode(item)
            if isinstance(item, dict):
                yield RecordItem(index, _record.decode(text))
            else:
                yield RecordItem(index, None, text, "record is not a JSON object")
            index += 1
    except EOFError:
        raise ParseError("truncated gzip: the compressed stream ends early") from None
    except (OSError, zlib.error) as exc:
        raise ParseError(f"corrupt gzip: {exc}") from None
    except ijson.JSONError as exc:
        raise ParseError(f"invalid JSON after {index} records: {exc}") from None
