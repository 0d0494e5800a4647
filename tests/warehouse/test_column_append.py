"""append_columns: extra's column chunks copied after base's, one new footer describing both.

Every check compares exact values: the merged file read by pyarrow and by DuckDB against the two
inputs, and every moved offset against the input's offset plus the distance extra's data moved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import WarehouseError
from pipeline.warehouse.column_append import (
    append_columns,
    row_group_rows,
    scan_footer,
    schema_key,
)
from pipeline.warehouse.thrift_compact import (
    CType,
    Field,
    Struct,
    ThriftError,
    ThriftList,
    ThriftMap,
    decode_struct,
    encode_struct,
)

ROW_GROUPS = [1000, 1000, 500]
ROWS = sum(ROW_GROUPS)
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _base_table(rows: int = ROWS) -> pa.Table:
    payloads = [
        json.dumps(
            {
                "eventName": f"GetObject{i % 13}",
                "requestParameters": {"bucketName": f"bucket-{i % 5}", "key": f"k/{i}"},
                "padding": "x" * (150 + i % 50),
            }
        )
        for i in range(rows)
    ]
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "k_dict": pa.array([f"key-{i % 20}" for i in range(rows)]),
            "k_plain": pa.array([f"plain-{i}" for i in range(rows)]),
            "flag": pa.array([None if i % 11 == 0 else i % 2 == 0 for i in range(rows)]),
            "ts": pa.array(
                [None if i % 17 == 0 else T0 + timedelta(seconds=i) for i in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "qty": pa.array([None if i % 3 == 0 else i * 7 for i in range(rows)], pa.int64()),
            "payload": pa.array(payloads),
            "tags": pa.array([[i, i + 1] if i % 4 else None for i in range(rows)]),
        }
    )


def _extra_table(rows: int = ROWS) -> pa.Table:
    return pa.table(
        {
            "label": pa.array([None if i % 7 == 0 else f"label-{i}" for i in range(rows)]),
            "ok": pa.array([i % 3 == 0 for i in range(rows)]),
            "note": pa.array([None] * rows, pa.string()),
            # A nested field may share a name with a top-level column of base: only top-level
            # names collide.
            "info": pa.array(
                [{"id": i * 2, "src": f"s{i % 4}"} for i in range(rows)],
                pa.struct([("id", pa.int64()), ("src", pa.string())]),
            ),
        }
    )


def _write(table: pa.Table, path: Path, row_groups: list[int] = ROW_GROUPS, **options: Any) -> Path:
    """Write with exactly the given row group sizes (pyarrow splits by a single size)."""
    with pq.ParquetWriter(path, table.schema, compression="zstd", **options) as writer:
        start = 0
        for rows in row_groups:
            writer.write_table(table.slice(start, rows), row_group_size=max(rows, 1))
            start += rows
    return path


def _duckdb_copy(select: str, path: Path, row_group_size: int) -> Path:
    duckdb.sql(f"COPY ({select}) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {row_group_size})")
    return path


def _footer_start(path: Path) -> int:
    data = path.read_bytes()
    return len(data) - 8 - int.from_bytes(data[-8:-4], "little")


def _footer_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return data[_footer_start(path) : -8]


def _footer(path: Path) -> Struct:
    return decode_struct(_footer_bytes(path))


def _structs(value: Struct, field_id: int) -> list[Struct]:
    found = value.get_structs(field_id)
    assert found is not None
    return found


def _int(value: Struct, field_id: int) -> int:
    found = value.get_int(field_id)
    assert found is not None
    return found


def _chunks(meta: Struct, group: int) -> list[Struct]:
    return _structs(_structs(meta, 4)[group], 1)


def _rows(sql: str, *params: object) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        return con.execute(sql, list(params)).fetchall()


def _assert_merged(base: Path, extra: Path, out: Path) -> None:
    """The merged file holds base's columns then extra's, with the same rows and row groups,
    whoever reads it; extra's offsets moved by exactly delta, base's did not move."""
    merged = pq.read_table(out)
    expected = [pq.read_table(base), pq.read_table(extra)]
    names = [name for table in expected for name in table.column_names]
    assert merged.column_names == names
    for table in expected:
        for name in table.column_names:
            assert merged.column(name).to_pylist() == table.column(name).to_pylist(), name
            assert merged.schema.field(name).type == table.schema.field(name).type, name

    both = "SELECT * FROM read_parquet(?) POSITIONAL JOIN read_parquet(?)"
    assert _rows("SELECT * FROM read_parquet(?)", str(out)) == _rows(both, str(base), str(extra))

    meta, base_meta = pq.ParquetFile(out).metadata, pq.ParquetFile(base).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        base_meta.row_group(i).num_rows for i in range(base_meta.num_row_groups)
    ]
    assert meta.num_rows == base_meta.num_rows

    delta = _footer_start(base) - 4
    merged_footer, base_footer, extra_footer = _footer(out), _footer(base), _footer(extra)
    for group in range(len(_structs(base_footer, 4))):
        base_chunks, extra_chunks = _chunks(base_footer, group), _chunks(extra_footer, group)
        merged_chunks = _chunks(merged_footer, group)
        sizes = [_structs(meta, 4)[group] for meta in (merged_footer, base_footer, extra_footer)]
        for field_id in (2, 6):  # total_byte_size, total_compressed_size
            merged_size, base_size, extra_size = (g.get_int(field_id) for g in sizes)
            if base_size is None or extra_size is None:
                assert merged_size is None
            else:
                assert merged_size == base_size + extra_size
        assert merged_chunks[: len(base_chunks)] == base_chunks
        for moved, original in zip(merged_chunks[len(base_chunks) :], extra_chunks, strict=True):
            _assert_moved(moved, original, delta, out, extra)


def _assert_moved(moved: Struct, original: Struct, delta: int, out: Path, extra: Path) -> None:
    moved_meta, original_meta = moved.get_struct(3), original.get_struct(3)
    assert moved_meta is not None
    assert original_meta is not None
    for field_id in (9, 10, 11, 14):  # data, index, dictionary page and bloom filter offsets
        before = original_meta.get_int(field_id)
        # 0 means "none" (pyarrow writes data_page_offset 0 for a chunk without data pages).
        expected = before + delta if before else before
        assert moved_meta.get_int(field_id) == expected
    start = _int(original_meta, 11) if original_meta.find(11) else _int(original_meta, 9)
    size = _int(original_meta, 7)  # total_compressed_size: all of the chunk's pages
    assert _read(out, start + delta, size) == _read(extra, start, size)
    column_index = original.get_int(6)
    if column_index is not None:
        assert moved.get_int(6) == column_index + delta
        assert _read(out, column_index + delta, _int(moved, 7)) == _read(
            extra, column_index, _int(original, 7)
        )
    if original.find(4):
        _assert_offset_index_moved(moved, original, delta, out, extra)


def _assert_offset_index_moved(
    moved: Struct, original: Struct, delta: int, out: Path, extra: Path
) -> None:
    """Page locations in the relocated offset index point at the same page bytes."""
    before = decode_struct(_read(extra, _int(original, 4), _int(original, 5)))
    after = decode_struct(_read(out, _int(moved, 4), _int(moved, 5)))
    pages_before, pages_after = _structs(before, 1), _structs(after, 1)
    assert len(pages_after) == len(pages_before)
    for page_after, page_before in zip(pages_after, pages_before, strict=True):
        offset, size = _int(page_before, 1), _int(page_before, 2)
        assert _int(page_after, 1) == offset + delta
        assert _int(page_after, 2) == size
        assert _int(page_after, 3) == _int(page_before, 3)
        assert _read(out, offset + delta, size) == _read(extra, offset, size)


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)


def test_pyarrow_files_with_several_row_groups_are_merged(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet", use_dictionary=["k_dict", "tags"])
    extra = _write(_extra_table(), tmp_path / "extra.parquet")
    out = tmp_path / "out.parquet"

    append_columns(base, extra, out)

    _assert_merged(base, extra, out)
    merged = pq.read_table(out)
    assert merged.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert merged.column("ts")[1].as_py() == T0 + timedelta(seconds=1)
    assert [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(3)] == ROW_GROUPS
    # Pushed-down filters on a column of each file.
    assert _rows(
        "SELECT id, label FROM read_parquet(?) WHERE id BETWEEN 1999 AND 2002", str(out)
    ) == [
        (1999, "label-1999"),
        (2000, "label-2000"),
        (2001, "label-2001"),
        (2002, None),
    ]
    assert _rows(
        "SELECT id, k_dict, ok FROM read_parquet(?) WHERE label = 'label-2400'", str(out)
    ) == [(2400, "key-0", True)]
    assert _rows(
        "SELECT count(*) FROM read_parquet(?) WHERE info.src = 's1' AND flag", str(out)
    ) == [(0,)]
    # pyarrow's own ARROW:schema (base's only) is gone; its other entries stay.
    keys = [kv.get_bytes(1) for kv in _footer(out).get_structs(5) or []]
    assert b"ARROW:schema" not in keys


def test_page_indexes_and_bloom_filters_are_moved(tmp_path: Path) -> None:
    bloom = {"ndv": 5000, "fpp": 0.01}
    base = _write(
        _base_table(),
        tmp_path / "base.parquet",
        write_page_index=True,
        data_page_size=4096,
        bloom_filter_options={"k_plain": bloom},
    )
    extra = _write(
        _extra_table(),
        tmp_path / "extra.parquet",
        write_page_index=True,
        data_page_size=2048,
        bloom_filter_options={"label": bloom},
    )
    out = tmp_path / "out.parquet"

    append_columns(base, extra, out)

    _assert_merged(base, extra, out)
    label = pq.ParquetFile(out).metadata.row_group(0).column(8)
    assert label.path_in_schema == "label"
    assert label.has_offset_index
    assert label.has_column_index
    probe = "SELECT bloom_filter_excludes FROM parquet_bloom_probe(?, ?, ?) ORDER BY row_group_id"
    assert _rows(probe, str(out), "label", "label-2400") == [(True,), (True,), (False,)]
    assert _rows(probe, str(out), "label", "label-5") == _rows(
        probe, str(extra), "label", "label-5"
    )
    assert _rows(probe, str(out), "k_plain", "plain-1500") == [(True,), (False,), (True,)]


def test_duckdb_written_files_are_merged(tmp_path: Path) -> None:
    # DuckDB rounds row groups to its vector size: 2048-row groups, then the remainder.
    base = _duckdb_copy(
        "SELECT range::BIGINT AS id, 'k' || (range % 50) AS k, range * 1.5 AS d,"
        " TIMESTAMPTZ '2024-03-01 00:00:00+00' + to_seconds(range) AS ts,"
        " [range, range + 1] AS l, {'p': range} AS st FROM range(5000)",
        tmp_path / "base.parquet",
        2048,
    )
    groups = [2048, 2048, 904]
    assert [pq.ParquetFile(base).metadata.row_group(i).num_rows for i in range(3)] == groups
    extra = _write(_extra_table(5000), tmp_path / "extra.parquet", groups, write_page_index=True)
    other = _duckdb_copy(
        "SELECT 'v' || (range // 100) AS v, range % 2 = 0 AS even FROM range(5000)",
        tmp_path / "other.parquet",
        2048,
    )

    append_columns(base, extra, tmp_path / "out.parquet")
    append_columns(base, other, tmp_path / "out2.parquet")

    _assert_merged(base, extra, tmp_path / "out.parquet")
    _assert_merged(base, other, tmp_path / "out2.parquet")
    assert _rows(
        "SELECT id, v FROM read_parquet(?) WHERE v = 'v43' AND id % 10 = 0",
        str(tmp_path / "out2.parquet"),
    ) == [(4300 + i, "v43") for i in range(0, 100, 10)]
    # DuckDB writes bloom filters for dictionary-encoded columns: extra's moved with its data.
    probe = (
        "SELECT bloom_filter_excludes FROM parquet_bloom_probe(?, 'v', 'v43') ORDER BY row_group_id"
    )
    assert _rows(probe, str(tmp_path / "out2.parquet")) == [(True,), (True,), (False,)]


def test_output_may_replace_the_base_file(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(base.read_bytes())
    extra = _write(_extra_table(), tmp_path / "extra.parquet")

    append_columns(base, extra, base)

    _assert_merged(copy, extra, base)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "base.parquet",
        "copy.parquet",
        "extra.parquet",
    ]


def test_optional_sums_and_lists_are_dropped_when_only_one_file_has_them(
    tmp_path: Path,
) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(_extra_table(), tmp_path / "extra.parquet")
    out = tmp_path / "out.parquet"
    append_columns(base, extra, out)
    assert len(_footer(out).get_structs(7) or []) == 8 + 5  # leaves: tags and info count twice

    def drop_optional_fields(meta: Struct) -> None:
        meta.drop(7)  # column_orders
        for group in _structs(meta, 4):
            group.drop(6)  # total_compressed_size

    _rewrite_footer(extra, drop_optional_fields)
    append_columns(base, extra, out)

    assert _footer(out).find(7) is None
    assert [group.find(6) for group in _structs(_footer(out), 4)] == [None, None, None]
    _assert_merged(base, extra, out)


@pytest.mark.parametrize("use_duckdb", [False, True])
def test_files_without_rows_are_merged(tmp_path: Path, use_duckdb: bool) -> None:
    if use_duckdb:
        # DuckDB writes no row group at all.
        base = _duckdb_copy("SELECT 1::BIGINT AS id LIMIT 0", tmp_path / "base.parquet", 2048)
        extra = _duckdb_copy("SELECT 'a' AS s LIMIT 0", tmp_path / "extra.parquet", 2048)
        groups = 0
    else:
        # pyarrow writes one row group of 0 rows.
        base = tmp_path / "base.parquet"
        extra = tmp_path / "extra.parquet"
        pq.write_table(_base_table(0), base)
        pq.write_table(_extra_table(0), extra)
        groups = 1
    assert pq.ParquetFile(base).metadata.num_row_groups == groups
    out = tmp_path / "out.parquet"

    append_columns(base, extra, out)

    _assert_merged(base, extra, out)
    assert pq.read_table(out).num_rows == 0
    assert pq.ParquetFile(out).metadata.num_row_groups == groups
    assert _rows("SELECT count(*) FROM read_parquet(?)", str(out)) == [(0,)]


def test_an_empty_pyarrow_file_and_an_empty_duckdb_file_differ_in_row_groups(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base.parquet"
    pq.write_table(_base_table(0), base)
    extra = _duckdb_copy("SELECT 'a' AS s LIMIT 0", tmp_path / "extra.parquet", 2048)

    with pytest.raises(WarehouseError, match="0 row groups"):
        append_columns(base, extra, tmp_path / "out.parquet")


def _rewrite_footer(path: Path, change: Callable[[Struct], None]) -> None:
    """Replace a file's footer with a changed copy (the data stays where it is)."""
    start = _footer_start(path)
    meta = _footer(path)
    change(meta)
    footer = encode_struct(meta)
    data = path.read_bytes()[:start]
    path.write_bytes(data + footer + len(footer).to_bytes(4, "little") + b"PAR1")


