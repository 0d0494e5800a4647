"""The streamed way: documents above the streaming threshold, read record by record from a
decompressing stream, so memory stays flat.

open_stream gives the stream: decompressed, hashed as found (HashingReader), lone surrogate
escapes read as U+FFFD as they pass (SurrogateFixer). iter_stream tells the format from the
stream's head as the in-memory path does (in_memory.iter_document; a first line longer than
the head is read whole where the hashing pass saw more lines after it), then reads NDJSON line
by line, or a Records document or an array with ijson (iter_ijson), through DepthGuard, which
ends a document nested deeper than msgspec reads before ijson builds such an item. When a
Records document gave no records, check_records_key tells an empty Records list, a single
record (read by iter_single) and a fault apart. Bytes that are not UTF-8 inside a record's
strings quarantine that record alone: ijson stops at them, and the streamed document is then
read again by Spans, which splits it into the records' texts without decoding them (the error
path only).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from itertools import chain
from typing import IO, cast

import ijson  # type: ignore[import-untyped]
import msgspec
from isal import igzip

from pipeline.errors import ParseError
from pipeline.parse.formats import (
    GZIP_FAULTS,
    GZIP_MAGIC,
    NO_RECORDS,
    RECORD_KEYS,
    UTF8_BOM,
    Format,
    RecordItem,
    decode_line,
    first_byte,
    gzip_fault,
    is_ndjson,
    is_object_line,
    is_record,
    is_records_key,
    iter_ndjson,
    record_decoder,
    str_decoder,
)
from pipeline.parse.text_faults import (
    SURROGATE_HINT,
    bad_key,
    fix_lone_surrogates,
    ijson_message,
    is_not_utf8,
    json_fault,
    safe_cut,
)

# Opens the streamed document again, from its first byte (as open_stream does), for a second
# reading when ijson stops at bytes that are not UTF-8 (iter_ijson).
Reopen = Callable[[], IO[bytes]]
# Streamed records come from ijson with numbers as int and Decimal (use_float=False): floats
# would lose digits and yajl's own integers overflow above 64 bits ("integer overflow" failed
# whole files). Decimals are written back as JSON numbers, not strings, so values are kept.
_encode = msgspec.json.Encoder(decimal_format="number")
# How much of a streamed document is looked at to tell NDJSON from a Records document.
_STREAM_HEAD = 1 << 20


# Anything but whitespace (as bytes.strip() sees it, which is_ndjson uses).
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")


class HashingReader(io.RawIOBase):
    """A readable stream that hashes and counts every byte read through it, and notes whether
    anything but whitespace follows the first line that holds any (`more_lines`, which
    iter_stream asks where a first line runs past the head it looks at)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.more_lines = False
        self._line = 0  # 0 before the first line that is not blank, 1 in it, 2 after it

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(buffer))
        n = len(chunk)
        buffer[:n] = chunk
        self._note(chunk)
        return n

    def read(self, size: int = -1) -> bytes:
        """The inner stream's bytes as they are (SurrogateFixer reads them so: no copy)."""
        chunk: bytes = self._inner.read(size)
        self._note(chunk)
        return chunk

    def _note(self, chunk: bytes) -> None:
        # A BOM is no text of the first line (iter_stream skips it): a file that starts with
        # one, then a blank line, has its first line after that.
        pos = len(UTF8_BOM) if self.size == 0 and chunk.startswith(UTF8_BOM) else 0
        self.sha256.update(chunk)
        self.size += len(chunk)
        if self.more_lines:
            return
        # memchr and a regex search in C, until the answer is known: a document on one line
        # (CloudTrail's own) costs one search for a line break per chunk.
        if self._line == 0:
            found = _NOT_BLANK.search(chunk, pos)
            if found is None:
                return
            self._line, pos = 1, found.end()
        if self._line == 1:
            end = chunk.find(b"\n", pos)
            if end < 0:
                return
            self._line, pos = 2, end + 1
        self.more_lines = _NOT_BLANK.search(chunk, pos) is not None


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
            hinted = b"\\" in data and SURROGATE_HINT.search(data) is not None
            cut = len(data) if self._eof else safe_cut(data, hinted)
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
    stream: IO[bytes], reopen: Reopen | None = None, *, more_lines: bool | None = None
) -> tuple[Format, Iterator[RecordItem]]:
    """Records of a large document read incrementally. Raises ParseError for file faults.
    `reopen`: the document again, for a Records document or an array with bytes that are not
    UTF-8 in its strings (without it, such a document is a file fault). `more_lines`: whether
    anything but whitespace follows the document's first line, when a pass over it told
    (HashingReader.more_lines); it decides NDJSON where the first line runs past the head,
    which is otherwise judged alone."""
    _skip_bom(stream)
    head = stream.peek(_STREAM_HEAD)[:_STREAM_HEAD] if hasattr(stream, "peek") else b""
    first = first_byte(head)
    if not first:
        raise ParseError("empty file: no records")
    if first == b"[":
        return "array", iter_ijson(stream, "item", reopen)
    if first != b"{":
        raise ParseError(f"not JSON: starts with {head.lstrip()[:16]!r}")
    # NDJSON as in memory (in_memory.iter_document): a first line that is a whole JSON object
    # with more after it (a header line, or a record), or one record on one line with no newline.
    if is_ndjson(head):
        return "ndjson", iter_ndjson(stream)
    if more_lines and not _shows_more_lines(head):
        # The first line (or the blank lines after it) goes on past the head: a record of an
        # export over a megabyte. It is read whole, as iter_ndjson reads every line; a document
        # on one line never is (nothing follows its line).
        lines = _first_line(stream)
        if is_object_line(lines[-1]):
            return "ndjson", iter_ndjson(chain(lines, stream))
        stream = cast(IO[bytes], _Prefixed(b"".join(lines), stream))
    first_object = decode_line(head.lstrip().split(b"\n", 1)[0])
    if first_object is not None and is_record(first_object):
        return "ndjson", iter_ndjson(stream)
    return "records", iter_ijson(stream, "Records.item", reopen)


