"""Render a result table for a terminal, a ticket or a notebook.

table (aligned text, folding to one block per row when too wide), csv, json (array of objects),
ndjson, markdown, parquet (binary; needs a file). Results are written batch by batch
(write_result), so an export of millions of rows needs no more memory than a few batches.

JSON has no NaN or infinity: json and ndjson write them as the strings "NaN", "Infinity" and
"-Infinity" (as protobuf's JSON mapping does), so strict parsers read every line and the value
is not lost to null. Intervals are written as ISO 8601 durations ("P1DT2H") in every format,
parquet included (a string column: Parquet's INTERVAL holds neither nanoseconds nor negative
parts). Decimals are written exactly, with their scale ("1.50"; in json a number, digits as
DuckDB has them), never through a float. Dates, times and timestamps are ISO 8601 text as
Python's isoformat writes it (temporal_text.py), with the nanoseconds of TIMESTAMP_NS, years
beyond 0000-9999 as java.time writes them (+10000-01-01) and DuckDB's infinite values as
"infinity" and "-infinity". A TIMETZ arrives without its offset (DuckDB's Arrow export drops it
unless arrow_lossless_conversion is set, which also changes HUGEINT, UUID and JSON): cast it
to VARCHAR to keep it (README says so too). A BIT arrives as its bits ('101'): DuckDB hands it
over as the bytes of its encoding, which execute.exportable casts to text before Arrow sees
them. Booleans are written true and false. csv quotes a value with a carriage return as it
does one with a newline, and tells NULL (an empty field) from an empty text (`""`) as DuckDB's
COPY does. A MAP whose keys are text is a JSON object ({"Owner": "platform-team"}), as DuckDB's
to_json writes it; a MAP of other keys stays a list of [key, value] pairs.

Columns are taken by position: table, markdown and csv show two columns of one name (a
self-join's a.event_name, b.event_name) side by side. json and ndjson, one object key per
column, and parquet, whose readers refuse them, refuse such a result (check_columns), as
parquet refuses a UNION column, which it cannot store.

--out (write_result): where and how a result file is written, and what is refused before the
statement runs, is out_path.py's.

In table and markdown, which are read on a screen, control characters and bidi overrides of a
value (a userAgent is written by whoever made the call) are shown escaped (\\r, \\x1b,
\\u202e), never sent to the terminal; the other formats keep values exact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import UsageError
from pipeline.query.out_path import (
    check_out,
    destination,
    in_place,
    open_descriptor,
    partial_path,
    write_failure,
)
from pipeline.query.temporal_text import clocks, days, duration, moments

FORMATS = ("table", "csv", "json", "ndjson", "parquet", "markdown")
MAX_CELL = 60  # table cells longer than this are shortened with an ellipsis (csv/json are not)


class _Number(str):
    """A decimal's exact text. json writes it as a number (_dumps): as a float it would lose
    digits (12345678901234567.89 became 1.2345678901234568e+16)."""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        # DuckDB's SUM of integers is a HUGEINT, a 38-digit decimal in Arrow: a count, not 7.0.
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return int(value)
        return _Number(format(value, "f"))  # "f": never 1E-7
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _from_duckdb_extension(column: pa.Array) -> pa.Array:
    """A DuckDB type Arrow has no match for (BIGNUM), which DuckDB exports as an extension type
    over its bytes: the bytes, which Parquet stores and the text formats write as hex."""
    return column.storage


def _as_stored(column: pa.Array) -> pa.Array | None:
    """The column as Parquet can store it faithfully, or None when it can as it is."""
    if pa.types.is_interval(column.type):
        texts = [None if v is None else duration(v) for v in column.to_pylist()]
        return pa.array(texts, pa.string())
    if isinstance(column.type, pa.BaseExtensionType):
        return _from_duckdb_extension(column)
    return None


def _as_text(column: pa.Array) -> pa.Array | None:
    """The column as the text formats write it, where Python's value of it is not that."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return moments(column)
    if pa.types.is_date(kind):
        return days(column)
    if pa.types.is_time(kind):
        return clocks(column)
    return _as_stored(column)