def _assert_refused(base: Path, extra: Path, out: Path, *fragments: str) -> None:
    with pytest.raises(WarehouseError) as caught:
        append_columns(base, extra, out)
    for fragment in fragments:
        assert fragment in caught.value.message
    assert not out.exists()
    assert not list(out.parent.glob(".*.tmp"))


def test_different_row_group_counts_are_refused(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(_extra_table(), tmp_path / "extra.parquet", [2000, 500])
    _assert_refused(
        base, extra, tmp_path / "out.parquet", f"{extra} has 2 row groups, {base} has 3"
    )


def test_different_rows_per_group_are_refused(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(_extra_table(), tmp_path / "extra.parquet", [1000, 500, 1000])
    _assert_refused(
        base,
        extra,
        tmp_path / "out.parquet",
        f"row group 1 has 500 rows in {extra}, 1000 in {base}",
    )


def test_a_shared_column_name_is_refused(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(
        _extra_table().append_column("qty", pa.array(range(ROWS))), tmp_path / "extra.parquet"
    )
    _assert_refused(
        base, extra, tmp_path / "out.parquet", f"columns qty are in both {base} and {extra}"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"id,name\n1,a\n", "no PAR1 magic"),
        (b"PAR1", "only 4 bytes"),
        (b"PAR1" + b"\x00" * 20 + b"\xff\x00\x00\x00PAR1", "footer length exceeds the file"),
        (b"PAR1\x19\x1c\x01\x02\x00\x00\x00PAR1", "unreadable Parquet footer"),
        (b"PARE" + b"\x00" * 20 + b"\x04\x00\x00\x00PARE", "encrypted"),
    ],
)
def test_a_file_that_is_not_plain_parquet_is_refused(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = tmp_path / "extra.parquet"
    extra.write_bytes(content)
    _assert_refused(base, extra, tmp_path / "out.parquet", str(extra), reason)
    _assert_refused(extra, base, tmp_path / "out.parquet", str(extra), reason)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    missing = tmp_path / "missing.parquet"
    _assert_refused(base, missing, tmp_path / "out.parquet", f"cannot open {missing}")


def test_chunks_in_other_files_and_encryption_are_refused(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(_extra_table(), tmp_path / "extra.parquet")

    def add_file_path(meta: Struct) -> None:
        _chunks(meta, 0)[0].set(1, CType.BINARY, b"elsewhere.parquet")

    _rewrite_footer(extra, add_file_path)
    _assert_refused(base, extra, tmp_path / "out.parquet", str(extra), "file_path")

    _rewrite_footer(extra, lambda meta: meta.set(8, CType.STRUCT, Struct([])))
    _assert_refused(base, extra, tmp_path / "out.parquet", str(extra), "encrypted")


# The codec.


def _pyarrow_file(tmp_path: Path) -> Path:
    return _write(
        _base_table(),
        tmp_path / "pyarrow.parquet",
        write_page_index=True,
        bloom_filter_options={"k_plain": True},
        sorting_columns=[pq.SortingColumn(0)],
    )


def _duckdb_file(tmp_path: Path) -> Path:
    return _duckdb_copy(
        "SELECT range AS id, 'k' || (range % 50) AS k, range / 3 AS d, range % 7 = 0 AS b,"
        " [range] AS l, map(['a'], [range]) AS m FROM range(5000)",
        tmp_path / "duckdb.parquet",
        2048,
    )


@pytest.mark.parametrize("make", [_pyarrow_file, _duckdb_file])
def test_footers_round_trip_byte_for_byte(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    footer = _footer_bytes(path)
    assert encode_struct(decode_struct(footer)) == footer
    meta = decode_struct(footer)
    for chunk in _chunks(meta, 0):
        for offset_field, length_field in ((4, 5), (6, 7)):  # offset index, column index
            if chunk.find(offset_field):
                index = _read(path, _int(chunk, offset_field), _int(chunk, length_field))
                assert encode_struct(decode_struct(index)) == index


def test_the_codec_writes_known_encodings() -> None:
    value = Struct(
        [
            Field(1, CType.I32, 1),
            Field(2, CType.BOOL, True),
            Field(3, CType.BOOL, False),
            Field(4, CType.I64, -2),
            Field(20, CType.BINARY, b"ab"),
            Field(21, CType.I8, -1),
        ]
    )
    assert encode_struct(value) == bytes(
        [0x15, 0x02, 0x11, 0x12, 0x16, 0x03, 0x08, 0x28, 0x02, 0x61, 0x62, 0x13, 0xFF, 0x00]
    )
    long_list = ThriftList(CType.I32, list(range(20)))
    assert encode_struct(Struct([Field(1, CType.LIST, long_list)]))[:3] == bytes([0x19, 0xF5, 20])


def test_every_type_and_unknown_fields_round_trip() -> None:
    value = Struct(
        [
            Field(1, CType.I8, -128),
            Field(2, CType.I16, -32768),
            Field(3, CType.I32, 2**31 - 1),
            Field(4, CType.I64, -(2**63)),
            Field(5, CType.DOUBLE, -1.5),
            Field(6, CType.BINARY, b""),
            Field(7, CType.LIST, ThriftList(CType.BOOL, [True, False, True])),
            Field(8, CType.SET, ThriftList(CType.BINARY, [b"x", b"y"])),
            Field(9, CType.MAP, ThriftMap(CType.BINARY, CType.I32, [(b"k", 7), (b"l", -7)])),
            Field(10, CType.MAP, ThriftMap(0, 0, [])),
            Field(11, CType.LIST, ThriftList(CType.LIST, [ThriftList(CType.I64, [1, 2])])),
            Field(300, CType.STRUCT, Struct([Field(-5, CType.BOOL, False)])),
            Field(17, CType.I32, 3),  # ids out of order take the long form, and survive it
        ]
    )
    encoded = encode_struct(value)
    assert decode_struct(encoded) == value
    assert encode_struct(decode_struct(encoded)) == encoded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x15", "truncated"),
        (b"\x15\x02", "truncated"),
        (b"\x16" + b"\xff" * 11, "varint longer"),
        (b"\x1d\x00", "unknown type code 13"),
        (b"\x19\xf5\xff\x7f\x00", "container of"),
        (b"\x15\x02\x00\x00", "1 bytes follow"),
        (b"\x1c" * 100, "nested deeper"),
    ],
)
def test_the_codec_refuses_malformed_bytes(data: bytes, message: str) -> None:
    with pytest.raises(ThriftError, match=re.escape(message)):
        decode_struct(data)


def test_the_codec_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ThriftError, match="does not fit in 32 bits"):
        encode_struct(Struct([Field(1, CType.I32, 2**31)]))
    with pytest.raises(ThriftError, match="cannot be written as type code 8"):
        encode_struct(Struct([Field(1, CType.BINARY, 5)]))


def _expected_footer(base: Path, extra: Path, out: Path) -> Struct:
    """The merged FileMetaData built from full decodes of both inputs' footers: base's with
    the root's num_children summed, extra's schema elements and (moved) chunks appended, the
    row group sizes summed, ARROW:schema dropped and the column orders concatenated. The
    relocated offset indexes' offsets and lengths are taken from `out` (checked elsewhere)."""
    base_meta, extra_meta, merged = _footer(base), _footer(extra), _footer(out)
    delta = _footer_start(base) - 4
    expected = base_meta.copy()
    root = _structs(base_meta, 2)[0].copy()
    root.set(5, CType.I32, _int(root, 5) + _int(_structs(extra_meta, 2)[0], 5))
    schema = [root, *_structs(base_meta, 2)[1:], *_structs(extra_meta, 2)[1:]]
    expected.set(2, CType.LIST, ThriftList(CType.STRUCT, list(schema)))
    groups: list[Any] = []
    for i, (group, other) in enumerate(
        zip(_structs(base_meta, 4), _structs(extra_meta, 4), strict=True)
    ):
        chunks: list[Any] = list(_structs(group, 1))
        for chunk in _structs(other, 1):
            moved = chunk.copy()
            column_meta = chunk.get_struct(3)
            assert column_meta is not None
            column_meta = column_meta.copy()
            for field_id in (9, 10, 11, 14):
                offset = column_meta.get_int(field_id)
                if offset:
                    column_meta.set(field_id, CType.I64, offset + delta)
            moved.set(3, CType.STRUCT, column_meta)
            for field_id in (2, 6):
                offset = moved.get_int(field_id)
                if offset:
                    moved.set(field_id, CType.I64, offset + delta)
            if moved.find(4):
                relocated = _chunks(merged, i)[len(chunks)]
                moved.set(4, CType.I64, _int(relocated, 4))
                moved.set(5, CType.I32, _int(relocated, 5))
            chunks.append(moved)
        merged_group = group.copy()
        merged_group.set(1, CType.LIST, ThriftList(CType.STRUCT, chunks))
        merged_group.set(2, CType.I64, _int(group, 2) + _int(other, 2))
        if group.find(6) and other.find(6):
            merged_group.set(6, CType.I64, _int(group, 6) + _int(other, 6))
        else:
            merged_group.drop(6)
        groups.append(merged_group)
    expected.set(4, CType.LIST, ThriftList(CType.STRUCT, groups))
    entries = base_meta.get_structs(5) or []
    kept: list[Any] = [kv for kv in entries if kv.get_bytes(1) != b"ARROW:schema"]
    if kept:
        expected.set(5, CType.LIST, ThriftList(CType.STRUCT, kept))
    else:
        expected.drop(5)
    base_orders, extra_orders = base_meta.find(7), extra_meta.find(7)
    if base_orders and extra_orders:
        assert isinstance(base_orders.value, ThriftList)
        assert isinstance(extra_orders.value, ThriftList)
        items = base_orders.value.items + extra_orders.value.items
        expected.set(7, base_orders.type, ThriftList(base_orders.value.element_type, items))
    else:
        expected.drop(7)
    return expected


@pytest.mark.parametrize("page_index", [False, True])
def test_the_merged_footer_decodes_to_the_merge_of_both_decoded_footers(
    tmp_path: Path, page_index: bool
) -> None:
    base = _write(
        _base_table().replace_schema_metadata({"origin": "test"}),
        tmp_path / "base.parquet",
        write_page_index=page_index,
        bloom_filter_options={"k_plain": True},
        sorting_columns=[pq.SortingColumn(0)],
    )
    extra = _write(_extra_table(), tmp_path / "extra.parquet", write_page_index=page_index)
    out = tmp_path / "out.parquet"

    append_columns(base, extra, out)

    assert _footer(out) == _expected_footer(base, extra, out)
    assert [kv.get_bytes(1) for kv in _structs(_footer(out), 5)] == [b"origin"]
    # Base's column chunks are its own bytes, copied rather than re-encoded.
    base_footer = _footer_bytes(base)
    for group in range(len(ROW_GROUPS)):
        for chunk in _chunks(_footer(base), group):
            assert encode_struct(chunk) in base_footer
            assert encode_struct(chunk) in _footer_bytes(out)


def test_a_duckdb_base_footer_decodes_to_the_merge_of_both_decoded_footers(
    tmp_path: Path,
) -> None:
    base = _duckdb_file(tmp_path)
    extra = _write(_extra_table(5000), tmp_path / "extra.parquet", [2048, 2048, 904])
    out = tmp_path / "out.parquet"

    append_columns(base, extra, out)

    assert _footer(out) == _expected_footer(base, extra, out)


def test_row_group_rows(tmp_path: Path) -> None:
    path = tmp_path / "groups.parquet"
    table = pa.table({"n": pa.array(range(2500), pa.int64())})
    pq.write_table(table, path, row_group_size=1000)
    assert row_group_rows(path) == [1000, 1000, 500]


# Several bases concatenated row group by row group.

# (first row, row group sizes) of each base: together they cover _base_table()'s ROWS rows.
BASE_SLICES = [(0, [700, 500]), (1200, [300, 200, 300]), (2000, [500])]
CONCAT_GROUPS = [rows for _, groups in BASE_SLICES for rows in groups]


def _pyarrow_bases(tmp_path: Path) -> list[Path]:
    """Three bases with one schema: different sizes and options, a page index on the second."""
    table = _base_table()
    options: list[dict[str, Any]] = [
        {"use_dictionary": ["k_dict", "tags"]},
        {"write_page_index": True, "data_page_size": 4096},
        {"bloom_filter_options": {"k_plain": True}},
    ]
    return [
        _write(table.slice(first, sum(groups)), tmp_path / f"base{k}.parquet", groups, **option)
        for k, ((first, groups), option) in enumerate(zip(BASE_SLICES, options, strict=True))
    ]


def _assert_concatenated(bases: list[Path], extra: Path, out: Path) -> None:
    """out holds the bases' rows one file after the other, then extra's columns, whoever reads
    it; each base's offsets moved by the length of the data regions before it, extra's by all
    of the bases' regions, and the bytes at every moved offset are the original bytes."""
    tables = [pq.read_table(base) for base in bases]
    extra_table = pq.read_table(extra)
    merged = pq.read_table(out)
    assert merged.column_names == tables[0].column_names + extra_table.column_names
    for name in tables[0].column_names:
        expected = [value for table in tables for value in table.column(name).to_pylist()]
        assert merged.column(name).to_pylist() == expected, name
        assert merged.schema.field(name).type == tables[0].schema.field(name).type, name
    for name in extra_table.column_names:
        assert merged.column(name).to_pylist() == extra_table.column(name).to_pylist(), name
        assert merged.schema.field(name).type == extra_table.schema.field(name).type, name

    # DuckDB against the same rows from the inputs: the bases one after the other (UNION ALL
    # keeps their order in a single-threaded connection), joined by position with extra.
    union = " UNION ALL ".join(f"SELECT * FROM read_parquet('{base}')" for base in bases)
    with duckdb.connect(config={"threads": 1}) as con:
        got = con.execute("SELECT * FROM read_parquet(?)", [str(out)]).fetchall()
        want = con.execute(
            f"SELECT * FROM ({union}) POSITIONAL JOIN read_parquet(?)", [str(extra)]
        ).fetchall()
    assert got == want

    metas = [pq.ParquetFile(base).metadata for base in bases]
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        m.row_group(i).num_rows for m in metas for i in range(m.num_row_groups)
    ]
    assert meta.num_rows == sum(m.num_rows for m in metas)

    merged_footer, extra_footer = _footer(out), _footer(extra)
    merged_groups = _structs(merged_footer, 4)
    position, shift = 0, 0
    for base in bases:
        base_footer = _footer(base)
        for index, group in enumerate(_structs(base_footer, 4)):
            merged_group = merged_groups[position]
            base_chunks = _chunks(base_footer, index)
            moved_chunks = _chunks(merged_footer, position)[: len(base_chunks)]
            if shift == 0:
                assert moved_chunks == base_chunks
            for moved, original in zip(moved_chunks, base_chunks, strict=True):
                _assert_moved(moved, original, shift, out, base)
            file_offset = group.get_int(5)
            if file_offset is not None:
                expected_offset = file_offset + shift if file_offset >= 4 else file_offset
                assert merged_group.get_int(5) == expected_offset
            if group.find(7) is not None:
                assert merged_group.get_int(7) == position
            # Every other row group field is base's, but the sizes, which add extra's.
            extra_group = _structs(extra_footer, 4)[position]
            assert _int(merged_group, 2) == _int(group, 2) + _int(extra_group, 2)
            if group.find(6) and extra_group.find(6):
                assert _int(merged_group, 6) == _int(group, 6) + _int(extra_group, 6)
            else:
                assert merged_group.find(6) is None
            rest, merged_rest = group.copy(), merged_group.copy()
            for field_id in (1, 2, 5, 6, 7):
                rest.drop(field_id)
                merged_rest.drop(field_id)
            assert merged_rest == rest
            position += 1
        shift += _footer_start(base) - 4
    assert position == len(merged_groups)
    for group_index in range(len(merged_groups)):
        extra_chunks = _chunks(extra_footer, group_index)
        moved_chunks = _chunks(merged_footer, group_index)[-len(extra_chunks) :]
        for moved, original in zip(moved_chunks, extra_chunks, strict=True):
            _assert_moved(moved, original, shift, out, extra)