def _shows_more_lines(head: bytes) -> bool:
    """Whether the head shows its first line's end and something but whitespace after it."""
    _, newline, rest = head.lstrip().partition(b"\n")
    return bool(newline) and bool(rest.strip())


def _first_line(stream: IO[bytes]) -> list[bytes]:
    """The lines read from the stream up to its first that is not blank (the last one)."""
    lines = []
    while True:
        line = stream.readline()
        lines.append(line)
        if not line or line.strip():
            return lines


class _Prefixed(io.RawIOBase):
    """A readable stream of `head`, bytes already read from `inner`, then of the rest of
    `inner`."""

    def __init__(self, head: bytes, inner: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


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
        if reopen is None or not is_not_utf8(exc):
            raise ParseError(f"invalid JSON: {ijson_message(exc)}") from None
        with reopen() as again:
            return _check_records_key_again(again)
    return _single_or_fault(keys)


def _single_or_fault(keys: set[str]) -> bool:
    if "Records" not in keys and any(key in keys for key in RECORD_KEYS):
        return True
    raise ParseError(NO_RECORDS)


def _check_records_key_again(stream: IO[bytes]) -> bool:
    """check_records_key for a document with bytes that are not UTF-8 in its strings, read with
    Spans. A top-level key that is not UTF-8 is a fault of the document, as in memory (where it
    makes the keys of a single record unknown), unless it has a Records list."""
    _skip_bom(stream)
    spans = Spans(stream)
    keys: set[str] = set()
    not_utf8: UnicodeDecodeError | None = None
    try:
        for token in spans.members():
            try:
                key = str_decoder.decode(fix_lone_surrogates(token))
            except UnicodeDecodeError as exc:
                not_utf8 = not_utf8 or exc
                spans.value()
                continue
            except (msgspec.MsgspecError, RecursionError) as exc:
                raise Malformed(f"a key is no JSON string ({exc})") from None
            keys.add(key)
            if key != "Records":
                spans.value()
                continue
            first = spans.peek()
            if first == b"[":
                return False
            value = spans.value()
            fault = json_fault(value)
            if fault is not None:
                raise Malformed(fault)
            if first != b"n":  # null
                kind = _KINDS.get(first, "number")
                raise ParseError(f"Records is not a list: it is {_KIND_NAMES.get(kind, kind)}")
        spans.end()
    except Malformed as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    except GZIP_FAULTS as exc:
        raise gzip_fault(exc) from None
    if not_utf8 is not None:
        raise ParseError(bad_key(not_utf8))
    return _single_or_fault(keys)


def iter_single(stream: IO[bytes], reopen: Reopen | None = None) -> Iterator[RecordItem]:
    """The one record of a streamed document that is a single record (`reopen` as for
    iter_stream)."""
    _skip_bom(stream)
    return iter_ijson(stream, "", reopen)


_KIND_NAMES = {"start_map": "an object", "string": "a string", "number": "a number"}
# ijson's event for a value, by its first byte (what Spans reads).
_KINDS = {b"{": "start_map", b'"': "string", b"t": "boolean", b"f": "boolean"}


# The deepest nesting a streamed document may have. msgspec, which reads every document in
# memory and every streamed record's text, stops at Python's recursion limit (1000, less the
# stack below it): nothing deeper is ever kept. ijson has no limit, and builds an item in
# memory that grows with the square of its depth (every level holds its own prefix): 80 KB of
# brackets 40,000 deep took 4 GB. DepthGuard stops the document before ijson reads past it.
MAX_DEPTH = 1000


class TooDeep(Exception):
    """The streamed document nests deeper than MAX_DEPTH (DepthGuard)."""


_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'"[]{}')
_PARENS = bytes.maketrans(b"[]{}", b"()()")
_PASSES = 64  # nesting within one chunk that the fast count follows; deeper: the exact scan
_OUTSIDE = re.compile(rb'[^"\[\]{}]*')  # outside strings, up to a quote or a bracket
_INSIDE = re.compile(rb'[^"\\]*')  # inside a string, up to its closing quote or an escape