def _converted(column: pa.Array, convert: Callable[[pa.Array], pa.Array | None]) -> pa.Array:
    """The column with `convert` applied to it or, when it gives None, to the arrays it is made
    of (an interval in a list in a struct)."""
    done = convert(column)
    if done is not None:
        return done
    kind = column.type
    mask = column.is_null() if column.null_count else None
    if pa.types.is_struct(kind):
        children = [_converted(column.field(i), convert) for i in range(kind.num_fields)]
        fields = [kind.field(i).with_type(c.type) for i, c in enumerate(children)]
        return pa.StructArray.from_arrays(children, fields=fields, mask=mask)
    # A slice of a batch has sliced offsets, which from_arrays refuses beside a mask: copied.
    if pa.types.is_map(kind):
        keys, items = _converted(column.keys, convert), _converted(column.items, convert)
        offsets = pa.concat_arrays([column.offsets])
        return pa.MapArray.from_arrays(offsets, keys, items, mask=mask)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        values = _converted(column.values, convert)
        field = kind.value_field.with_type(values.type)
        offsets = pa.concat_arrays([column.offsets])
        if pa.types.is_list(kind):
            return pa.ListArray.from_arrays(offsets, values, pa.list_(field), mask=mask)
        return pa.LargeListArray.from_arrays(offsets, values, pa.large_list(field), mask=mask)
    if pa.types.is_fixed_size_list(kind):
        size = kind.list_size
        values = column.values.slice(column.offset * size, len(column) * size)
        values = _converted(values, convert)
        field = kind.value_field.with_type(values.type)
        return pa.FixedSizeListArray.from_arrays(values, type=pa.list_(field, size), mask=mask)
    if pa.types.is_dictionary(kind):
        return pa.DictionaryArray.from_arrays(
            column.indices, _converted(column.dictionary, convert)
        )
    return column


def _converted_reader(
    reader: pa.RecordBatchReader, convert: Callable[[pa.Array], pa.Array | None]
) -> pa.RecordBatchReader:
    """The reader with `convert` applied to each batch's columns (see _converted); the reader
    itself when no column has anything to convert."""
    types = [_converted(pa.nulls(0, f.type), convert).type for f in reader.schema]
    changed = [t != f.type for t, f in zip(types, reader.schema, strict=True)]
    if not any(changed):
        return reader
    schema = pa.schema([f.with_type(t) for f, t in zip(reader.schema, types, strict=True)])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            columns = [
                _converted(c, convert) if change else c
                for c, change in zip(batch.columns, changed, strict=True)
            ]
            yield pa.record_batch(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


# ---- JSON --------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """A plain value JSON can hold: NaN and the infinities become strings (see the module's
    docstring)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _dumps(
    value: Any,
    *,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    ensure_ascii: bool = True,
    _level: int = 0,
) -> str:
    """json.dumps, the same text, with a _Number written as the number it holds (json.dumps
    quotes it: it is a str). In Python, slower: rows use it only where their schema has decimals
    with a fraction (_row_dumps)."""
    if isinstance(value, _Number):
        return str.__str__(value)
    if not isinstance(value, dict | list) or not value:
        return json.dumps(value, ensure_ascii=ensure_ascii)
    item, key = separators or ("," if indent is not None else ", ", ": ")
    if indent is None:
        start = end = ""
    else:
        start, end = "\n" + " " * indent * (_level + 1), "\n" + " " * indent * _level
        item += start
    options: dict[str, Any] = {
        "indent": indent,
        "separators": separators,
        "ensure_ascii": ensure_ascii,
        "_level": _level + 1,
    }
    if isinstance(value, dict):
        parts = [
            json.dumps(k, ensure_ascii=ensure_ascii) + key + _dumps(v, **options)
            for k, v in value.items()
        ]
        return "{" + start + item.join(parts) + end + "}"
    return "[" + start + item.join(_dumps(v, **options) for v in value) + end + "]"


def _has_fraction(kind: pa.DataType) -> bool:
    """Whether values of this type can hold a decimal with a fraction (a _Number)."""
    if pa.types.is_decimal(kind):
        return bool(kind.scale > 0)
    if pa.types.is_dictionary(kind):
        return _has_fraction(kind.value_type)
    return any(_has_fraction(kind.field(i).type) for i in range(kind.num_fields))


def _row_dumps(schema: pa.Schema) -> Callable[..., str]:
    """json.dumps (in C) for rows of this schema, _dumps where they can hold a _Number."""
    return _dumps if any(_has_fraction(f.type) for f in schema) else json.dumps