def test_several_pyarrow_bases_are_concatenated(tmp_path: Path) -> None:
    bases = _pyarrow_bases(tmp_path)
    extra = _write(_extra_table(), tmp_path / "extra.parquet", CONCAT_GROUPS, write_page_index=True)
    out = tmp_path / "out.parquet"

    append_columns(bases, extra, out)

    _assert_concatenated(bases, extra, out)
    assert [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(6)] == CONCAT_GROUPS
    assert pq.ParquetFile(out).metadata.num_rows == ROWS
    assert pq.read_table(out).column("id").to_pylist() == list(range(ROWS))
    # The second base's offset indexes were relocated with its chunks.
    assert pq.ParquetFile(out).metadata.row_group(2).column(0).has_offset_index
    # Pushed-down filters on a column of the bases and one of extra, across base boundaries.
    assert _rows(
        "SELECT id, label FROM read_parquet(?) WHERE id BETWEEN 1199 AND 1204", str(out)
    ) == [
        (1199, "label-1199"),
        (1200, "label-1200"),
        (1201, "label-1201"),
        (1202, "label-1202"),
        (1203, "label-1203"),
        (1204, None),
    ]
    assert _rows(
        "SELECT id, k_dict, ok FROM read_parquet(?) WHERE label = 'label-2400'", str(out)
    ) == [(2400, "key-0", True)]
    assert _rows(
        "SELECT id, k_plain, ok FROM read_parquet(?) WHERE label = 'label-1650'", str(out)
    ) == [(1650, "plain-1650", True)]
    assert _rows(
        "SELECT count(*), min(id), max(id) FROM read_parquet(?) WHERE k_plain = 'plain-1999'",
        str(out),
    ) == [(1, 1999, 1999)]
    assert _rows(
        "SELECT count(*) FROM read_parquet(?) WHERE info.src = 's1' AND flag", str(out)
    ) == [(0,)]
    keys = [kv.get_bytes(1) for kv in _footer(out).get_structs(5) or []]
    assert b"ARROW:schema" not in keys
    # The first base's chunks are its own bytes.
    for group in range(2):
        for chunk in _chunks(_footer(bases[0]), group):
            assert encode_struct(chunk) in _footer_bytes(out)


