"""The in-memory way: a small document, decompressed whole and decoded in one piece by msgspec
(fast).

decompress gunzips by magic bytes; iter_document tells the format by content and reads the
records: a Records document, an array, NDJSON (formats.iter_ndjson) or a single record. Bytes
that are not UTF-8 inside a record's strings quarantine that record alone: msgspec leaves them in
its raw values (RowBuilder names the field), and a key that is not UTF-8 quarantines its record
(_decode_each). A document with the key "Records" twice (no CloudTrail writer does it: msgspec
keeps the last list only) is read as both lists (records_key_once, which the fast path asks too;
repeats_records_key), with the streamed readers (ijson, and Spans past bytes that are not
UTF-8), as the streaming path reads it: this module imports from streaming.py, never the reverse.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import ijson  # type: ignore[import-untyped]
import msgspec
import pyarrow as pa
from isal import igzip

from pipeline.errors import ParseError
from pipeline.parse.formats import (
    GZIP_FAULTS,
    GZIP_MAGIC,
    NO_RECORDS,
    RECORDS_KEY,
    UTF8_BOM,
    Format,
    Raw,
    Record,
    RecordItem,
    decode_str,
    first_byte,
    gzip_fault,
    is_ndjson,
    is_record,
    is_records_key,
    iter_ndjson,
    record_decoder,
)
from pipeline.parse.streaming import Malformed, Spans, check_records_key, iter_ijson
from pipeline.parse.text_faults import bad_key, fix_lone_surrogates, is_not_utf8


class _Envelope(msgspec.Struct):
    Records: list[Record] | None = None


class _LooseEnvelope(msgspec.Struct):
    Records: list[Raw] | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_loose_envelope = msgspec.json.Decoder(_LooseEnvelope)
_records = msgspec.json.Decoder(list[Record])
_raw_list = msgspec.json.Decoder(list[Raw])


def decompress(data: bytes) -> bytes:
    """Gunzip when the bytes are gzip (by magic number), else return them unchanged."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        out: bytes = igzip.decompress(data)  # type: ignore[no-untyped-call]
        return out
    except GZIP_FAULTS as exc:
        raise gzip_fault(exc) from None


def iter_document(doc: bytes) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a whole decompressed document. Raises ParseError for file-level faults."""
    if doc.startswith(UTF8_BOM):  # exports written on Windows start with one
        doc = doc[len(UTF8_BOM) :]
    first = first_byte(doc)
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
        if is_ndjson(doc):
            return "ndjson", iter_ndjson(io.BytesIO(doc))
        fixed = fix_lone_surrogates(doc)  # msgspec stopped before reaching one, maybe
        if fixed is not doc:
            return iter_document(fixed)
        if repeats_records_key(doc):
            return "records", _iter_records_twice(doc)
        return "records", _iter_loose(doc)
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    except msgspec.DecodeError as exc:
        if is_ndjson(doc):
            return "ndjson", iter_ndjson(io.BytesIO(doc))
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
        record = record_decoder.decode(doc)
    except UnicodeDecodeError as exc:  # its keys cannot be told (the streamed path says the same)
        raise ParseError(bad_key(exc)) from None
    if is_record(record):
        return "ndjson", iter([RecordItem(0, record)])
    raise ParseError(NO_RECORDS)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string token
_RECORDS_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
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
    if RECORDS_KEY in before:
        return False
    if b"\\u" in before:  # a key may be spelt with escapes: decode the strings that have one
        for token in _STRING.findall(before):
            if b"\\u" in token and decode_str(token) == "Records":
                return False
    return True


def repeats_records_key(doc: bytes) -> bool:
    """Whether the document's top-level object has the key "Records" more than once (however
    it is spelt). A search through the document, and a parse only where the key's text occurs
    twice (anywhere: in a value, in a nested object)."""
    spelt = len(_RECORDS_SPELT.findall(doc)) if b"\\u" in doc else doc.count(RECORDS_KEY)
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
        if is_not_utf8(exc):  # msgspec reads such a document (and kept the last list only)
            return _counts_records_keys(doc)
    except RecursionError:
        pass  # judged by the decoder that reads the document next
    return False


def _counts_records_keys(doc: bytes) -> bool:
    """repeats_records_key for a document with strings that are not UTF-8 (read with Spans)."""
    spans = Spans(io.BytesIO(doc))
    keys = 0
    try:
        for key in spans.members():
            keys += is_records_key(key)
            if keys > 1:
                return True
            spans.value()
    except Malformed:
        pass  # judged by the decoder that reads the document next
    return False


def _iter_records_twice(doc: bytes) -> Iterator[RecordItem]:
    """The records of every "Records" list of a document, in order, read as the streaming path
    reads them (ijson), faults included."""
    found = 0
    for item in iter_ijson(io.BytesIO(doc), "Records.item", lambda: io.BytesIO(doc)):
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
            yield RecordItem(index, record_decoder.decode(raw))
        except (msgspec.MsgspecError, RecursionError):
            yield RecordItem(index, None, bytes(raw), "record is not a JSON object")
        except UnicodeDecodeError as exc:
            yield RecordItem(index, None, bytes(raw), bad_key(exc))