def _text(value: Any) -> str:
    """A value as the text formats write it (a boolean's is _shown's: _text is the hot path of
    csv, and boolean columns never come here)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _dumps(_json_safe(_plain(value)), separators=(",", ":"))
    return str(_plain(value))


def _shown(value: Any) -> str:
    """_text, with booleans as SQL and JSON write them (true), not as Python does (True)."""
    if value is True or value is False:
        return "true" if value else "false"
    return _text(value)


# ---- Python values of a column ---------------------------------------------------------------


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _has_text_map(kind: pa.DataType) -> bool:
    """Whether values of this type hold a MAP whose keys are text."""
    if pa.types.is_map(kind) and _is_text(kind.key_type):
        return True
    if pa.types.is_dictionary(kind):
        return _has_text_map(kind.value_type)
    return any(_has_text_map(kind.field(i).type) for i in range(kind.num_fields))


def _shaped(value: Any, kind: pa.DataType) -> Any:
    """A value of to_pylist with each MAP of text keys as a dict (Arrow gives every MAP as a
    list of (key, value) pairs): a JSON object, as DuckDB writes such a map. A MAP of other keys
    (numbers, structs) stays pairs: JSON keys are text, and 1 and '1' would meet."""
    if value is None:
        return None
    if pa.types.is_map(kind):
        item = kind.item_type
        if _is_text(kind.key_type):
            return {k: _shaped(v, item) for k, v in value}
        return [(_shaped(k, kind.key_type), _shaped(v, item)) for k, v in value]
    if pa.types.is_struct(kind):
        return {f.name: _shaped(value.get(f.name), f.type) for f in kind}
    if pa.types.is_dictionary(kind):
        return _shaped(value, kind.value_type)
    if _is_list(kind):
        return [_shaped(v, kind.value_type) for v in value]
    return value


def _is_list(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_list_view(kind)
        or pa.types.is_large_list_view(kind)
    )


def _pylist(column: pa.Array) -> list[Any]:
    """The column's values in Python, MAPs of text keys as dicts (_shaped)."""
    values = column.to_pylist()
    if not _has_text_map(column.type):
        return values  # type: ignore[no-any-return]
    return [_shaped(v, column.type) for v in values]


# ---- what a terminal shows -------------------------------------------------------------------
# Characters a terminal acts on instead of showing: C0 controls (\r goes back to the start of
# the line, \x1b starts a sequence that can erase lines or hide text), DEL, C1 controls (\x9b is
# a one-byte \x1b[) and the bidi overrides and isolates that reorder the text shown around them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHORT_ESCAPES = {"\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _visible(text: str) -> str:
    """Text for a screen: a newline becomes a space (a cell stays on its line), the other
    characters in _UNSAFE are written as Python escapes them (\\r, \\x1b, \\u202e)."""
    return _UNSAFE.sub(_escape, text.replace("\n", " "))