def test_several_duckdb_bases_are_concatenated(tmp_path: Path) -> None:
    select = (
        "SELECT range::BIGINT AS id, 'k' || (range % 50) AS k, range * 1.5 AS d,"
        " [range, range + 1] AS l, {{'p': range}} AS st FROM range({first}, {end})"
    )
    bases = [
        _duckdb_copy(select.format(first=0, end=3000), tmp_path / "base0.parquet", 2048),
        _duckdb_copy(select.format(first=3000, end=3100), tmp_path / "base1.parquet", 2048),
        _duckdb_copy(select.format(first=3100, end=5000), tmp_path / "base2.parquet", 2048),
    ]
    groups = [2048, 952, 100, 1900]
    extra = _write(_extra_table(5000), tmp_path / "extra.parquet", groups, write_page_index=True)
    out = tmp_path / "out.parquet"

    append_columns(bases, extra, out)

    _assert_concatenated(bases, extra, out)
    assert [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(4)] == groups
    assert _rows(
        "SELECT id, k, label FROM read_parquet(?) WHERE id BETWEEN 3099 AND 3100", str(out)
    ) == [(3099, "k49", "label-3099"), (3100, "k0", "label-3100")]
    assert _rows("SELECT id, st FROM read_parquet(?) WHERE label = 'label-4999'", str(out)) == [
        (4999, {"p": 4999})
    ]


