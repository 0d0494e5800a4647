"""Source bytes -> CloudTrail records, whatever the container: the formats, and what both ways
of reading them share.

Formats are detected by content, not by name: gzip by its magic bytes; then a `{"Records": [...]}`
document (what CloudTrail writes), a JSON array of records, or NDJSON (one record per line, as
SIEMs export). Small documents are decoded in one piece (in_memory.py, fast); documents above the
streaming threshold are read record by record from a decompressing stream (streaming.py), so
memory stays flat. Both ways read the same records: a lone UTF-16 surrogate escape as U+FFFD
(text_faults.fix_lone_surrogates), a document with the key "Records" twice as both lists
(in_memory.records_key_once), a first line that is a whole JSON object with more lines after it
as NDJSON (is_ndjson). Bytes that are not UTF-8 inside a record's strings quarantine that record
alone, on both ways.

This module holds what both ways share: what every reader yields (RecordItem), how a format is
told (the gzip magic, a BOM, a record by its keys, NDJSON, the key "Records" however spelt), and
the NDJSON reader, which reads lines the same way from memory and from a stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, cast

import msgspec
from isal.igzip_lib import IsalError

from pipeline.errors import ParseError
from pipeline.parse.text_faults import bad_key, fix_lone_surrogates, json_fault

Raw = msgspec.Raw
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# What a damaged gzip stream raises: zlib's and gzip's errors, and ISA-L's own (not an OSError).
GZIP_ERRORS: tuple[type[Exception], ...] = (OSError, zlib.error, cast(type[Exception], IsalError))
# How a gzip stream fails while it is read: it ends early (EOFError) or is corrupt.
GZIP_FAULTS: tuple[type[Exception], ...] = (EOFError, *GZIP_ERRORS)
Record = dict[str, Raw]
Format = Literal["records", "array", "ndjson"]
record_decoder = msgspec.json.Decoder(Record)
str_decoder = msgspec.json.Decoder(str)
RECORD_KEYS = ("eventID", "eventVersion", "eventTime", "eventName")
RECORDS_KEY = b'"Records"'


@dataclass(frozen=True)
class RecordItem:
    """One record of a source object, or why the item at that position is not one."""

    index: int
    record: Record | None
    raw: bytes | None = None  # the item's text, kept for quarantine when record is None
    error: str | None = None


def first_byte(doc: bytes) -> bytes:
    stripped = doc.lstrip()
    return stripped[:1]


NO_RECORDS = "JSON without Records: the object has no 'Records' list"


def is_record(obj: Record) -> bool:
    return "Records" not in obj and any(key in obj for key in RECORD_KEYS)


def is_ndjson(head: bytes) -> bool:
    """Whether a document (or the head of a streamed one) is NDJSON: its first line is a whole
    JSON object and more follows it. Such a document is no one JSON value, whatever its first
    line holds (a SIEM export's header line, a Records document on one line): each line is then
    a record, or quarantined alone."""
    first_line, _, rest = head.lstrip().partition(b"\n")
    return bool(rest.strip()) and is_object_line(first_line)


def is_object_line(line: bytes) -> bool:
    """Whether a line is a whole JSON object: what makes NDJSON of a document whose first line
    it is, when more lines follow it (is_ndjson)."""
    if decode_line(line) is not None:
        return True
    # A whole object whose keys are not all UTF-8: its line is quarantined alone.
    return line.lstrip()[:1] == b"{" and json_fault(line) is None


def decode_line(line: bytes) -> Record | None:
    """One line as a JSON object, lone surrogate escapes read as U+FFFD; None if it is none."""
    for text in (line, fix_lone_surrogates(line)):
        try:
            return record_decoder.decode(text)
        except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
            pass
    return None


def iter_ndjson(lines: Iterable[bytes]) -> Iterator[RecordItem]:
    """The records of NDJSON's lines (a stream, or lines read from it chained to it)."""
    index = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            yield RecordItem(index, record_decoder.decode(line))
        except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError) as exc:
            record = decode_line(line)  # lone surrogate escapes (rare: only on an error)
            if record is not None:
                yield RecordItem(index, record)
            else:
                yield RecordItem(index, None, line.rstrip(b"\r\n"), _line_fault(line, exc))
        index += 1


def _line_fault(line: bytes, exc: Exception) -> str:
    """Why an NDJSON line is quarantined: a key that is not UTF-8 in a line that is JSON, or
    what makes it no JSON."""
    if isinstance(exc, UnicodeDecodeError):
        fault = json_fault(line)
        return bad_key(exc) if fault is None else f"invalid JSON line: {fault}"
    return f"invalid JSON line: {exc}"


def decode_str(token: bytes) -> str | None:
    try:
        text: str | None = str_decoder.decode(fix_lone_surrogates(token))
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None
    return text


def is_records_key(token: bytes) -> bool:
    """Whether a key's JSON text is "Records" (spelt with escapes, maybe)."""
    return token == RECORDS_KEY or (b"\\" in token and decode_str(token) == "Records")


def gzip_fault(exc: Exception) -> ParseError:
    """The ParseError for a gzip stream that failed while read (one of GZIP_FAULTS)."""
    if isinstance(exc, EOFError):
        return ParseError("truncated gzip: the compressed stream ends early")
    return ParseError(f"corrupt gzip: {exc}")
