"""Result formats: written batch by batch, with the same text as whole-table rendering gave.

The references below are the whole-table renderers of earlier versions (one Python row at a
time), kept as the oracle that the streamed writers must match byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import QueryError, UsageError
from pipeline.query import formats
from pipeline.query.formats import _plain, _text, write_result

from .conftest import CliRunner

EVERY_KIND = pa.table(
    {
        "text": ["plain", 'with "quotes", commas', "line\nbreak", None, "ünïcode"],
        "number": pa.array([1, -2, None, 40_000_000_000, 0], pa.int64()),
        "flag": [True, False, None, True, False],
        "day": [date(2024, 3, 1), None, date(1999, 12, 31), date(2024, 2, 29), date(2024, 3, 1)],
        "moment": pa.array(
            [
                datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
                datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC),
                None,
                datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC),
                datetime(2024, 3, 2, tzinfo=UTC),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "ratio": [0.1, None, 1e20, -2.5, 3.0],
        "amount": pa.array(
            [Decimal("1.50"), None, Decimal("0"), Decimal("-3.25"), Decimal("10")],
            pa.decimal128(10, 2),
        ),
        "total": pa.array(
            [Decimal("7"), Decimal("0"), None, Decimal("12345678901234567890"), Decimal("-1")],
            pa.decimal128(38, 0),
        ),
        "kinds": pa.array([["agent", "human"], [], None, ["x"], ["a,b"]], pa.list_(pa.string())),
        "tags": pa.array(
            [{"key": "Usage", "value": "Agent"}, None, {"key": "k", "value": None}, None, None],
            pa.struct([("key", pa.string()), ("value", pa.string())]),
        ),
        "actor": pa.array(["agent", "human", None, "agent", "agent"]).dictionary_encode(),
    }
)


def reference_csv(table: pa.Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_text(row[c]) for c in table.column_names])
    return buffer.getvalue()


def reference_rows(table: pa.Table) -> list[dict[str, object]]:
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]


def in_batches(table: pa.Table, rows: int) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=rows))


def written(table: pa.Table, fmt: str, *, batch_rows: int = 2) -> str:
    stream = io.StringIO()
    rows = write_result(in_batches(table, batch_rows), fmt, stream=stream)
    assert rows == table.num_rows
    return stream.getvalue()


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_streamed_text_formats_equal_whole_table_rendering(rows: int) -> None:
    table = EVERY_KIND.slice(0, rows)
    assert written(table, "csv") == reference_csv(table)
    assert written(table, "json") == (
        json.dumps(reference_rows(table), indent=2, ensure_ascii=False) + "\n"
    )
    assert written(table, "ndjson") == "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in reference_rows(table)
    )


def test_csv_text_of_each_kind() -> None:
    lines = written(EVERY_KIND, "csv").split("\n")
    assert lines[0] == "text,number,flag,day,moment,ratio,amount,total,kinds,tags,actor"
    assert lines[1] == (
        'plain,1,True,2024-03-01,2024-03-01T08:00:00+00:00,0.1,1.5,7,"[""agent"",""human""]",'
        '"{""key"":""Usage"",""value"":""Agent""}",agent'
    )
    assert lines[2] == (
        '"with ""quotes"", commas",-2,False,,2024-03-01T08:00:00.123456+00:00,,,0,[],,human'
    )
    parsed = list(csv.reader(io.StringIO(written(EVERY_KIND, "csv"))))
    assert [row[7] for row in parsed] == ["total", "7", "0", "", "12345678901234567890", "-1"]


def test_parquet_is_written_batch_by_batch(tmp_path: Path) -> None:
    out = tmp_path / "result.parquet"
    rows = write_result(in_batches(EVERY_KIND, 2), "parquet", stream=io.StringIO(), out=out)
    assert rows == 5
    back = pq.read_table(out)
    assert back.num_rows == 5
    assert back.column("text").to_pylist() == EVERY_KIND.column("text").to_pylist()
    assert pq.ParquetFile(out).metadata.num_row_groups == 3


def test_table_and_markdown_show_the_first_rows_and_count_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(formats, "TABLE_MAX_ROWS", 3)
    table = pa.table({"n": list(range(1, 8))})
    assert written(table, "table") == (
        "n\n-\n1\n2\n3\n"
        "(the first 3 of 7 rows shown; --format csv, json, ndjson or parquet with --out gives "
        "them all)\n"
    )
    assert written(table, "markdown") == (
        "| n |\n|---|\n| 1 |\n| 2 |\n| 3 |\n\n"
        "_(the first 3 of 7 rows shown; --format csv, json, ndjson or parquet with --out gives "
        "them all)_\n"
    )
    assert written(table.slice(0, 3), "table") == "n\n-\n1\n2\n3\n(3 rows)\n"


def failing_after(batches: int) -> pa.RecordBatchReader:
    schema = pa.schema([("n", pa.int64())])

    def produce() -> Iterator[pa.RecordBatch]:
        for i in range(batches):
            yield pa.record_batch([pa.array([i])], schema=schema)
        raise QueryError("SQL error: Conversion Error: Could not convert string 'x' to INT32")

    return pa.RecordBatchReader.from_batches(schema, produce())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_result_that_fails_midway_leaves_no_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"result.{fmt}"
    with pytest.raises(QueryError, match="Conversion Error"):
        write_result(failing_after(3), fmt, stream=io.StringIO(), out=out)
    assert list(tmp_path.iterdir()) == []


def test_sql_reports_an_error_met_while_streaming(
    cli: CliRunner, tiny_warehouse: Path, tmp_path: Path
) -> None:
    """DuckDB meets the bad value after it has handed over the first batches."""
    statement = (
        "SELECT CASE WHEN i < 150000 THEN i::VARCHAR ELSE 'x' END::INTEGER AS n"
        " FROM range(200000) t(i)"
    )
    out = tmp_path / "n.csv"
    done = cli("sql", statement, "-w", str(tiny_warehouse), "-f", "csv", "-o", str(out))
    assert done.returncode == 1
    assert done.stderr == (
        "error: SQL error: Conversion Error: Could not convert string 'x' to INT32\n"
    )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


NOT_FINITE = pa.table(
    {
        "y": [float("nan"), 1.5],
        "z": [float("inf"), float("-inf")],
        "l": pa.array([[1.0, float("nan")], None], pa.list_(pa.float64())),
    }
)


def test_json_writes_nan_and_infinity_as_strings() -> None:
    """NaN and Infinity are not JSON: strict parsers (and jq, which makes NaN null) would
    reject or change them."""
    ndjson = written(NOT_FINITE, "ndjson")
    assert ndjson == (
        '{"y": "NaN", "z": "Infinity", "l": [1.0, "NaN"]}\n'
        '{"y": 1.5, "z": "-Infinity", "l": null}\n'
    )
    strict = json.loads(written(NOT_FINITE, "json"), parse_constant=_refuse_constant)
    assert strict == [
        {"y": "NaN", "z": "Infinity", "l": [1.0, "NaN"]},
        {"y": 1.5, "z": "-Infinity", "l": None},
    ]
    # A nested value in csv and table cells is JSON text too; a plain number stays DuckDB's.
    assert written(NOT_FINITE, "csv") == 'y,z,l\nnan,inf,"[1.0,""NaN""]"\n1.5,-inf,\n'


def _refuse_constant(name: str) -> object:
    raise AssertionError(f"not JSON: {name}")


def test_intervals_are_iso_8601_durations() -> None:
    months_days_nanos = [
        (0, 1, 0),
        (1, 2, 11_045_500_000_000),
        (0, 0, -10_800_000_000_000),
        (0, 0, 0),
    ]
    table = pa.table({"i": pa.array(months_days_nanos, pa.month_day_nano_interval())})
    assert written(table, "csv") == "i\nP1D\nP1M2DT3H4M5.5S\nPT-3H\nPT0S\n"
    assert json.loads(written(table, "json")) == [
        {"i": "P1D"},
        {"i": "P1M2DT3H4M5.5S"},
        {"i": "PT-3H"},
        {"i": "PT0S"},
    ]


def test_an_empty_result_keeps_its_header_however_wide() -> None:
    wide = pa.table({name: pa.array([], pa.string()) for name in ("first_column", "second_column")})
    assert formats.render(wide, "table", width=10) == (
        "first_column  second_column\n------------  -------------\n(0 rows)\n"
    )


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_out_into_a_missing_folder_is_refused_before_anything_runs(
    tmp_path: Path, fmt: str
) -> None:
    with pytest.raises(UsageError) as caught:
        formats.check_format(fmt, tmp_path / "nodir" / "x.out")
    assert caught.value.one_line() == (
        f"--out {tmp_path / 'nodir' / 'x.out'}: the folder {tmp_path / 'nodir'} does not exist "
        "(create the folder, or fix the path)"
    )
    (tmp_path / "afile").write_text("")
    with pytest.raises(UsageError, match=r"the folder .*afile is a file"):
        formats.check_format(fmt, tmp_path / "afile" / "x.out")
    with pytest.raises(UsageError, match="is a folder"):
        formats.check_format(fmt, tmp_path)
