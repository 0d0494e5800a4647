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

import msgspec
import pyarrow as pa

from pipeline.errors import ParseError
from pipeline.parse.formats import (
    Format,
    RecordItem,
    decompress,
    iter_document,
    iter_stream,
    open_stream,
)
from pipeline.parse.records import RecordError, RowBuilder

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

    def tables(self, source: bytes | Path) -> Iterator[pa.Table]:
        """Arrow tables (staged schema) of the object's valid records."""
        if isinstance(source, Path) and source.stat().st_size > self.stream_threshold_bytes // 8:
            yield from self._stream(source)
            return
        data = source.read_bytes() if isinstance(source, Path) else source
        doc = decompress(data)
        del data
        self.sha256 = hashlib.sha256(doc).hexdigest()
        self.decompressed_bytes = len(doc)
        self.format, items = iter_document(doc)
        builder = self._builder()
        for item in items:
            self._add(builder, item)
        if builder.rows:
            yield builder.to_table()

    def _stream(self, path: Path) -> Iterator[pa.Table]:
        # Two passes: every row carries the object's hash, so hash first (gunzip with ISA-L runs
        # at several hundred MB/s), then parse record by record.
        stream, hashing = open_stream(str(path))
        with stream:
            try:
                while stream.read(1 << 20):
                    pass
            except EOFError:
                raise ParseError("truncated gzip: the compressed stream ends early") from None
            except OSError as exc:
                raise ParseError(f"corrupt gzip: {exc}") from None
        self.sha256 = hashing.sha256.hexdigest()
        self.decompressed_bytes = hashing.size
        stream, _ = open_stream(str(path))
        with stream:
            self.format, items = iter_stream(stream)
            builder = self._builder()
            for item in items:
                self._add(builder, item)
                if builder.rows >= self.chunk_rows:
                    yield builder.to_table()
                    builder = self._builder()
            if builder.rows:
                yield builder.to_table()

    def _builder(self) -> RowBuilder:
        return RowBuilder(self.source_uri, self.sha256, self.run_id, self.fallback_account)

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
