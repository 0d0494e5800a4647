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
to VARCHAR to keep it. csv quotes a value with a carriage return as it does one with a newline.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import UsageError
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
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _dumps(_json_safe(_plain(value)), separators=(",", ":"))
    return str(_plain(value))


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


def check_format(fmt: str, out: Path | None) -> None:
    """Refuse a format that does not exist, parquet without a file, or an --out that cannot be
    written where it says (before any query runs: not after a ten-minute query)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise UsageError("--format parquet needs --out FILE")
    if out is None:
        return
    folder = out.parent
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise UsageError(
            f"--out {out}: the folder {folder} {what}", hint="create the folder, or fix the path"
        )
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder", hint="name a file to write, e.g. result.csv")


def render(table: pa.Table, fmt: str, *, width: int = 120, out: Path | None = None) -> str | None:
    """Render to text, or write `out` and return None (parquet always needs `out`)."""
    check_format(fmt, out)
    if out is not None:
        write_result(table.to_reader(), fmt, stream=io.StringIO(), out=out, width=width)
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
) -> int:
    """Write a result to `out` (or to `stream`) and return its row count. csv, ndjson, json and
    parquet are written batch by batch, so memory stays flat whatever the result's size; table
    and markdown show the first TABLE_MAX_ROWS rows."""
    check_format(fmt, out)
    if out is None:
        return _write_text(reader, fmt, stream, width)
    # Into a partial file renamed at the end: a query that fails at row 9,000,000 leaves no
    # file that looks complete.
    partial = out.with_name(f".{out.name}.partial")
    try:
        if fmt == "parquet":
            rows = _write_parquet(reader, partial)
        else:
            with partial.open("w", encoding="utf-8", newline="") as file:
                rows = _write_text(reader, fmt, file, width)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _write_parquet(reader: pa.RecordBatchReader, out: Path) -> int:
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
    stream.write(_table(shown, width, total) if fmt == "table" else _markdown(shown, total))
    return total


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
    return [{k: _json_safe(_plain(v)) for k, v in row.items()} for row in batch.to_pylist()]


def _texts(column: pa.Array) -> list[str]:
    """Each value as _text gives it: strings (dates and times are, by now), integers and
    booleans converted by Arrow (the bulk of a large export), the rest value by value."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.fill_null("").to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_integer(kind):
        return column.cast(pa.string()).fill_null("").to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_boolean(kind):
        texts = pc.if_else(column, "True", "False")
        return texts.fill_null("").to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_dictionary(kind):
        return _texts(column.cast(kind.value_type))
    return [_text(v) for v in column.to_pylist()]


def _csv(reader: pa.RecordBatchReader, stream: TextIO) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(reader.schema.names)
    rows = 0
    for batch in reader:
        columns = [_texts(c) for c in batch.columns]
        if any("\r" in "".join(texts) for texts in columns):
            _csv_quoting_returns(zip(*columns, strict=True), stream)
        else:
            writer.writerows(zip(*columns, strict=True))
        rows += batch.num_rows
    return rows


def _csv_quoting_returns(rows: Iterable[Sequence[str]], stream: TextIO) -> None:
    """Rows as csv writes them, with a value holding a carriage return quoted too: csv quotes
    for the characters of its line terminator ("\n") only, and a bare \r ends the row for most
    readers (Python's csv, DuckDB, Excel). One row at a time, so slower: only where needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        stream.write(buffer.getvalue()[:-2] + "\n")
        buffer.seek(0)
        buffer.truncate()


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
    rows = table.to_pylist()
    lines += ["| " + " | ".join(cell(_text(row[c])) for c in names) + " |" for row in rows]
    if total > table.num_rows:
        lines += ["", f"_({_more(table.num_rows, total)})_"]
    return "\n".join(lines) + "\n"


def _table(table: pa.Table, width: int, total: int) -> str:
    columns = table.column_names
    names = [_visible(n) for n in columns]  # a PIVOT makes column names of values
    cells = [[_short(_visible(_text(row[c]))) for c in columns] for row in table.to_pylist()]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    total_width = sum(widths) + 2 * (len(widths) - 1)
    if total > table.num_rows:
        footer = f"({_more(table.num_rows, total)})\n"
    else:
        footer = f"({total} row{'s' if total != 1 else ''})\n"
    if total_width > width and len(names) > 1 and cells:
        # Too wide for the terminal: one block per row, "column: value" lines.
        label = max(len(n) for n in names)
        blocks = []
        for i, row in enumerate(cells, 1):
            lines = [f"-[ row {i} ]" + "-" * 20]
            lines += [f"{n.ljust(label)} | {v}" for n, v in zip(names, row, strict=True)]
            blocks.append("\n".join(lines))
        return "\n".join(blocks) + ("\n" if blocks else "") + footer
    header = "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([header.rstrip(), rule, *(b.rstrip() for b in body)]) + "\n" + footer
