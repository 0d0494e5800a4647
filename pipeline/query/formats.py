"""Render a result table for a terminal, a ticket or a notebook.

table (aligned text, folding to one block per row when too wide), csv, json (array of objects),
ndjson, markdown, parquet (binary; needs a file). Results are written batch by batch
(write_result), so an export of millions of rows needs no more memory than a few batches.

JSON has no NaN or infinity: json and ndjson write them as the strings "NaN", "Infinity" and
"-Infinity" (as protobuf's JSON mapping does), so strict parsers read every line and the value
is not lost to null. Intervals are written as ISO 8601 durations ("P1DT2H") in every format.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import UsageError

FORMATS = ("table", "csv", "json", "ndjson", "parquet", "markdown")
MAX_CELL = 60  # table cells longer than this are shortened with an ellipsis (csv/json are not)


def _plain(value: Any) -> Any:
    if isinstance(value, pa.MonthDayNano):  # a tuple: before the list case below
        return _duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # DuckDB's SUM of integers is a HUGEINT, a 38-digit decimal in Arrow: a count, not 7.0.
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _duration(value: pa.MonthDayNano) -> str:
    """An interval as an ISO 8601 duration: P1M2DT3H4M5.5S; PT0S when empty. A negative part
    keeps its sign (PT-3H), as java.time writes it."""
    months, days, nanos = value.months, value.days, value.nanoseconds
    sign = "-" if nanos < 0 else ""
    hours, rest = divmod(abs(nanos), 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds, fraction = divmod(rest, 1_000_000_000)
    date_part = (f"{months}M" if months else "") + (f"{days}D" if days else "")
    time_part = (f"{sign}{hours}H" if hours else "") + (f"{sign}{minutes}M" if minutes else "")
    if seconds or fraction:
        digits = f".{fraction:09d}".rstrip("0") if fraction else ""
        time_part += f"{sign}{seconds}{digits}S"
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + (f"T{time_part}" if time_part else "")


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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(_json_safe(_plain(value)), separators=(",", ":"))
    return str(_plain(value))


def _short(text: str) -> str:
    text = text.replace("\n", " ")
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
    rows = 0
    with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _write_text(reader: pa.RecordBatchReader, fmt: str, stream: TextIO, width: int) -> int:
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
    """Each value as _text gives it: strings, integers, booleans and dates converted by Arrow
    (the bulk of a large export), the rest value by value."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.fill_null("").to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_integer(kind) or pa.types.is_date32(kind):
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
        writer.writerows(zip(*(_texts(c) for c in batch.columns), strict=True))
        rows += batch.num_rows
    return rows


def _ndjson(reader: pa.RecordBatchReader, stream: TextIO) -> int:
    rows = 0
    for batch in reader:
        stream.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(batch))
        rows += batch.num_rows
    return rows


def _json(reader: pa.RecordBatchReader, stream: TextIO) -> int:
    """One JSON array, as json.dumps(rows, indent=2) writes it, one row at a time."""
    rows = 0
    for batch in reader:
        for row in _rows(batch):
            item = json.dumps(row, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            stream.write(("[\n  " if rows == 0 else ",\n  ") + item)
            rows += 1
    stream.write("[]\n" if rows == 0 else "\n]\n")
    return rows


def _markdown(table: pa.Table, total: int) -> str:
    def cell(value: Any) -> str:
        return _text(value).replace("|", "\\|").replace("\n", " ")

    names = table.column_names
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in names) + " |" for row in table.to_pylist()]
    if total > table.num_rows:
        lines += ["", f"_({_more(table.num_rows, total)})_"]
    return "\n".join(lines) + "\n"


def _table(table: pa.Table, width: int, total: int) -> str:
    names = table.column_names
    cells = [[_short(_text(row[c])) for c in names] for row in table.to_pylist()]
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