def _short(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _width(text: str) -> int:
    """The columns a terminal gives `text`, which `table` aligns by: two for a wide or
    full-width character (CJK: east_asian_width W or F), none for a combining mark (the accent
    of 'e' + U+0301) or a format character (a zero-width joiner), one for any other."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _pad(text: str, width: int) -> str:
    """`text` followed by the spaces that make it `width` columns wide."""
    return text + " " * (width - _width(text))


def check_format(fmt: str, out: Path | None, warehouse: str | Path | None = None) -> None:
    """Refuse a format that does not exist, parquet without a file, or an --out that cannot be
    written where it says (before any query runs: not after a ten-minute query): a folder that
    does not exist, a file inside `warehouse` (the one the command reads) or inside another
    warehouse's own files, a name too long, no permission to write."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise UsageError("--format parquet needs --out FILE")
    if out is None:
        return
    try:
        check_out(out, warehouse)
    except OSError as exc:  # a path the system will not even look at (ENAMETOOLONG)
        raise write_failure(out, exc) from None


def render(
    table: pa.Table,
    fmt: str,
    *,
    width: int = 120,
    out: Path | None = None,
    warehouse: str | Path | None = None,
) -> str | None:
    """Render to text, or write `out` and return None (parquet always needs `out`)."""
    check_format(fmt, out, warehouse)
    if out is not None:
        write_result(
            table.to_reader(), fmt, stream=io.StringIO(), out=out, width=width, warehouse=warehouse
        )
        return None
    text = io.StringIO()
    write_result(table.to_reader(), fmt, stream=text, out=None, width=width)
    return text.getvalue()


# Rows the table and markdown formats show. They are for people, who read a screen or a ticket:
# the rows beyond are counted, not shown, and the footer says how to get them all. Users: `sql`
# and `query run` at a terminal, where a 10M-row result would otherwise be held whole in
# memory to measure its columns.
TABLE_MAX_ROWS = 10_000


def write_result(
    reader: pa.RecordBatchReader,
    fmt: str,
    *,
    stream: TextIO,
    out: Path | None = None,
    width: int = 120,
    warehouse: str | Path | None = None,
) -> int:
    """Write a result to `out` (or to `stream`) and return its row count. csv, ndjson, json and
    parquet are written batch by batch, so memory stays flat whatever the result's size; table
    and markdown show the first TABLE_MAX_ROWS rows. `warehouse` is the one the command reads
    (check_format)."""
    check_format(fmt, out, warehouse)
    check_columns(reader.schema, fmt)
    if out is None:
        return _write_text(reader, fmt, stream, width)
    try:
        number = open_descriptor(out)
        if number is not None:
            # /dev/stdout and the like: the descriptor the shell opened, as it is (a file
            # opened with >> is appended to, a pipe written).
            if number == 1:
                stream.flush()
            try:
                return _write_descriptor(reader, fmt, number, width)
            except BrokenPipeError as exc:
                if number != 1:
                    raise
                raise _StdoutClosed(*exc.args) from None
        if in_place(out):
            # A FIFO or a device: written in place, as a shell's > does.
            return _write_file(reader, fmt, out, width, direct=True)
        target = destination(out)
        # Into a partial file renamed at the end: a query that fails at row 9,000,000 leaves
        # no file that looks complete.
        partial = partial_path(target)
        try:
            rows = _write_file(reader, fmt, partial, width, direct=False)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except _StdoutClosed:
        raise
    except OSError as exc:
        raise write_failure(out, exc) from None
    return rows


class _StdoutClosed(BrokenPipeError):
    """`--out /dev/stdout | head`: stdout's reader left, as it may without --out. Passed on as
    the BrokenPipeError it is, which the CLI ends silently with 141, not as the one line of a
    failed write."""


def _write_descriptor(reader: pa.RecordBatchReader, fmt: str, number: int, width: int) -> int:
    if fmt == "parquet":  # written as a stream: a pipe cannot seek
        with os.fdopen(os.dup(number), "wb") as binary:
            return _write_parquet(reader, binary)
    with os.fdopen(os.dup(number), "w", encoding="utf-8", newline="") as file:
        return _write_text(reader, fmt, file, width)


def _write_file(
    reader: pa.RecordBatchReader, fmt: str, path: Path, width: int, *, direct: bool
) -> int:
    if fmt == "parquet":
        if not direct:
            return _write_parquet(reader, path)
        with path.open("wb") as binary:  # a path would be opened seekable, which a FIFO is not
            return _write_parquet(reader, binary)
    with path.open("w", encoding="utf-8", newline="") as file:
        return _write_text(reader, fmt, file, width)


def check_columns(schema: pa.Schema, fmt: str) -> None:
    """Refuse a result a format cannot hold faithfully: two columns of one name in json and
    ndjson (one object key each) or parquet (readers cannot tell them apart), a UNION column in
    parquet (Parquet has no union type). table, markdown and csv take any result."""
    if fmt in ("json", "ndjson", "parquet"):
        repeated = [name for name, n in Counter(schema.names).items() if n > 1]
        if repeated:
            shown = ", ".join(repr(name) for name in repeated)
            raise UsageError(
                f"--format {fmt}: the result has more than one column named {shown}, which "
                f"{fmt} cannot keep apart",
                hint="name each column once with AS, e.g. SELECT a.x AS a_x, b.x AS b_x; or use "
                "csv, table or markdown",
            )
    if fmt == "parquet":
        unions = [f.name for f in schema if _has_union(f.type)]
        if unions:
            shown = ", ".join(repr(name) for name in unions)
            raise UsageError(
                f"--format parquet: the column {shown} holds a UNION, which Parquet cannot store",
                hint="cast it to one type (e.g. col::VARCHAR), or use csv, json or ndjson",
            )


def _has_union(kind: pa.DataType) -> bool:
    if pa.types.is_union(kind):
        return True
    if pa.types.is_dictionary(kind):
        return _has_union(kind.value_type)
    return any(_has_union(kind.field(i).type) for i in range(kind.num_fields))


def _write_parquet(reader: pa.RecordBatchReader, out: Path | IO[bytes]) -> int:
    reader = _converted_reader(reader, _as_stored)
    rows = 0
    with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _write_text(reader: pa.RecordBatchReader, fmt: str, stream: TextIO, width: int) -> int:
    reader = _converted_reader(reader, _as_text)
    if fmt == "csv":
        return _csv(reader, stream)
    if fmt == "ndjson":
        return _ndjson(reader, stream)
    if fmt == "json":
        return _json(reader, stream)
    shown, total = _first_rows(reader, TABLE_MAX_ROWS)
    _write_all(stream, _table(shown, width, total) if fmt == "table" else _markdown(shown, total))
    return total


# Text written to a stream at most this much at a time (table, markdown).
_CHUNK_CHARS = 1 << 16


def _write_all(stream: TextIO, text: str) -> None:
    """`text` in chunks, each flushed: CPython takes the partial write() of a pipe whose reader
    left (`agenttrail sql | head`) as the whole text written, and ended with 0, where a chunk
    written after it fails with EPIPE, which the CLI ends with 141."""
    for start in range(0, len(text), _CHUNK_CHARS):
        stream.write(text[start : start + _CHUNK_CHARS])
        stream.flush()


def _first_rows(reader: pa.RecordBatchReader, limit: int) -> tuple[pa.Table, int]:
    """The first `limit` rows, and how many rows the result has."""
    kept: list[pa.RecordBatch] = []
    held = total = 0
    for batch in reader:
        if held < limit:
            kept.append(batch.slice(0, limit - held))
            held += kept[-1].num_rows
        total += batch.num_rows
    return pa.Table.from_batches(kept, schema=reader.schema), total


def _more(shown: int, total: int) -> str:
    return (
        f"the first {shown:,} of {total:,} rows shown; --format csv, json, ndjson or parquet"
        " with --out gives them all"
    )


def _rows(batch: pa.RecordBatch | pa.Table) -> list[dict[str, Any]]:
    """The rows as objects (json, ndjson: names are unique, check_columns)."""
    names = batch.schema.names
    columns = [[_json_safe(_plain(v)) for v in _pylist(c)] for c in batch.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _cells(table: pa.Table) -> list[list[str]]:
    """The rows as the texts table and markdown show, column by position (two columns may
    share a name)."""
    columns = [[_shown(v) for v in _pylist(c)] for c in table.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _texts(column: pa.Array) -> list[str | None]:
    """Each value as _text gives it, None for NULL: strings (dates and times are, by now),
    integers and booleans converted by Arrow (the bulk of a large export), the rest value by
    value."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_integer(kind):
        return column.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false").to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_dictionary(kind):
        return _texts(column.cast(kind.value_type))
    if pa.types.is_union(kind):  # a member may be a boolean, or NULL (a union counts no nulls)
        return [None if v is None else _shown(v) for v in _pylist(column)]
    if not column.null_count:
        return [_text(v) for v in _pylist(column)]
    return [None if v is None else _text(v) for v in _pylist(column)]


def _is_plain_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _needs_exact(column: pa.Array, single: bool) -> bool:
    """Whether csv.writer would write a value of this column wrong (see _csv): an empty text,
    a carriage return, or a NULL alone on its row. Text columns are looked at by Arrow."""
    if single and column.null_count:
        return True
    kind = column.type
    if _is_plain_text(kind):
        return bool(pc.any(pc.match_substring_regex(column, "^$|\r")).as_py())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return False
    texts = _texts(column)
    return "" in texts or (single and None in texts) or "\r" in "".join(filter(None, texts))


def _csv(reader: pa.RecordBatchReader, stream: TextIO) -> int:
    """NULL is an empty field, an empty text `""` (as DuckDB's and PostgreSQL's COPY write
    them): csv.writer writes both as an empty field, and so _csv_exact writes a batch holding
    an empty text, a carriage return, or a NULL in a result of one column (which csv.writer
    writes `""`)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(reader.schema.names)
    rows = 0
    single = len(reader.schema) == 1
    for batch in reader:
        if any(_needs_exact(column, single) for column in batch.columns):
            _csv_exact(batch, stream)
        else:
            writer.writerows(zip(*(_texts(c) for c in batch.columns), strict=True))
        rows += batch.num_rows
    return rows


_CSV_SPECIAL = re.compile('[,"\r\n]')


def _csv_field(text: str | None) -> str:
    if text is None:
        return ""
    if text == "" or _CSV_SPECIAL.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_fields(column: pa.Array) -> pa.Array:
    """A column's fields as _csv_exact writes them, as Arrow text: a text quoted where it is
    empty or holds a comma, a quote, a newline or a carriage return (its quotes doubled), NULL
    an empty field. Text, integer and boolean columns are done by Arrow, whole."""
    kind = column.type
    if _is_plain_text(kind):
        special = pc.match_substring_regex(column, '^$|[,"\r\n]')
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
        return pc.if_else(special, quoted, column).fill_null("")
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return pa.array(_texts(column), pa.string()).fill_null("")
    return pa.array([_csv_field(v) for v in _texts(column)], pa.string())


def _csv_exact(batch: pa.RecordBatch, stream: TextIO) -> None:
    """A batch as csv.writer writes it, but for an empty text quoted (`""`), NULL an empty
    field even alone on its row, and a value holding a carriage return quoted: csv.writer
    quotes for the characters of its line terminator ("\n") only, and a bare \r ends the row
    for most readers (Python's csv, DuckDB, Excel). The lines are joined by Arrow."""
    fields = [_csv_fields(column) for column in batch.columns]
    lines = pc.binary_join_element_wise(*fields, ",") if len(fields) > 1 else fields[0]
    for start in range(0, len(lines), 65536):
        chunk = lines.slice(start, 65536).to_pylist()
        stream.write("\n".join(chunk) + "\n")


def _ndjson(reader: pa.RecordBatchReader, stream: TextIO) -> int:
    dumps = _row_dumps(reader.schema)
    rows = 0
    for batch in reader:
        stream.writelines(dumps(r, ensure_ascii=False) + "\n" for r in _rows(batch))
        rows += batch.num_rows
    return rows


def _json(reader: pa.RecordBatchReader, stream: TextIO) -> int:
    """One JSON array, as json.dumps(rows, indent=2) writes it, one row at a time."""
    dumps = _row_dumps(reader.schema)
    rows = 0
    for batch in reader:
        for row in _rows(batch):
            item = dumps(row, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            stream.write(("[\n  " if rows == 0 else ",\n  ") + item)
            rows += 1
    stream.write("[]\n" if rows == 0 else "\n]\n")
    return rows


def _markdown(table: pa.Table, total: int) -> str:
    def cell(text: str) -> str:
        return _visible(text).replace("|", "\\|")

    names = table.column_names
    lines = [
        "| " + " | ".join(cell(n) for n in names) + " |",
        "|" + "|".join("---" for _ in names) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in _cells(table)]
    if total > table.num_rows:
        lines += ["", f"_({_more(table.num_rows, total)})_"]
    return "\n".join(lines) + "\n"


def _table(table: pa.Table, width: int, total: int) -> str:
    names = [_visible(n) for n in table.column_names]  # a PIVOT makes column names of values
    cells = [[_short(_visible(v)) for v in row] for row in _cells(table)]
    widths = [max([_width(n), *(_width(r[i]) for r in cells)]) for i, n in enumerate(names)]
    total_width = sum(widths) + 2 * (len(widths) - 1)
    if total > table.num_rows:
        footer = f"({_more(table.num_rows, total)})\n"
    else:
        footer = f"({total} row{'s' if total != 1 else ''})\n"
    if total_width > width and len(names) > 1 and cells:
        # Too wide for the terminal: one block per row, "column: value" lines.
        label = max(_width(n) for n in names)
        blocks = []
        for i, row in enumerate(cells, 1):
            lines = [f"-[ row {i} ]" + "-" * 20]
            lines += [f"{_pad(n, label)} | {v}" for n, v in zip(names, row, strict=True)]
            blocks.append("\n".join(lines))
        return "\n".join(blocks) + ("\n" if blocks else "") + footer
    header = "  ".join(_pad(n, w) for n, w in zip(names, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(_pad(v, w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([header.rstrip(), rule, *(b.rstrip() for b in body)]) + "\n" + footer