def test_a_duckdb_base_among_pyarrow_bases_is_refused_for_its_schema(tmp_path: Path) -> None:
    # The same columns and types, but DuckDB writes its schema elements differently (the root's
    # name, for one): the caller must group such files apart.
    first = tmp_path / "pyarrow.parquet"
    pq.write_table(pa.table({"id": pa.array(range(10), pa.int64())}), first)
    second = _duckdb_copy(
        "SELECT range::BIGINT AS id FROM range(10, 20)", tmp_path / "duckdb.parquet", 2048
    )
    extra = _write(_extra_table(20), tmp_path / "extra.parquet", [10, 10])
    assert schema_key(first) != schema_key(second)
    out = tmp_path / "out.parquet"
    with pytest.raises(WarehouseError) as caught:
        append_columns([first, second], extra, out)
    assert caught.value.message == f"{second} has a different schema from {first}"
    assert not out.exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.set_column(5, "qty", t.column("qty").cast(pa.int32())),
        lambda t: t.select(["k_dict", "id", *t.column_names[2:]]),
        lambda t: t.drop_columns(["tags"]),
        lambda t: t.rename_columns([*t.column_names[:-1], "tags2"]),
    ],
    ids=["type", "order", "missing column", "name"],
)
def test_bases_with_different_schemas_are_refused(
    tmp_path: Path, change: Callable[[pa.Table], pa.Table]
) -> None:
    bases = _pyarrow_bases(tmp_path)
    first, second, third = bases
    assert schema_key(first) == schema_key(second) == schema_key(third)
    _write(change(pq.read_table(second)), second, [300, 200, 300])
    assert schema_key(second) != schema_key(first)
    extra = _write(_extra_table(), tmp_path / "extra.parquet", CONCAT_GROUPS)
    out = tmp_path / "out.parquet"

    with pytest.raises(WarehouseError) as caught:
        append_columns(bases, extra, out)

    assert caught.value.message == f"{second} has a different schema from {first}"
    assert not out.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_extra_without_the_bases_row_groups_is_refused(tmp_path: Path) -> None:
    bases = _pyarrow_bases(tmp_path)
    names = ", ".join(str(base) for base in bases)
    out = tmp_path / "out.parquet"
    too_few = _write(_extra_table(), tmp_path / "few.parquet", [700, 500, 800, 500])
    with pytest.raises(WarehouseError) as caught:
        append_columns(bases, too_few, out)
    assert caught.value.message == f"{too_few} has 4 row groups, {names} have 6"
    too_many = _write(_extra_table(), tmp_path / "many.parquet", [*CONCAT_GROUPS[:-1], 250, 250])
    with pytest.raises(WarehouseError) as caught:
        append_columns(bases, too_many, out)
    assert caught.value.message == f"{too_many} has 7 row groups, {names} have 6"
    shifted = _write(_extra_table(), tmp_path / "shifted.parquet", [700, 500, 200, 300, 300, 500])
    with pytest.raises(WarehouseError) as caught:
        append_columns(bases, shifted, out)
    assert caught.value.message == f"row group 2 has 200 rows in {shifted}, 300 in {bases[1]}"
    assert not out.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_base_is_refused(tmp_path: Path) -> None:
    extra = _write(_extra_table(), tmp_path / "extra.parquet")
    with pytest.raises(WarehouseError, match="no base file"):
        append_columns([], extra, tmp_path / "out.parquet")