class DepthGuard:
    """A readable stream of `inner`'s bytes that ends where the JSON they hold nests deeper
    than MAX_DEPTH: a read returns the bytes before the bracket that goes past it (ijson gives
    the items they complete), and the next one raises TooDeep. Memory stays that of a chunk.

    Brackets are counted outside strings, chunk by chunk, in C (bytes methods): escaped
    backslashes and quotes dropped, then everything but quotes and brackets, then the strings
    (between quotes), and the pairs of brackets that match within the chunk, pass after pass.
    What is left bounds the chunk's deepest point; only where that bound passes MAX_DEPTH (or
    the chunk nests more than _PASSES levels) is the chunk scanned byte by byte (_exact)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self._depth = 0
        self._in_string = False
        self._escaped = False  # the last chunk ended in a string's backslash: its next byte
        self._too_deep = False

    def read(self, size: int = -1) -> bytes:
        if self._too_deep:
            raise TooDeep
        chunk: bytes = self._inner.read(size)
        if chunk and not self._count(chunk):
            cut = self._exact(chunk)
            if cut is not None:
                self._too_deep = True
                if not cut:
                    raise TooDeep
                return chunk[:cut]
        return chunk

    def _count(self, chunk: bytes) -> bool:
        """Follows the chunk in C; False (nothing changed) where only _exact can tell."""
        data = chunk[1:] if self._escaped else chunk
        escaped = False
        if b"\\" in data:  # one byte, found with memchr: most chunks have none
            if b'\\"' in data:
                # A backslash escapes the byte after it; only a quote's escape matters here.
                # Pairs of backslashes go first (a run of them is read from its start), then the
                # quotes escaped.
                data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
            # A run of backslashes at the end, read from its start, may escape the next
            # chunk's first byte.
            escaped = (len(data) - len(data.rstrip(b"\\"))) % 2 == 1
        marks = data.translate(None, _NOT_STRUCTURAL)
        if self._in_string:
            marks = b'"' + marks
        # Two quotes side by side enclose no bracket (an empty string's, or the end of one
        # string and the start of the next): most strings go in one C pass, and no quote's
        # parity changes.
        marks = marks.replace(b'""', b"")
        in_string = False
        if b'"' in marks:
            parts = marks.split(b'"')
            in_string = len(parts) % 2 == 0
            marks = b"".join(parts[::2])
        brackets = marks.translate(_PARENS)
        passes = 0
        while b"()" in brackets:
            if passes == _PASSES:
                return False
            brackets = brackets.replace(b"()", b"")
            passes += 1
        closing = brackets.count(b")")  # what is left: ")))(((": the enclosing ones
        opening = len(brackets) - closing
        # Inside the chunk a point is enclosed by at most the brackets left open, and one pair
        # per pass.
        if self._depth + opening + passes > MAX_DEPTH:
            return False
        self._depth += opening - closing
        self._in_string, self._escaped = in_string, escaped
        return True

    def _exact(self, chunk: bytes) -> int | None:
        """Follows the chunk byte by byte (regex steps); where it goes past MAX_DEPTH, the
        offset of the bracket that does."""
        depth, in_string, escaped = self._depth, self._in_string, self._escaped
        pos, end = 0, len(chunk)
        while pos < end:
            if escaped:
                pos, escaped = pos + 1, False
            elif in_string:
                pos = _INSIDE.match(chunk, pos).end()  # type: ignore[union-attr]
                if pos < end:
                    if chunk[pos] == 0x5C:
                        escaped = True
                    else:
                        in_string = False
                    pos += 1
            else:
                pos = _OUTSIDE.match(chunk, pos).end()  # type: ignore[union-attr]
                if pos < end:
                    byte = chunk[pos]
                    if byte == 0x22:
                        in_string = True
                    elif byte in _OPENING:
                        depth += 1
                        if depth > MAX_DEPTH:
                            return pos
                    else:
                        depth -= 1
                    pos += 1
        self._depth, self._in_string, self._escaped = depth, in_string, escaped
        return None


def iter_ijson(
    stream: IO[bytes], prefix: str, reopen: Reopen | None = None
) -> Iterator[RecordItem]:
    """The items at `prefix` ("Records.item", "item", or "" for the whole document), as ijson
    reads them, through DepthGuard. ijson stops at a string that is not UTF-8 (yajl: "invalid
    bytes in UTF8 string"; or Python's decoder, for bytes yajl lets pass): with `reopen`, the
    document is then read again with Spans from the item ijson stopped in, so that the item is
    quarantined alone (RowBuilder names its field) and the items after it are read. Clean
    documents never pay for it: this is the error path."""
    index = 0
    again = False
    try:
        for item in ijson.items(DepthGuard(stream), prefix, use_float=False):
            text = _encode.encode(item)
            if isinstance(item, dict):
                yield RecordItem(index, record_decoder.decode(text))
            else:
                yield RecordItem(index, None, text, "record is not a JSON object")
            index += 1
    except GZIP_FAULTS as exc:
        raise gzip_fault(exc) from None
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        if reopen is None or not is_not_utf8(exc):
            raise ParseError(f"invalid JSON after {index} records: {ijson_message(exc)}") from None
        again = True
    except (RecursionError, TooDeep):
        raise ParseError(f"invalid JSON after {index} records: nested too deeply") from None
    if again and reopen is not None:
        yield from _iter_spans(reopen, prefix, index)


def _iter_spans(reopen: Reopen, prefix: str, start: int) -> Iterator[RecordItem]:
    """The items at `prefix` from the `start`-th on (those before it were read by ijson), each
    decoded from its text as found, as the in-memory path decodes them
    (in_memory._decode_each)."""
    index = 0
    with reopen() as stream:
        _skip_bom(stream)
        spans = Spans(stream)
        try:
            for text in spans.items(prefix):
                if index >= start:
                    yield _span_item(index, text)
                index += 1
        except Malformed as exc:
            raise ParseError(f"invalid JSON after {index} records: {exc}") from None
        except GZIP_FAULTS as exc:
            raise gzip_fault(exc) from None


def _span_item(index: int, text: bytes) -> RecordItem:
    """The item whose text is `text`: a record (its values as found, bytes that are not UTF-8
    included: RowBuilder quarantines it), or why it is none. Raises Malformed for text that is
    no JSON, a fault of the whole document as in memory."""
    try:
        return RecordItem(index, record_decoder.decode(text))
    except UnicodeDecodeError as exc:  # a key (values are kept raw)
        reason = bad_key(exc)
    except msgspec.ValidationError:  # JSON, but no object
        reason = "record is not a JSON object"
    except msgspec.DecodeError as exc:
        raise Malformed(str(exc)) from None
    except RecursionError:
        raise Malformed("nested too deeply") from None
    fault = json_fault(text)
    if fault is not None:
        raise Malformed(fault)
    return RecordItem(index, None, text, reason)


class Malformed(Exception):
    """Text that is no JSON where Spans reads (its message says what is wrong)."""


_WHITESPACE = re.compile(rb"[ \t\r\n]*")
# Inside a container, up to its next bracket: bytes outside strings, and whole strings. It stops
# at a quote where the string it opens does not end in the bytes read so far.
_CONTAINER_TEXT = re.compile(rb'[^"\[\]{}]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"\[\]{}]*)*', re.DOTALL)
_STRING_TAIL = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # after the opening quote
_SCALAR = re.compile(rb'[^ \t\r\n,:\[\]{}"]*')  # a number, true, false or null (checked later)
_OPENING = frozenset(b"[{")
_SPAN_CHUNK = 1 << 20


class Spans:
    """The texts of a streamed JSON document's values, as they are (undecoded), found by
    matching brackets outside strings: a string is skipped whatever bytes it holds. Each
    value's syntax is left to the decoder of its text (_span_item, json_fault). Reads the
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
            raise Malformed(
                f"expected {char.decode()!r}, found {found.decode('latin-1')!r}"
                if found
                else f"expected {char.decode()!r}, the document ends"
            )

    def value(self) -> bytes:
        """The text of the value that comes next, read."""
        first = self.peek()
        if not first:
            raise Malformed("the document ends where a value should be")
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
                raise Malformed("the document ends inside a string")

    def _scalar_end(self) -> int:
        while True:
            end = _SCALAR.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if end < len(self._buf) or not self._more():
                break
        if end == self._pos:
            raise Malformed(f"unexpected {self._buf[end : end + 1].decode('latin-1')!r}")
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
                raise Malformed("the document ends inside a value")

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
                raise Malformed("a key is no string")
            key = self.value()
            self.expect(b":")
            yield key
            if not self.take(b","):
                self.expect(b"}")
                return

    def end(self) -> None:
        """Only whitespace may follow the document (as yajl requires)."""
        if self.peek():
            raise Malformed("trailing data after the document")

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
                if is_records_key(key) and self.peek() == b"[":
                    yield from self.elements()
                else:
                    value = self.value()
                    fault = json_fault(value)
                    if fault is not None:
                        raise Malformed(fault)
        self.end()
