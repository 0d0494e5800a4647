"""Append the columns of one Parquet file to another without decoding any column data.

The output is base's bytes up to its footer, then extra's bytes between its magic and its footer
(column chunks, bloom filters, page indexes), then a new footer describing both. Parquet locates
every page by absolute file offset, so a row group's chunks may live anywhere in the file: extra's
chunks for row group i simply sit after all of base's data, and only extra's offsets change (by
`delta`, the distance its data moved).

One structure inside the copied bytes holds absolute offsets itself: the OffsetIndex (page
locations). Extra's offset indexes are therefore re-encoded with shifted page offsets and written
after the copied region; the stale originals stay behind as unreferenced bytes.

Base's footer is only scanned, never decoded: its column chunks and schema elements (all but the
root) go into the new footer as the bytes they were, and so does every FileMetaData or RowGroup
field the merge does not change. Only extra's column chunks (few) are decoded and re-encoded.

Several base files with identical schemas may be concatenated row group by row group: base k's
data region lands right after base k-1's, so base k's offsets (column chunks, offset indexes,
RowGroup.file_offset) move by the length of the regions before it, exactly as extra's do. The
first base's data does not move, so its chunks stay the bytes they were.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.errors import WarehouseError
from pipeline.warehouse.thrift_compact import (
    CType,
    EncodedField,
    Expand,
    FieldSpan,
    ScannedStruct,
    Struct,
    ThriftError,
    ThriftList,
    Value,
    decode_struct,
    decode_value,
    encode_fields,
    encode_list,
    encode_struct,
    encode_value,
    scan_list,
    scan_struct,
)

MAGIC = b"PAR1"
ENCRYPTED_MAGIC = b"PARE"  # files whose footer is encrypted
_TAIL_LEN = 8  # footer length (u32 little endian) + magic
# No valid offset points before the leading magic: writers use 0 for "not set" (pyarrow and DuckDB
# write ColumnChunk.file_offset = 0), and such values must stay 0 rather than move.
_FIRST_DATA_OFFSET = len(MAGIC)
_COPY_BLOCK = 8 << 20
# copy_file_range cannot copy between these files (other filesystem, no kernel support): copy
# through user space instead.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


class _FileMetaData:
    """Field ids in parquet.thrift."""

    SCHEMA = 2
    NUM_ROWS = 3
    ROW_GROUPS = 4
    KEY_VALUE_METADATA = 5
    COLUMN_ORDERS = 7
    ENCRYPTION_ALGORITHM = 8
    FOOTER_SIGNING_KEY_METADATA = 9


class _SchemaElement:
    NAME = 4
    NUM_CHILDREN = 5


class _RowGroup:
    COLUMNS = 1
    TOTAL_BYTE_SIZE = 2
    NUM_ROWS = 3
    FILE_OFFSET = 5
    TOTAL_COMPRESSED_SIZE = 6
    ORDINAL = 7


class _ColumnChunk:
    FILE_PATH = 1
    FILE_OFFSET = 2
    META_DATA = 3
    OFFSET_INDEX_OFFSET = 4
    OFFSET_INDEX_LENGTH = 5
    COLUMN_INDEX_OFFSET = 6
    CRYPTO_METADATA = 8
    ENCRYPTED_COLUMN_METADATA = 9


class _ColumnMetaData:
    TOTAL_COMPRESSED_SIZE = 7
    DATA_PAGE_OFFSET = 9
    INDEX_PAGE_OFFSET = 10
    DICTIONARY_PAGE_OFFSET = 11
    BLOOM_FILTER_OFFSET = 14


_OFFSET_INDEX_PAGE_LOCATIONS = 1
_PAGE_LOCATION_OFFSET = 1
_KEY_VALUE_KEY = 1
_ARROW_SCHEMA_KEY = b"ARROW:schema"
# The FileMetaData lists whose elements the merge reads or copies one by one.
_EXPAND: Expand = {
    _FileMetaData.SCHEMA: {},
    _FileMetaData.ROW_GROUPS: {_RowGroup.COLUMNS: {}},
    _FileMetaData.KEY_VALUE_METADATA: {},
}


@dataclass(frozen=True)
class _Element:
    """One SchemaElement: its encoding, and the values the merge reads (None when absent)."""

    encoded: bytes
    name: Value | None
    num_children: Value | None


@dataclass(frozen=True)
class _Group:
    """One RowGroup: its fields' spans in the footer, its column chunks' encodings, and the
    values the merge reads (None when absent)."""

    fields: list[FieldSpan]
    chunks: list[bytes]
    num_rows: Value | None
    total_byte_size: Value | None
    total_compressed_size: Value | None


@dataclass(frozen=True)
class _Footer:
    path: Path
    fd: int  # kept open until the copy: the data copied is the data the footer describes
    start: int  # offset of the footer's first byte: the data region ends here
    data: bytes  # the encoded FileMetaData
    meta: ScannedStruct  # FileMetaData, its _EXPAND lists scanned
    schema: list[_Element]
    row_groups: list[_Group]

    @property
    def fields(self) -> list[FieldSpan]:
        return self.meta.fields

    def value(self, span: FieldSpan) -> bytes:
        return self.data[span[2] : span[3]]


@dataclass(frozen=True)
class _PlacedGroup:
    """A base's row group in the output: the chunks' encodings (moved by `shift`, the distance
    its file's data moved) replace the group's own."""

    footer: _Footer
    group: _Group
    chunks: list[bytes]
    shift: int


@dataclass(frozen=True)
class ScannedFooter:
    """A Parquet file's footer, scanned once ahead of an append_columns call that names the
    file as a base. Scanning a base's footer is most of that call's work, and it does not
    depend on the columns to append, so a caller can do it while those are being computed.
    The file's identity is kept: append_columns scans again if the file changed since."""

    path: Path
    identity: tuple[int, int, int]  # inode, size, mtime_ns
    footer: _Footer

    @property
    def schema_key(self) -> bytes:
        """As schema_key(path), from the scanned footer."""
        return _schema_bytes(self.footer)


def scan_footer(path: Path) -> ScannedFooter:
    """The footer of `path`, scanned for a later append_columns call."""
    with _open(path) as fd:
        footer = _read_footer(path, fd)
        identity = _identity(fd)
    return ScannedFooter(path, identity, replace(footer, fd=-1))


def _identity(fd: int) -> tuple[int, int, int]:
    stat = os.fstat(fd)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _base_footer(base: Path | ScannedFooter, fd: int) -> _Footer:
    if isinstance(base, ScannedFooter) and _identity(fd) == base.identity:
        return replace(base.footer, fd=fd)
    path = base.path if isinstance(base, ScannedFooter) else base
    return _read_footer(path, fd)


def append_columns(
    bases: Path | ScannedFooter | Sequence[Path | ScannedFooter],
    extra: Path | ScannedFooter,
    out: Path,
    extra_row_groups: range | None = None,
) -> None:
    """Write `out`: the bases' row groups one after the other (their columns), each followed
    by extra's columns of the row group at the same position, copying the encoded column chunks
    as they are. The bases need identical schemas; extra needs the bases' row groups (count and
    rows, in order) and no column name in common with them. `out` appears whole or not at all
    (it may be one of the inputs). Any input may be given with its footer already scanned
    (scan_footer).

    `extra_row_groups` takes only those of extra's row groups (and only their bytes): one
    extra file can then hold the columns to append to many bases, written at once. Their
    chunks must not have column indexes or bloom filters (those lie outside the row groups'
    bytes); offset indexes are relocated as always."""
    given = [bases] if isinstance(bases, Path | ScannedFooter) else list(bases)
    if not given:
        raise WarehouseError("no base file to append columns to", hint="pass at least one base")
    with ExitStack() as stack:
        base_footers = [_base_footer(b, stack.enter_context(_open(_path(b)))) for b in given]
        extra_footer = _base_footer(extra, stack.enter_context(_open(_path(extra))))
        extra_footer, extra_chunks, region = _extra_part(extra_footer, extra_row_groups)
        _check_same_schema(base_footers)
        _check_compatible(base_footers, extra_footer)
        # Where each base's data region [4, start) lands in `out`, then extra's region.
        placements: list[int] = []
        placement = _FIRST_DATA_OFFSET
        for footer in base_footers:
            placements.append(placement)
            placement += footer.start - _FIRST_DATA_OFFSET
        delta = placement - region[0]
        # Relocated offset indexes go right after extra's copied region: the later bases',
        # then extra's.
        index_start = placement + region[1] - region[0]
        offset_indexes = bytearray()
        groups: list[_PlacedGroup] = []
        for footer, base_placement in zip(base_footers, placements, strict=True):
            shift = base_placement - _FIRST_DATA_OFFSET
            if not shift:
                groups += (_PlacedGroup(footer, g, g.chunks, 0) for g in footer.row_groups)
                continue
            for group in footer.row_groups:
                encoded: list[bytes] = []
                for chunk in group.chunks:
                    with _footer_errors(footer.path):
                        moved, index = _move_encoded_chunk(
                            footer, chunk, shift, index_start + len(offset_indexes)
                        )
                    encoded.append(moved)
                    offset_indexes += index
                groups.append(_PlacedGroup(footer, group, encoded, shift))
        offset_indexes += _relocate_offset_indexes(
            extra_footer, extra_chunks, delta, index_start + len(offset_indexes)
        )
        metadata = _merge_metadata(base_footers, groups, extra_footer, extra_chunks, delta)
        tail = bytes(offset_indexes) + metadata + len(metadata).to_bytes(4, "little") + MAGIC
        _write_output(out, base_footers, extra_footer, region, tail)


def _path(file: Path | ScannedFooter) -> Path:
    return file.path if isinstance(file, ScannedFooter) else file


def _extra_part(
    footer: _Footer, row_groups: range | None
) -> tuple[_Footer, list[list[Struct]], tuple[int, int]]:
    """extra as the merge uses it: its footer with only the chosen row groups, their chunks
    decoded, and the byte range [start, end) to copy (all of its data without a choice)."""
    if row_groups is None:
        with _footer_errors(footer.path):
            chunks = [[decode_struct(c) for c in g.chunks] for g in footer.row_groups]
        return footer, chunks, (_FIRST_DATA_OFFSET, footer.start)
    if row_groups.step != 1 or not 0 <= row_groups.start <= row_groups.stop <= len(
        footer.row_groups
    ):
        raise WarehouseError(
            f"row groups {row_groups.start} to {row_groups.stop - 1} of {footer.path} do not"
            f" exist: it has {len(footer.row_groups)}",
            hint="choose consecutive row groups of extra",
            extra=str(footer.path),
        )
    chosen = footer.row_groups[row_groups.start : row_groups.stop]
    start, end = footer.start, _FIRST_DATA_OFFSET
    with _footer_errors(footer.path):
        chunks = [[decode_struct(c) for c in g.chunks] for g in chosen]
        for chunk in (c for group in chunks for c in group):
            meta = chunk.get_struct(_ColumnChunk.META_DATA)
            if (
                meta is None
                or chunk.get_int(_ColumnChunk.COLUMN_INDEX_OFFSET) is not None
                or meta.get_int(_ColumnMetaData.BLOOM_FILTER_OFFSET) is not None
            ):
                raise WarehouseError(
                    f"{footer.path} has column indexes, bloom filters or chunks without"
                    " metadata: its row groups cannot be taken apart",
                    hint="append all of its row groups, or write it without page indexes",
                    extra=str(footer.path),
                )
            first = meta.get_int(_ColumnMetaData.DATA_PAGE_OFFSET) or 0
            dictionary = meta.get_int(_ColumnMetaData.DICTIONARY_PAGE_OFFSET)
            if dictionary is not None and dictionary >= _FIRST_DATA_OFFSET:
                first = min(first, dictionary)
            size = meta.get_int(_ColumnMetaData.TOTAL_COMPRESSED_SIZE) or 0
            if first < _FIRST_DATA_OFFSET or first + size > footer.start:
                raise ThriftError(f"a column chunk at {first} ({size} bytes) is out of bounds")
            start, end = min(start, first), max(end, first + size)
    if not chosen:
        start = end = _FIRST_DATA_OFFSET
    return replace(footer, row_groups=chosen), chunks, (start, end)


def schema_key(path: Path) -> bytes:
    """The encoded schema element list of a Parquet file, from its footer alone: files whose
    keys are equal can be the bases of one `append_columns` call."""
    with _open(path) as fd:
        footer = _read_footer(path, fd)
    return _schema_bytes(footer)


def row_group_rows(path: Path) -> list[int]:
    """The number of rows of each row group of a Parquet file, from its footer alone."""
    with _open(path) as fd:
        footer = _read_footer(path, fd)
    return [_as_int(group.num_rows, _RowGroup.NUM_ROWS) or 0 for group in footer.row_groups]


@contextmanager
def _open(path: Path) -> Iterator[int]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise WarehouseError(
            f"cannot open {path}: {exc.strerror}", hint="check the path", path=str(path)
        ) from exc
    try:
        yield fd
    finally:
        os.close(fd)


def _not_parquet(path: Path, why: str) -> WarehouseError:
    return WarehouseError(
        f"{path} is not a Parquet file this can append: {why}",
        hint="both inputs must be plain (unencrypted, single-file) Parquet",
        path=str(path),
    )


@contextmanager
def _footer_errors(path: Path, *other_paths: Path) -> Iterator[None]:
    """Name the file(s) when a footer does not hold the structures Parquet defines."""
    try:
        yield
    except ThriftError as exc:
        names = " or ".join(str(p) for p in (path, *other_paths))
        raise WarehouseError(
            f"{names} has an unreadable Parquet footer: {exc}",
            hint="both inputs must be valid Parquet",
            path=names,
        ) from exc


def _read_footer(path: Path, fd: int) -> _Footer:
    size = os.fstat(fd).st_size
    if size < len(MAGIC) + _TAIL_LEN:
        raise _not_parquet(path, f"only {size} bytes")
    head, tail = os.pread(fd, len(MAGIC), 0), os.pread(fd, _TAIL_LEN, size - _TAIL_LEN)
    if ENCRYPTED_MAGIC in (head, tail[4:]):
        raise _not_parquet(path, "its footer is encrypted")
    if head != MAGIC or tail[4:] != MAGIC:
        raise _not_parquet(path, "no PAR1 magic at its start and end")
    start = size - _TAIL_LEN - int.from_bytes(tail[:4], "little")
    if start < len(MAGIC):
        raise _not_parquet(path, "its footer length exceeds the file")
    with _footer_errors(path):
        data = os.pread(fd, size - _TAIL_LEN - start, start)
        meta = scan_struct(data, 0, _EXPAND)
        fields = meta.fields
        # Checked before the length: an encrypted file with a plaintext footer signs it, and
        # the signature follows the struct.
        if _find(fields, _FileMetaData.ENCRYPTION_ALGORITHM) or _find(
            fields, _FileMetaData.FOOTER_SIGNING_KEY_METADATA
        ):
            raise _not_parquet(path, "it is encrypted")
        if meta.end != len(data):
            raise _not_parquet(path, "bytes follow the FileMetaData in its footer")
        schema = [
            _Element(
                data[element.start : element.end],
                _field_value(data, element.fields, _SchemaElement.NAME),
                _field_value(data, element.fields, _SchemaElement.NUM_CHILDREN),
            )
            for element in _structs(meta, _FileMetaData.SCHEMA)
        ]
        row_groups = [
            _read_row_group(path, data, group) for group in _structs(meta, _FileMetaData.ROW_GROUPS)
        ]
    if not schema:
        raise _not_parquet(path, "its footer has no schema")
    return _Footer(path, fd, start, data, meta, schema, row_groups)


def _read_row_group(path: Path, data: bytes, group: ScannedStruct) -> _Group:
    chunks: list[bytes] = []
    fields = group.fields
    for chunk in _structs(group, _RowGroup.COLUMNS):
        for field_id, _, _, _ in chunk.fields:
            if field_id == _ColumnChunk.FILE_PATH:
                raise _not_parquet(path, "its column chunks live in other files (file_path)")
            if field_id in (_ColumnChunk.CRYPTO_METADATA, _ColumnChunk.ENCRYPTED_COLUMN_METADATA):
                raise _not_parquet(path, "it has encrypted columns")
        chunks.append(data[chunk.start : chunk.end])
    return _Group(
        fields,
        chunks,
        _field_value(data, fields, _RowGroup.NUM_ROWS),
        _field_value(data, fields, _RowGroup.TOTAL_BYTE_SIZE),
        _field_value(data, fields, _RowGroup.TOTAL_COMPRESSED_SIZE),
    )


def _find(fields: list[FieldSpan], field_id: int) -> FieldSpan | None:
    """The first field with this id (as Struct.find)."""
    for span in fields:
        if span[0] == field_id:
            return span
    return None


def _field_value(data: bytes, fields: list[FieldSpan], field_id: int) -> Value | None:
    span = _find(fields, field_id)
    return None if span is None else decode_value(data[span[2] : span[3]], span[1])


def _structs(scanned: ScannedStruct, field_id: int) -> list[ScannedStruct]:
    """A list<struct> field's scanned items (none when the field is absent); as
    Struct.get_structs."""
    items = scanned.items.get(field_id)
    if items is not None:
        return items
    if _find(scanned.fields, field_id) is None:
        return []
    raise ThriftError(f"field {field_id} is not a list of structs")


def _as_int(value: Value | None, field_id: int) -> int | None:
    """As Struct.get_int: the integer, None when absent, an error for any other type."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ThriftError(f"field {field_id} is not an integer")


def _schema_bytes(footer: _Footer) -> bytes:
    span = _find(footer.fields, _FileMetaData.SCHEMA)
    assert span is not None  # _read_footer refuses a footer without schema
    return footer.value(span)


def _check_same_schema(bases: list[_Footer]) -> None:
    first = _schema_bytes(bases[0])
    for other in bases[1:]:
        if _schema_bytes(other) != first:
            raise WarehouseError(
                f"{other.path} has a different schema from {bases[0].path}",
                hint="concatenate only files with identical schemas (group them by schema_key)",
                base=str(bases[0].path),
                path=str(other.path),
            )


def _check_compatible(bases: list[_Footer], extra: _Footer) -> None:
    base_groups = [(footer, group) for footer in bases for group in footer.row_groups]
    if len(base_groups) != len(extra.row_groups):
        names = ", ".join(str(footer.path) for footer in bases)
        have = "has" if len(bases) == 1 else "have"
        raise WarehouseError(
            f"{extra.path} has {len(extra.row_groups)} row groups, {names} {have} "
            f"{len(base_groups)}",
            hint="write both files with the same row group sizes",
            base=names,
            extra=str(extra.path),
        )
    for i, ((base, base_group), extra_group) in enumerate(
        zip(base_groups, extra.row_groups, strict=True)
    ):
        with _footer_errors(base.path):
            base_rows = _as_int(base_group.num_rows, _RowGroup.NUM_ROWS)
        with _footer_errors(extra.path):
            extra_rows = _as_int(extra_group.num_rows, _RowGroup.NUM_ROWS)
        if base_rows != extra_rows:
            raise WarehouseError(
                f"row group {i} has {extra_rows} rows in {extra.path}, {base_rows} in {base.path}",
                hint="write both files with the same row group sizes",
                base=str(base.path),
                extra=str(extra.path),
            )
    base = bases[0]
    shared = sorted(set(_column_names(base)) & set(_column_names(extra)))
    if shared:
        raise WarehouseError(
            f"columns {', '.join(shared)} are in both {base.path} and {extra.path}",
            hint="drop or rename them in one file",
            base=str(base.path),
            extra=str(extra.path),
        )


def _column_names(footer: _Footer) -> list[str]:
    """Top-level column names: the root's children, skipping each child's own subtree."""
    with _footer_errors(footer.path):
        schema = footer.schema
        names: list[str] = []
        i = 1
        for _ in range(_num_children(schema[0])):
            if i >= len(schema):
                raise ThriftError("the schema ends before its root's last child")
            name = schema[i].name
            if name is not None and not isinstance(name, bytes):
                raise ThriftError(f"field {_SchemaElement.NAME} is not binary")
            names.append((name or b"").decode(errors="replace"))
            i = _subtree_end(schema, i)
        if i != len(schema):
            raise ThriftError("schema elements follow the root's last child")
    return names


def _subtree_end(schema: list[_Element], i: int) -> int:
    """Index after the subtree rooted at schema[i] (elements are stored depth first)."""
    pending = 1
    while pending:
        if i >= len(schema):
            raise ThriftError("the schema ends inside a group")
        pending += _num_children(schema[i]) - 1
        i += 1
    return i


def _num_children(element: _Element) -> int:
    count = _as_int(element.num_children, _SchemaElement.NUM_CHILDREN) or 0
    if count < 0:
        raise ThriftError(f"negative num_children {count}")
    return count


def _relocate_offset_indexes(
    extra: _Footer, chunks: list[list[Struct]], delta: int, region_start: int
) -> bytes:
    """Re-encode a moved file's (extra's, or a later base's) OffsetIndex structures with page
    offsets moved by delta (their encoded length can change, so they cannot be patched in
    place) and point its column chunks at the copies, which will be written from region_start
    on."""
    region = bytearray()
    with _footer_errors(extra.path):
        for chunk in (c for group in chunks for c in group):
            offset = chunk.get_int(_ColumnChunk.OFFSET_INDEX_OFFSET)
            length = chunk.get_int(_ColumnChunk.OFFSET_INDEX_LENGTH)
            if offset is None:
                continue
            encoded = _moved_offset_index(extra, offset, length, delta)
            chunk.set(_ColumnChunk.OFFSET_INDEX_OFFSET, CType.I64, region_start + len(region))
            chunk.set(_ColumnChunk.OFFSET_INDEX_LENGTH, CType.I32, len(encoded))
            region += encoded
    return bytes(region)


def _moved_offset_index(file: _Footer, offset: int, length: int | None, delta: int) -> bytes:
    """The file's OffsetIndex at offset, its page offsets moved by delta, encoded."""
    if length is None or offset < _FIRST_DATA_OFFSET or not 0 <= length <= file.start - offset:
        raise ThriftError(f"offset index at {offset} (length {length}) is out of bounds")
    index = decode_struct(os.pread(file.fd, length, offset))
    for location in index.get_structs(_OFFSET_INDEX_PAGE_LOCATIONS) or []:
        _shift(location, _PAGE_LOCATION_OFFSET, delta)
    return encode_struct(index)


_CHUNK_OFFSETS = frozenset({_ColumnChunk.FILE_OFFSET, _ColumnChunk.COLUMN_INDEX_OFFSET})
_META_OFFSETS = frozenset(
    {
        _ColumnMetaData.DATA_PAGE_OFFSET,
        _ColumnMetaData.INDEX_PAGE_OFFSET,
        _ColumnMetaData.DICTIONARY_PAGE_OFFSET,
        _ColumnMetaData.BLOOM_FILTER_OFFSET,
    }
)


def _move_encoded_chunk(
    file: _Footer, chunk: bytes, delta: int, index_start: int
) -> tuple[bytes, bytes]:
    """A base's encoded column chunk with its offsets moved by delta, as _shift_chunk and
    _relocate_offset_indexes would move it, but scanned rather than decoded (a base has many
    chunks): every field but the offsets keeps its bytes. Also its relocated offset index
    (empty when it has none), which will be written at index_start."""
    fields = _shifted_fields(chunk, scan_struct(chunk).fields, _CHUNK_OFFSETS, delta)
    index_offset: int | None = None
    index_length: int | None = None
    for i, (field_id, field_type, encoded) in enumerate(fields):
        if field_id == _ColumnChunk.META_DATA:
            if field_type != CType.STRUCT:
                raise ThriftError(f"field {field_id} is not a struct")
            meta = scan_struct(encoded)
            if meta.end != len(encoded):
                raise ThriftError("bytes follow the ColumnMetaData")
            moved = encode_fields(_shifted_fields(encoded, meta.fields, _META_OFFSETS, delta))
            fields[i] = (field_id, field_type, moved)
        elif field_id == _ColumnChunk.OFFSET_INDEX_OFFSET:
            index_offset = _as_int(decode_value(encoded, field_type), field_id)
        elif field_id == _ColumnChunk.OFFSET_INDEX_LENGTH:
            index_length = _as_int(decode_value(encoded, field_type), field_id)
    if index_offset is None:
        return encode_fields(fields), b""
    index = _moved_offset_index(file, index_offset, index_length, delta)
    _set(fields, _ColumnChunk.OFFSET_INDEX_OFFSET, CType.I64, encode_value(CType.I64, index_start))
    _set(fields, _ColumnChunk.OFFSET_INDEX_LENGTH, CType.I32, encode_value(CType.I32, len(index)))
    return encode_fields(fields), index


def _shifted_fields(
    data: bytes, fields: list[FieldSpan], offsets: frozenset[int], delta: int
) -> list[EncodedField]:
    """The scanned fields' encodings, with those named in offsets moved as _shift moves them."""
    moved: list[EncodedField] = []
    for field_id, field_type, begin, end in fields:
        encoded = data[begin:end]
        if field_id in offsets:
            offset = _as_int(decode_value(encoded, field_type), field_id)
            if offset is not None and offset >= _FIRST_DATA_OFFSET:
                moved.append((field_id, CType.I64, encode_value(CType.I64, offset + delta)))
                continue
        moved.append((field_id, field_type, encoded))
    return moved


def _shift(value: Struct, field_id: int, delta: int) -> None:
    """Move one absolute offset (an i64 in every struct that has one)."""
    offset = value.get_int(field_id)
    if offset is not None and offset >= _FIRST_DATA_OFFSET:
        value.set(field_id, CType.I64, offset + delta)


def _shift_chunk(chunk: Struct, delta: int) -> Struct:
    """A copy of a moved file's column chunk with its offsets into the data region moved by delta
    (the offset index was already relocated)."""
    moved = chunk.copy()
    _shift(moved, _ColumnChunk.FILE_OFFSET, delta)
    _shift(moved, _ColumnChunk.COLUMN_INDEX_OFFSET, delta)
    meta = moved.get_struct(_ColumnChunk.META_DATA)
    if meta is not None:
        meta = meta.copy()
        for field_id in (
            _ColumnMetaData.DATA_PAGE_OFFSET,
            _ColumnMetaData.INDEX_PAGE_OFFSET,
            _ColumnMetaData.DICTIONARY_PAGE_OFFSET,
            _ColumnMetaData.BLOOM_FILTER_OFFSET,
        ):
            _shift(meta, field_id, delta)
        moved.set(_ColumnChunk.META_DATA, CType.STRUCT, meta)
    return moved


def _encoded_fields(footer: _Footer, fields: list[FieldSpan]) -> list[EncodedField]:
    return [(field_id, code, footer.data[begin:end]) for field_id, code, begin, end in fields]


def _set(fields: list[EncodedField], field_id: int, field_type: int, encoded: bytes) -> None:
    """Replace the field in place, or insert it where ascending ids put it (as Struct.set)."""
    new = (field_id, field_type, encoded)
    for i, (other_id, _, _) in enumerate(fields):
        if other_id == field_id:
            fields[i] = new
            return
        if other_id > field_id:
            fields.insert(i, new)
            return
    fields.append(new)


def _drop(fields: list[EncodedField], field_id: int) -> None:
    fields[:] = [f for f in fields if f[0] != field_id]


def _merge_metadata(
    bases: list[_Footer],
    groups: list[_PlacedGroup],
    extra: _Footer,
    extra_chunks: list[list[Struct]],
    delta: int,
) -> bytes:
    """The first base's FileMetaData (version, created_by, unknown fields kept) describing all
    bases' row groups and extra's columns too, encoded. `groups` holds every base row group
    with its (moved) chunks' encodings and the distance its data moved."""
    base = bases[0]
    with _footer_errors(*(footer.path for footer in bases), extra.path):
        merged = _encoded_fields(base, base.fields)
        _set(merged, _FileMetaData.SCHEMA, CType.LIST, _merge_schema(base, extra))
        if len(bases) > 1:
            num_rows = 0
            for footer in bases:
                span = _find(footer.fields, _FileMetaData.NUM_ROWS)
                value = None if span is None else decode_value(footer.value(span), span[1])
                num_rows += _as_int(value, _FileMetaData.NUM_ROWS) or 0
            encoded = encode_value(CType.I64, num_rows)
            _set(merged, _FileMetaData.NUM_ROWS, CType.I64, encoded)
        row_groups = [
            _merge_row_group(placed, position, e, moved, delta)
            for position, (placed, e, moved) in enumerate(
                zip(groups, extra.row_groups, extra_chunks, strict=True)
            )
        ]
        _set(merged, _FileMetaData.ROW_GROUPS, CType.LIST, encode_list(CType.STRUCT, row_groups))
        _drop_arrow_schema(merged, base)
        _merge_column_orders(merged, base, extra)
        return encode_fields(merged)


def _merge_schema(base: _Footer, extra: _Footer) -> bytes:
    root = decode_struct(base.schema[0].encoded)
    children = _num_children(base.schema[0]) + _num_children(extra.schema[0])
    root.set(_SchemaElement.NUM_CHILDREN, CType.I32, children)
    elements = [encode_struct(root)]
    elements += (e.encoded for e in base.schema[1:])
    elements += (e.encoded for e in extra.schema[1:])
    return encode_list(CType.STRUCT, elements)


def _merge_row_group(
    placed: _PlacedGroup, position: int, extra: _Group, extra_chunks: list[Struct], delta: int
) -> bytes:
    """A base's row group (now at `position`) with extra's chunks appended."""
    footer, base, shift = placed.footer, placed.group, placed.shift
    merged = _encoded_fields(footer, base.fields)
    chunks = placed.chunks + [encode_struct(_shift_chunk(c, delta)) for c in extra_chunks]
    _set(merged, _RowGroup.COLUMNS, CType.LIST, encode_list(CType.STRUCT, chunks))
    if shift:
        span = _find(base.fields, _RowGroup.FILE_OFFSET)
        if span is not None:
            offset = _as_int(decode_value(footer.value(span), span[1]), _RowGroup.FILE_OFFSET)
            if offset is not None and offset >= _FIRST_DATA_OFFSET:
                encoded = encode_value(CType.I64, offset + shift)
                _set(merged, _RowGroup.FILE_OFFSET, CType.I64, encoded)
    span = _find(base.fields, _RowGroup.ORDINAL)
    if span is not None:
        _set(merged, _RowGroup.ORDINAL, CType.I16, encode_value(CType.I16, position))
    total = (_as_int(base.total_byte_size, _RowGroup.TOTAL_BYTE_SIZE) or 0) + (
        _as_int(extra.total_byte_size, _RowGroup.TOTAL_BYTE_SIZE) or 0
    )
    _set(merged, _RowGroup.TOTAL_BYTE_SIZE, CType.I64, encode_value(CType.I64, total))
    base_compressed = _as_int(base.total_compressed_size, _RowGroup.TOTAL_COMPRESSED_SIZE)
    extra_compressed = _as_int(extra.total_compressed_size, _RowGroup.TOTAL_COMPRESSED_SIZE)
    if base_compressed is None or extra_compressed is None:
        # Optional: a partial sum would be wrong, absent is merely unknown.
        _drop(merged, _RowGroup.TOTAL_COMPRESSED_SIZE)
    else:
        total = base_compressed + extra_compressed
        encoded = encode_value(CType.I64, total)
        _set(merged, _RowGroup.TOTAL_COMPRESSED_SIZE, CType.I64, encoded)
    return encode_fields(merged)


def _drop_arrow_schema(merged: list[EncodedField], base: _Footer) -> None:
    """pyarrow stores its schema under ARROW:schema; base's would describe only base's
    columns, so drop it and let readers derive types from the Parquet schema."""
    if _find(base.fields, _FileMetaData.KEY_VALUE_METADATA) is None:
        return
    kept: list[bytes] = []
    for entry in _structs(base.meta, _FileMetaData.KEY_VALUE_METADATA):
        key = _field_value(base.data, entry.fields, _KEY_VALUE_KEY)
        if key is not None and not isinstance(key, bytes):
            raise ThriftError(f"field {_KEY_VALUE_KEY} is not binary")
        if key != _ARROW_SCHEMA_KEY:
            kept.append(base.data[entry.start : entry.end])
    if kept:
        encoded = encode_list(CType.STRUCT, kept)
        _set(merged, _FileMetaData.KEY_VALUE_METADATA, CType.LIST, encoded)
    else:
        _drop(merged, _FileMetaData.KEY_VALUE_METADATA)


def _merge_column_orders(merged: list[EncodedField], base: _Footer, extra: _Footer) -> None:
    """One ColumnOrder per leaf column, or none: orders for only some columns would be
    misaligned with the leaves."""
    base_orders = _find(base.fields, _FileMetaData.COLUMN_ORDERS)
    extra_orders = _find(extra.fields, _FileMetaData.COLUMN_ORDERS)
    if base_orders is None or extra_orders is None:
        _drop(merged, _FileMetaData.COLUMN_ORDERS)
        return
    if base_orders[1] not in (CType.LIST, CType.SET) or extra_orders[1] not in (
        CType.LIST,
        CType.SET,
    ):
        raise ThriftError("column_orders is not a list")
    base_type, base_items, _ = scan_list(base.data, base_orders[2])
    extra_type, extra_items, _ = scan_list(extra.data, extra_orders[2])
    if extra_items and extra_type != base_type:
        # extra's elements written as base's element type: the codec decides if they can be.
        base_list = decode_value(base.value(base_orders), base_orders[1])
        extra_list = decode_value(extra.value(extra_orders), extra_orders[1])
        assert isinstance(base_list, ThriftList)
        assert isinstance(extra_list, ThriftList)
        orders = ThriftList(base_type, base_list.items + extra_list.items)
        encoded = encode_value(base_orders[1], orders)
    else:
        items = [base.data[b:e] for b, e in base_items] + [extra.data[b:e] for b, e in extra_items]
        encoded = encode_list(base_type, items)
    _set(merged, _FileMetaData.COLUMN_ORDERS, base_orders[1], encoded)


def _write_output(
    out: Path, bases: list[_Footer], extra: _Footer, region: tuple[int, int], tail: bytes
) -> None:
    """Write under a temporary name beside `out`, then rename: a reader never sees half a
    file, and `out` may be one of the inputs (they stay open, so the copy reads the old one)."""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb", buffering=0) as dst:
            _copy_range(bases[0], dst.fileno(), 0, bases[0].start)
            for base in bases[1:]:
                _copy_range(base, dst.fileno(), _FIRST_DATA_OFFSET, base.start - _FIRST_DATA_OFFSET)
            _copy_range(extra, dst.fileno(), region[0], region[1] - region[0])
            _write_all(dst.fileno(), tail)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WarehouseError(
            f"cannot write {out}: {exc.strerror}",
            hint="check free space and permissions",
            path=str(out),
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_range(src: _Footer, dst: int, offset: int, length: int) -> None:
    """Append src's bytes [offset, offset + length) to dst: in the kernel where it can (no
    copies through Python, and filesystems may share the blocks), else in large blocks."""
    end = offset + length
    in_kernel = hasattr(os, "copy_file_range")
    while offset < end:
        copied = 0
        if in_kernel:
            try:
                copied = os.copy_file_range(src.fd, dst, end - offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
            # Some filesystems report 0 bytes copied instead of failing: retry in user space.
            in_kernel = copied > 0
        if not in_kernel:
            block = os.pread(src.fd, min(end - offset, _COPY_BLOCK), offset)
            if not block:
                raise WarehouseError(f"{src.path} shrank while being copied", path=str(src.path))
            _write_all(dst, block)
            copied = len(block)
        offset += copied


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