@pytest.mark.parametrize("page_index", [False, True])
def test_a_single_path_and_a_list_of_one_write_the_same_bytes(
    tmp_path: Path, page_index: bool
) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet", write_page_index=page_index)
    extra = _write(_extra_table(), tmp_path / "extra.parquet", write_page_index=page_index)

    append_columns(base, extra, tmp_path / "single.parquet")
    append_columns([base], extra, tmp_path / "list.parquet")
    append_columns((base,), extra, tmp_path / "tuple.parquet")

    single = (tmp_path / "single.parquet").read_bytes()
    assert (tmp_path / "list.parquet").read_bytes() == single
    assert (tmp_path / "tuple.parquet").read_bytes() == single
    _assert_concatenated([base], extra, tmp_path / "list.parquet")


def test_bases_scanned_ahead_write_the_same_bytes(tmp_path: Path) -> None:
    bases = _pyarrow_bases(tmp_path)
    extra = _write(_extra_table(), tmp_path / "extra.parquet", CONCAT_GROUPS)
    scanned = [scan_footer(base) for base in bases]

    append_columns(bases, extra, tmp_path / "paths.parquet")
    append_columns(scanned, extra, tmp_path / "scanned.parquet")
    append_columns([scanned[0], bases[1], scanned[2]], extra, tmp_path / "mixed.parquet")

    expected = (tmp_path / "paths.parquet").read_bytes()
    assert (tmp_path / "scanned.parquet").read_bytes() == expected
    assert (tmp_path / "mixed.parquet").read_bytes() == expected
    _assert_concatenated(bases, extra, tmp_path / "scanned.parquet")


