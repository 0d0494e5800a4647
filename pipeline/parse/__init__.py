"""Stage 2, parse: the bytes of one source object -> typed rows (Arrow tables).

Entry point: `ObjectParser`. It detects the container, decodes records, flattens each into the
events schema, and keeps what it could not use (with the reason) for quarantine. A file-level
fault raises ParseError; a bad record only quarantines that record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec
import pyarrow as pa

from pipeline.parse.fastpath import fast_table
from pipeline.parse.formats import GZIP_FAULTS, Format, RecordItem, gzip_fault
from pipeline.parse.in_memory import decompress, iter_document
from pipeline.parse.records import RecordError, RowBuilder
from pipeline.parse.streaming import check_records_key, iter_single, iter_stream, open_stream

_encode = msgspec.json.Encoder()


@dataclass(frozen=True)
class QuarantinedRecord:
    index: int
    reason: str
    text: bytes  # the record as found (JSON text), so nothing is lost


@dataclass
class ObjectParser:
    """Parses one source object; iterate `tables()`, then read the totals."""

    source_uri: str
    run_id: str
    fallback_account: str | None = None
    # Documents larger than this are streamed (see IngestSettings.stream_threshold_mb).
    stream_threshold_bytes: int = 128 << 20
    # Rows per emitted table when streaming: bounds memory for files of any size.
    chunk_rows: int = 100_000
    format: Format | None = None
    sha256: str = ""
    decompressed_bytes: int = 0
    records: int = 0
    rows: int = 0
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    # False once the whole document is known to be ASCII: then no value can be invalid UTF-8
    # and the per-record check is skipped (the common case, and the hot path).
    _check_utf8: bool = field(default=True, init=False, repr=False)

    def tables(self, source: bytes | Path) -> Iterator[pa.Table]:
        """Arrow tables (staged schema) of the object's valid records, in their order in the
        object (staging sorts by event_time where it pays: warehouse/stage.py)."""
        if isinstance(source, Path) and source.stat().st_size > self.stream_threshold_bytes // 8:
            yield from self._stream(source)
            return
        data = source.read_bytes() if isinstance(source, Path) else source
        doc = decompress(data)
        del data
        self.sha256 = hashlib.sha256(doc).hexdigest()
        self.decompressed_bytes = len(doc)
        ascii_only = doc.isascii()
        self._check_utf8 = not ascii_only
        if doc[:64].lstrip().startswith(b"{"):
            fast = fast_table(
                doc,
                source_uri=self.source_uri,
                source_sha256=self.sha256,
                run_id=self.run_id,
                fallback_account=self.fallback_account,
                ascii_only=ascii_only,
            )
            if fast is not None:
                self.format = "records"
                table, self.records = fast
                self.rows = table.num_rows
                yield table
                return
        self.format, items = iter_document(doc)
        builder = self._builder()
        for item in items:
            self._add(builder, item)
        if builder.rows:
            yield builder.to_table()

    def _stream(self, path: Path) -> Iterator[pa.Table]:
        # Two passes: every row carries the object's hash, so hash first (gunzip with ISA-L runs
        # at several hundred MB/s; it also notes whether lines follow the first, which tells
        # NDJSON whose first line is longer than iter_stream's head), then parse record by record.
        stream, hashing = open_stream(str(path), fix_surrogates=False)
        with stream:
            try:
                while stream.read(1 << 20):
                    pass
            except GZIP_FAULTS as exc:
                raise gzip_fault(exc) from None
        self.sha256 = hashing.sha256.hexdigest()
        self.decompressed_bytes = hashing.size

        def reopen() -> IO[bytes]:
            # The document again from its start, for the records after one whose strings are
            # not UTF-8, which ijson stops at (streaming.iter_ijson): rare, the error path.
            return open_stream(str(path))[0]

        stream, _ = open_stream(str(path))
        with stream:
            self.format, items = iter_stream(stream, reopen, more_lines=hashing.more_lines)
            builder = self._builder()
            for item in items:
                self._add(builder, item)
                if builder.rows >= self.chunk_rows:
                    yield builder.to_table()
                    builder = self._builder()
            if builder.rows:
                yield builder.to_table()
        if self.format == "records" and self.records == 0:
            # ijson yields nothing for "Records": [], for a document without a Records list and
            # for one record on its own; tell them apart as the in-memory path does (rare: a
            # further pass is fine).
            stream, _ = open_stream(str(path))
            with stream:
                single = check_records_key(stream, reopen)
            if single:
                self.format = "ndjson"
                stream, _ = open_stream(str(path))
                with stream:
                    builder = self._builder()
                    for item in iter_single(stream, reopen):
                        self._add(builder, item)
                    if builder.rows:
                        yield builder.to_table()

    def _builder(self) -> RowBuilder:
        return RowBuilder(
            self.source_uri,
            self.sha256,
            self.run_id,
            self.fallback_account,
            check_utf8=self._check_utf8,
        )

    def _add(self, builder: RowBuilder, item: RecordItem) -> None:
        self.records += 1
        if item.record is None:
            self.quarantined.append(
                QuarantinedRecord(item.index, item.error or "not a record", item.raw or b"")
            )
            return
        try:
            builder.add(item.record, item.index)
        except RecordError as exc:
            self.quarantined.append(
                QuarantinedRecord(item.index, str(exc), _encode.encode(item.record))
            )
            return
        self.rows += 1
