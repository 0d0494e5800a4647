"""Render a result table for a terminal, a ticket or a notebook.

table (aligned text, folding to one block per row when too wide), csv, json (array of objects),
ndjson, markdown, parquet (binary; needs a file).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import UsageError

FORMATS = ("table", "csv", "json", "ndjson", "parquet", "markdown")
MAX_CELL = 60  # table cells longer than this are shortened with an ellipsis (csv/json are not)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(_plain(value), separators=(",", ":"))
    return str(_plain(value))


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render(table: pa.Table, fmt: str, *, width: int = 120, out: Path | None = None) -> str | None:
    """Render to text, or write `out` and return None (parquet always needs `out`)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet needs --out FILE")
        pq.write_table(table, out, compression="zstd")
        return None
    text = _RENDERERS[fmt](table, width)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        return None
    return text


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]


def _csv(table: pa.Table, _width: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_text(row[c]) for c in table.column_names])
    return buffer.getvalue()


def _json(table: pa.Table, _width: int) -> str:
    return json.dumps(_rows(table), indent=2, ensure_ascii=False) + "\n"


def _ndjson(table: pa.Table, _width: int) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(table))


def _markdown(table: pa.Table, _width: int) -> str:
    def cell(value: Any) -> str:
        return _text(value).replace("|", "\\|").replace("\n", " ")

    names = table.column_names
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in names) + " |" for row in table.to_pylist()]
    return "\n".join(lines) + "\n"


def _table(table: pa.Table, width: int) -> str:
    names = table.column_names
    cells = [[_short(_text(row[c])) for c in names] for row in table.to_pylist()]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    total = sum(widths) + 2 * (len(widths) - 1)
    footer = f"({table.num_rows} row{'s' if table.num_rows != 1 else ''})\n"
    if total > width and len(names) > 1:
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


_RENDERERS = {
    "table": _table,
    "csv": _csv,
    "json": _json,
    "ndjson": _ndjson,
    "markdown": _markdown,
}