def test_a_base_changed_since_its_scan_is_scanned_again(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(_extra_table(), tmp_path / "extra.parquet")
    scanned = scan_footer(base)
    # Rewritten in place with other options: other offsets, same rows and row groups.
    _write(_base_table(), base, use_dictionary=False)

    append_columns(scanned, extra, tmp_path / "out.parquet")

    _assert_merged(base, extra, tmp_path / "out.parquet")


def test_row_groups_of_one_extra_go_to_several_bases(tmp_path: Path) -> None:
    """One extra file holding the columns of two bases, one after the other: each base gets
    its own row groups of it, and only their bytes; the result equals the merge with an extra
    file of its own."""
    first = _write(_base_table(), tmp_path / "first.parquet")  # 1000, 1000, 500
    second = _write(_base_table(700), tmp_path / "second.parquet", [400, 300])
    shared = _write(
        pa.concat_tables([_extra_table(), _extra_table(700)]),
        tmp_path / "shared.parquet",
        [*ROW_GROUPS, 400, 300],
    )
    own = _write(_extra_table(700), tmp_path / "own.parquet", [400, 300])

    append_columns(first, shared, tmp_path / "out1.parquet", range(0, 3))
    append_columns(second, scan_footer(shared), tmp_path / "out2.parquet", range(3, 5))
    append_columns(second, own, tmp_path / "expected2.parquet")

    _assert_merged(
        first, _write(_extra_table(), tmp_path / "e1.parquet"), tmp_path / "out1.parquet"
    )
    out2, expected2 = (
        pq.read_table(tmp_path / "out2.parquet"),
        pq.read_table(tmp_path / "expected2.parquet"),
    )
    assert out2.equals(expected2)
    assert _rows("SELECT * FROM read_parquet(?)", str(tmp_path / "out2.parquet")) == _rows(
        "SELECT * FROM read_parquet(?)", str(tmp_path / "expected2.parquet")
    )
    # Only the chosen row groups' bytes were copied: out2 is no larger than its own merge
    # plus the footer's difference.
    size2 = (tmp_path / "out2.parquet").stat().st_size
    assert size2 < (tmp_path / "second.parquet").stat().st_size + own.stat().st_size


def test_row_groups_of_extra_must_exist_and_stand_alone(tmp_path: Path) -> None:
    base = _write(_base_table(), tmp_path / "base.parquet")
    extra = _write(_extra_table(), tmp_path / "extra.parquet")
    with pytest.raises(WarehouseError, match=r"row groups 1 to 3 of .* do not exist: it has 3"):
        append_columns(base, extra, tmp_path / "out.parquet", range(1, 4))
    indexed = _write(_extra_table(), tmp_path / "indexed.parquet", write_page_index=True)
    with pytest.raises(WarehouseError, match="column indexes, bloom filters"):
        append_columns(base, indexed, tmp_path / "out.parquet", range(0, 3))
    assert not (tmp_path / "out.parquet").exists()


def test_schema_key_is_the_encoded_schema_list(tmp_path: Path) -> None:
    path = _write(_base_table(), tmp_path / "base.parquet")
    key = schema_key(path)
    schema = _footer(path).find(2)
    assert schema is not None
    assert isinstance(schema.value, ThriftList)
    assert key == encode_struct(Struct([Field(2, CType.LIST, schema.value)]))[1:-1]
    assert len(schema.value.items) == 1 + 10  # root, 8 columns, tags' list and element


def test_row_group_ordinals_are_renumbered_to_their_merged_position(tmp_path: Path) -> None:
    bases = _pyarrow_bases(tmp_path)

    def number_row_groups(meta: Struct) -> None:
        for index, group in enumerate(_structs(meta, 4)):
            group.set(7, CType.I16, index)

    for base in bases:
        _rewrite_footer(base, number_row_groups)
    extra = _write(_extra_table(), tmp_path / "extra.parquet", CONCAT_GROUPS)
    out = tmp_path / "out.parquet"

    append_columns(bases, extra, out)

    assert [group.get_int(7) for group in _structs(_footer(out), 4)] == list(range(6))
    _assert_concatenated(bases, extra, out)
