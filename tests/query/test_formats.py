"""Result formats: written batch by batch, with the same text as whole-table rendering gave.

The references below are the whole-table renderers of earlier versions (one Python row at a
time, dates and timestamps written by isoformat), kept as the oracle that the streamed writers
must match byte for byte. Then the values Python's objects cannot hold (nanoseconds, infinite
and far dates, decimals beyond a float) and the control characters a terminal obeys.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import QueryError, UsageError
from pipeline.query import formats
from pipeline.query.adhoc import open_sql
from pipeline.query.formats import _dumps, _plain, _shown, write_result
from pipeline.query.library import run_query

from .conftest import CliRunner, make_settings

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


def iso(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value  # datetime is a date


def reference_csv(table: pa.Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_shown(iso(row[c])) for c in table.column_names])
    return buffer.getvalue()


def reference_rows(table: pa.Table) -> list[dict[str, object]]:
    return [{k: _plain(iso(v)) for k, v in row.items()} for row in table.to_pylist()]


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
    # _dumps: json.dumps, with a decimal's digits as a number (the amount column).
    assert written(table, "json") == (
        _dumps(reference_rows(table), indent=2, ensure_ascii=False) + "\n"
    )
    assert written(table, "ndjson") == "".join(
        _dumps(r, ensure_ascii=False) + "\n" for r in reference_rows(table)
    )


def test_dumps_writes_what_json_dumps_writes() -> None:
    values = [
        reference_rows(EVERY_KIND.drop_columns(["amount"])),
        {"a": [], "b": {}, "c": [{"d": [1, {"e": None}]}], "f": 'ü\n"', "g": 1e20, "h": True},
        [],
        "text",
    ]
    choices: list[dict[str, Any]] = [
        {},
        {"indent": 2},
        {"indent": 2, "ensure_ascii": False},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
    ]
    for value in values:
        for options in choices:
            assert _dumps(value, **options) == json.dumps(value, **options), options


def test_csv_text_of_each_kind() -> None:
    lines = written(EVERY_KIND, "csv").split("\n")
    assert lines[0] == "text,number,flag,day,moment,ratio,amount,total,kinds,tags,actor"
    assert lines[1] == (
        'plain,1,true,2024-03-01,2024-03-01T08:00:00+00:00,0.1,1.50,7,"[""agent"",""human""]",'
        '"{""key"":""Usage"",""value"":""Agent""}",agent'
    )
    assert lines[2] == (
        '"with ""quotes"", commas",-2,false,,2024-03-01T08:00:00.123456+00:00,,,0,[],,human'
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


# ---- what a terminal is sent ------------------------------------------------------------------

HOSTILE = [
    "aws-cli/2\r\x1b[2K\x1b[1Aok\x1b[8mHIDDEN",  # back to the line's start, erase it, hide
    "a\tb\nc\x7f\x9b31m",  # \x9b: a one-byte \x1b[
    "invoice\u202egpj.exe \u2066x\u2069\x00\x07",  # shown as "invoiceexe.jpg"
]


def test_table_and_markdown_show_control_characters_escaped() -> None:
    """A userAgent is written by whoever made the call: sent raw, it could erase the lines
    above it, hide text or reorder it on the analyst's screen. A newline is a space, as it was."""
    table = pa.table({"user_agent": HOSTILE, "\x1b[8mn": [1, 2, 3]})
    assert written(table, "table") == (
        "user_agent                                  \\x1b[8mn\n"
        "------------------------------------------  --------\n"
        "aws-cli/2\\r\\x1b[2K\\x1b[1Aok\\x1b[8mHIDDEN    1\n"
        "a\\tb c\\x7f\\x9b31m                           2\n"
        "invoice\\u202egpj.exe \\u2066x\\u2069\\x00\\x07  3\n"
        "(3 rows)\n"
    )
    assert written(table, "markdown") == (
        "| user_agent | \\x1b[8mn |\n"
        "|---|---|\n"
        "| aws-cli/2\\r\\x1b[2K\\x1b[1Aok\\x1b[8mHIDDEN | 1 |\n"
        "| a\\tb c\\x7f\\x9b31m | 2 |\n"
        "| invoice\\u202egpj.exe \\u2066x\\u2069\\x00\\x07 | 3 |\n"
    )
    assert formats.render(table, "table", width=20) == (
        "-[ row 1 ]--------------------\n"
        "user_agent | aws-cli/2\\r\\x1b[2K\\x1b[1Aok\\x1b[8mHIDDEN\n"
        "\\x1b[8mn   | 1\n"
        "-[ row 2 ]--------------------\n"
        "user_agent | a\\tb c\\x7f\\x9b31m\n"
        "\\x1b[8mn   | 2\n"
        "-[ row 3 ]--------------------\n"
        "user_agent | invoice\\u202egpj.exe \\u2066x\\u2069\\x00\\x07\n"
        "\\x1b[8mn   | 3\n"
        "(3 rows)\n"
    )


def test_table_aligns_by_the_columns_a_terminal_gives_each_character() -> None:
    """Widths were counted in code points: a CJK character takes two columns, a combining
    accent none, and the columns after them were pushed out of line."""
    table = pa.table({"name": ["日本語テキスト", "abc", "e\u0301"], "n": [1, 2, 3]})
    assert written(table, "table") == (
        "name            n\n"
        "--------------  -\n"
        "日本語テキスト  1\n"
        "abc             2\n"
        "e\u0301               3\n"
        "(3 rows)\n"
    )
    wide = pa.table({"名前": ["x" * 30], "n": [1]})
    assert formats.render(wide, "table", width=20) == (
        "-[ row 1 ]--------------------\n"
        f"名前 | {'x' * 30}\n"
        "n    | 1\n"
        "(1 row)\n"
    )


def test_data_formats_keep_control_characters() -> None:
    """Exact, and csv quotes a value with a carriage return: csv.writer quotes for "\n" (its
    line terminator) only, and a bare \r ended the row for csv readers (the rest of the value
    became a row of its own)."""
    table = pa.table({"user_agent": HOSTILE})
    assert written(table, "csv") == (
        "user_agent\n"
        '"aws-cli/2\r\x1b[2K\x1b[1Aok\x1b[8mHIDDEN"\n'
        '"a\tb\nc\x7f\x9b31m"\n'
        "invoice\u202egpj.exe \u2066x\u2069\x00\x07\n"
    )
    parsed = csv.reader(io.StringIO(written(table, "csv"), newline=""))
    assert list(parsed) == [["user_agent"], *([v] for v in HOSTILE)]
    mixed = pa.table({"a": ["x\ry", 'q"uote', ""], "b": ["1,2", "", "z"]})
    assert written(mixed, "csv") == 'a,b\n"x\ry","1,2"\n"q""uote",""\n"",z\n'
    assert written(pa.table({"a": ["\r", ""]}), "csv") == 'a\n"\r"\n""\n'
    assert written(table, "ndjson") == (
        '{"user_agent": "aws-cli/2\\r\\u001b[2K\\u001b[1Aok\\u001b[8mHIDDEN"}\n'
        '{"user_agent": "a\\tb\\nc\x7f\x9b31m"}\n'
        '{"user_agent": "invoice\u202egpj.exe \u2066x\u2069\\u0000\\u0007"}\n'
    )
    assert json.loads(written(table, "json")) == [{"user_agent": v} for v in HOSTILE]


# ---- values Python's objects cannot hold --------------------------------------------------------


def duckdb_result(sql: str, *settings: str) -> pa.Table:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for setting in settings:
        con.execute(setting)
    return con.sql(sql).to_arrow_table()


def test_parquet_writes_intervals_as_iso_8601_durations(tmp_path: Path) -> None:
    """Parquet's INTERVAL holds neither nanoseconds nor negative parts, and pyarrow refused the
    column (ArrowNotImplementedError: month_day_nano_interval): text, as every format writes."""
    result = duckdb_result(
        "SELECT INTERVAL '1 day 2 hours' AS i, [INTERVAL '-3 hours', NULL] AS l,"
        " {'span': INTERVAL '1 month 0.5 seconds'} AS s, 7 AS n"
        " UNION ALL SELECT NULL, NULL, NULL, 8 ORDER BY n"
    )
    out = tmp_path / "spans.parquet"
    assert write_result(in_batches(result, 1), "parquet", stream=io.StringIO(), out=out) == 2
    back = pq.read_table(out)
    assert back.schema.field("i").type == pa.string()
    assert back.to_pylist() == [
        {"i": "P1DT2H", "l": ["PT-3H", None], "s": {"span": "P1MT0.5S"}, "n": 7},
        {"i": None, "l": None, "s": None, "n": 8},
    ]


def test_sql_writes_an_interval_to_parquet(
    cli: CliRunner, tiny_warehouse: Path, tmp_path: Path
) -> None:
    """The reviewer's command: it ended in "internal error: ArrowNotImplementedError"."""
    out = tmp_path / "spans.parquet"
    statement = (
        "SELECT recipient_account_id AS account, max(event_time) - min(event_time) AS active_span"
        " FROM events GROUP BY 1 ORDER BY 1"
    )
    done = cli("sql", statement, "-w", str(tiny_warehouse), "-f", "parquet", "-o", str(out))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    back = pq.read_table(out)
    assert back.schema == pa.schema([("account", pa.string()), ("active_span", pa.string())])
    assert back.to_pylist() == [
        {"account": "111111111111", "active_span": "P2DT6H"},
        {"account": "222222222222", "active_span": "P1DT2H"},
    ]


def test_times_are_iso_8601_in_every_text_format() -> None:
    """Python's json could not write a TIME (TypeError: Object of type time is not JSON
    serializable), and Arrow gives TIME '24:00:00' to Python as 00:00:00."""
    result = duckdb_result(
        "SELECT TIME '06:18:02' AS t, TIME '24:00:00' AS end_of_day,"
        " TIME '08:00:00.25' AS quarter, '12:00:00.123456789'::TIME_NS AS ns"
    )
    assert written(result, "ndjson") == (
        '{"t": "06:18:02", "end_of_day": "24:00:00", "quarter": "08:00:00.250000",'
        ' "ns": "12:00:00.123456789"}\n'
    )
    assert json.loads(written(result, "json")) == [
        {
            "t": "06:18:02",
            "end_of_day": "24:00:00",
            "quarter": "08:00:00.250000",
            "ns": "12:00:00.123456789",
        }
    ]
    assert written(result, "csv") == (
        "t,end_of_day,quarter,ns\n06:18:02,24:00:00,08:00:00.250000,12:00:00.123456789\n"
    )


def test_decimals_keep_every_digit() -> None:
    """Through a float, 12345678901234567.89 was 1.2345678901234568e+16. In json the digits
    are a number, as DuckDB has them: a reader that wants them exact can have them."""
    result = duckdb_result(
        "SELECT 12345678901234567.89::DECIMAL(38,2) AS d, 0.0000001::DECIMAL(18,8) AS small,"
        " [-1.5::DECIMAL(4,2)] AS l, 7::HUGEINT AS n"
    )
    assert written(result, "csv") == ("d,small,l,n\n12345678901234567.89,0.00000010,[-1.50],7\n")
    assert written(result, "ndjson") == (
        '{"d": 12345678901234567.89, "small": 0.00000010, "l": [-1.50], "n": 7}\n'
    )
    assert written(result, "json") == (
        "[\n  {\n"
        '    "d": 12345678901234567.89,\n'
        '    "small": 0.00000010,\n'
        '    "l": [\n      -1.50\n    ],\n'
        '    "n": 7\n'
        "  }\n]\n"
    )
    assert json.loads(written(result, "json"), parse_float=Decimal) == [
        {
            "d": Decimal("12345678901234567.89"),
            "small": Decimal("1E-7"),
            "l": [Decimal("-1.5")],
            "n": 7,
        }
    ]
    assert written(result, "table") == (
        "d                     small       l        n\n"
        "--------------------  ----------  -------  -\n"
        "12345678901234567.89  0.00000010  [-1.50]  7\n"
        "(1 row)\n"
    )
    assert written(result, "markdown") == (
        "| d | small | l | n |\n|---|---|---|---|\n"
        "| 12345678901234567.89 | 0.00000010 | [-1.50] | 7 |\n"
    )


FAR_AND_INFINITE = (
    "SELECT '2024-01-01 12:00:00.123456789'::TIMESTAMP_NS AS ns,"
    " 'infinity'::TIMESTAMP AS ts, '-infinity'::TIMESTAMPTZ AS tz, 'infinity'::DATE AS last,"
    " '-infinity'::DATE AS first, '10000-01-01'::DATE AS far, '0001-01-01 (BC) 10:00'::TIMESTAMP"
    " AS bc"
)


def test_nanoseconds_infinities_and_far_years_in_every_format() -> None:
    """Python's datetime holds none of these: TIMESTAMP_NS raised "Nanosecond resolution", an
    infinite timestamp OverflowError, an infinite DATE crashed json and table (and csv wrote
    <value out of range: 2147483647>)."""
    result = duckdb_result(FAR_AND_INFINITE)
    texts = [
        "2024-01-01T12:00:00.123456789",
        "infinity",
        "-infinity",
        "infinity",
        "-infinity",
        "+10000-01-01",
        "0000-01-01T10:00:00",  # 1 BC is ISO 8601's year 0
    ]
    assert written(result, "csv") == "ns,ts,tz,last,first,far,bc\n" + ",".join(texts) + "\n"
    assert (
        written(result, "ndjson")
        == json.dumps(dict(zip(result.column_names, texts, strict=True))) + "\n"
    )
    assert json.loads(written(result, "json")) == [
        dict(zip(result.column_names, texts, strict=True))
    ]
    assert written(result, "table") == (
        "ns                             ts        tz         last      first      far"
        "           bc\n"
        "-----------------------------  --------  ---------  --------  ---------  ------------"
        "  -------------------\n"
        "2024-01-01T12:00:00.123456789  infinity  -infinity  infinity  -infinity  +10000-01-01"
        "  0000-01-01T10:00:00\n"
        "(1 row)\n"
    )
    assert written(result, "markdown") == (
        "| ns | ts | tz | last | first | far | bc |\n|---|---|---|---|---|---|---|\n"
        "| " + " | ".join(texts) + " |\n"
    )


def test_timestamps_of_every_unit_and_zone() -> None:
    result = duckdb_result(
        "SELECT 'infinity'::TIMESTAMP_S AS s, '-infinity'::TIMESTAMP_MS AS ms,"
        " 'infinity'::TIMESTAMP_NS AS ns, '2024-03-01 08:00:00.5'::TIMESTAMP_MS AS half,"
        " '2024-03-01 08:00:00.000001'::TIMESTAMP_NS AS micro,"
        " TIMESTAMPTZ '2024-07-01 08:00:00.5+00' AS summer,"
        " TIMESTAMPTZ '2024-01-01 08:00:00+00' AS winter, 'infinity'::TIMESTAMPTZ AS never",
        "SET TimeZone = 'Europe/Berlin'",
    )
    assert written(result, "csv").splitlines()[1] == (
        "infinity,-infinity,infinity,2024-03-01T08:00:00.500000,2024-03-01T08:00:00.000001,"
        "2024-07-01T10:00:00.500000+02:00,2024-01-01T09:00:00+01:00,infinity"
    )


# ---- exact values: NULL and '', booleans, maps, bits, unions, column names --------------------


def test_csv_tells_null_from_an_empty_text(tmp_path: Path) -> None:
    """NULL is an empty field, '' is `""`: what DuckDB's own COPY writes, byte for byte (a NULL
    alone on its row leaves the row empty; csv.writer wrote it `""`, as it wrote '')."""
    con = duckdb.connect()
    for sql in (
        "SELECT * FROM (VALUES (NULL, ''), ('', NULL), ('a', 'b'), (NULL, NULL)) t(x, y)",
        "SELECT * FROM (VALUES (NULL), (''), ('a'), ('x\ry')) t(x)",
        "SELECT * FROM (VALUES (1, ''), (NULL, 'q\"'), (3, NULL)) t(n, x)",
    ):
        copied = tmp_path / "copied.csv"
        con.execute(f"COPY ({sql}) TO '{copied}' (HEADER)")
        result = con.sql(sql).to_arrow_table()
        assert written(result, "csv", batch_rows=1) == copied.read_bytes().decode(), sql
    two = con.sql("SELECT * FROM (VALUES (NULL, ''), ('', NULL)) t(x, y)").to_arrow_table()
    assert written(two, "csv") == 'x,y\n,""\n"",\n'
    one = con.sql("SELECT * FROM (VALUES (NULL), (''), ('a')) t(x)").to_arrow_table()
    assert written(one, "csv") == 'x\n\n""\na\n'


def test_booleans_are_true_and_false_in_every_format() -> None:
    result = duckdb_result(
        "SELECT * FROM (VALUES (true, [false]), (false, NULL), (NULL, [])) t(b, l)"
    )
    assert written(result, "csv") == "b,l\ntrue,[false]\nfalse,\n,[]\n"
    assert written(result, "table") == (
        "b      l\n-----  -------\ntrue   [false]\nfalse\n       []\n(3 rows)\n"
    )
    assert written(result, "markdown") == (
        "| b | l |\n|---|---|\n| true | [false] |\n| false |  |\n|  | [] |\n"
    )
    assert written(result, "ndjson") == (
        '{"b": true, "l": [false]}\n{"b": false, "l": null}\n{"b": null, "l": []}\n'
    )


MAPS = (
    "SELECT MAP {'Owner': 'platform-team', 'Usage': 'Agent'} AS tags, MAP {1: 'x', 2: 'y'} AS"
    " by_number, [MAP {'a': 1}, NULL] AS in_list, {'m': MAP {'k': [MAP {'z': true}]}} AS"
    " in_struct, NULL::MAP(VARCHAR, VARCHAR) AS none, MAP {} :: MAP(VARCHAR, INTEGER) AS empty"
)


def test_a_map_of_text_keys_is_a_json_object() -> None:
    """Arrow gives every MAP as (key, value) pairs: [["Owner","platform-team"]] was written.
    A map of text keys is an object, as DuckDB's to_json writes it; other keys stay pairs."""
    result = duckdb_result(MAPS)
    row = {
        "tags": {"Owner": "platform-team", "Usage": "Agent"},
        "by_number": [[1, "x"], [2, "y"]],
        "in_list": [{"a": 1}, None],
        "in_struct": {"m": {"k": [{"z": True}]}},
        "none": None,
        "empty": {},
    }
    assert json.loads(written(result, "json")) == [row]
    assert json.loads(written(result, "ndjson")) == row
    assert written(result, "csv") == (
        "tags,by_number,in_list,in_struct,none,empty\n"
        '"{""Owner"":""platform-team"",""Usage"":""Agent""}","[[1,""x""],[2,""y""]]",'
        '"[{""a"":1},null]","{""m"":{""k"":[{""z"":true}]}}",,{}\n'
    )
    assert written(result.select(["tags", "by_number"]), "table") == (
        "tags                                       by_number\n"
        "-----------------------------------------  -----------------\n"
        '{"Owner":"platform-team","Usage":"Agent"}  [[1,"x"],[2,"y"]]\n'
        "(1 row)\n"
    )


def test_a_bit_is_its_bits(tiny_warehouse: Path, tmp_path: Path) -> None:
    """DuckDB hands BIT to Arrow as the bytes of its encoding: '101' was shown 05fd."""
    statement = "SELECT '101'::BIT AS b, ['0011'::BIT, NULL] AS l, 7 AS n"
    with open_sql(str(tiny_warehouse), statement) as reader:
        assert written(reader.read_all(), "csv") == 'b,l,n\n101,"[""0011"",null]",7\n'
    out = tmp_path / "bits.parquet"
    with open_sql(str(tiny_warehouse), statement) as reader:
        write_result(reader, "parquet", stream=io.StringIO(), out=out)
    assert pq.read_table(out).to_pylist() == [{"b": "101", "l": ["0011", None], "n": 7}]
    # A named query's result too.
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "bits.sql").write_text(
        "-- name: bits\n-- description: Bits.\n-- params: none\n-- grain: one row\n"
        "-- used_by: tests\nSELECT '101'::BIT AS b, 1 AS n\n"
    )
    result = run_query(make_settings(tiny_warehouse), "bits", extra_dirs=[folder])
    assert result.table.to_pylist() == [{"b": "101", "n": 1}]


def test_a_bit_inside_nested_types_keeps_field_names(tiny_warehouse: Path) -> None:
    """The cast type was made by rewriting the word BIT in str(type): a struct field named BIT
    became VARCHAR, and its value NULL ({"VARCHAR": null, "x": "1"})."""
    statement = (
        "SELECT {'BIT': 1, 'x': '1'::BIT, 'a\"BIT b': ['10'::BIT]} AS s,"
        " MAP(['BIT'], [{'BIT': '011'::BIT}]) AS m,"
        " MAP(['1'::BIT], [{'BIT': 2}]) AS mk,"
        " [{'bit': ['0'::BIT, NULL]}] AS l,"
        " ['1'::BIT, '01'::BIT]::BIT[2] AS a,"
        " union_value(BIT := '11'::BIT)::UNION(BIT BIT, n INTEGER) AS u,"
        " {'BIT': 'BIT'} AS t"
    )
    with open_sql(str(tiny_warehouse), statement) as reader:
        assert written(reader.read_all(), "ndjson") == (
            '{"s": {"BIT": 1, "x": "1", "a\\"BIT b": ["10"]}, "m": {"BIT": {"BIT": "011"}}, '
            '"mk": {"1": {"BIT": 2}}, "l": [{"bit": ["0", null]}], "a": ["1", "01"], "u": "11", '
            '"t": {"BIT": "BIT"}}\n'
        )
    # Two columns of one name keep theirs (columns are taken by position).
    with open_sql(str(tiny_warehouse), "SELECT {'BIT': '1'::BIT} AS s, 2 AS s") as reader:
        table = reader.read_all()
    assert (table.column_names, [c.to_pylist() for c in table.columns]) == (
        ["s", "s"],
        [[{"BIT": "1"}], [2]],
    )


def test_a_union_column_is_refused_in_parquet_alone(tmp_path: Path) -> None:
    result = duckdb_result("SELECT union_value(k := 1) AS u, 2 AS n")
    out = tmp_path / "u.parquet"
    with pytest.raises(UsageError) as caught:
        write_result(result.to_reader(), "parquet", stream=io.StringIO(), out=out)
    assert caught.value.one_line() == (
        "--format parquet: the column 'u' holds a UNION, which Parquet cannot store (cast it to "
        "one type (e.g. col::VARCHAR), or use csv, json or ndjson)"
    )
    assert list(tmp_path.iterdir()) == []
    assert written(result, "csv") == "u,n\n1,2\n"


SAME_NAMES = pa.table(
    [pa.array(["DeleteBucket", "DeleteBucket"]), pa.array(["GetObject", "ListBuckets"])],
    names=["event_name", "event_name"],
)


def test_two_columns_of_one_name_are_both_shown() -> None:
    """table and markdown went through row dicts keyed by name: the second column shown twice."""
    assert written(SAME_NAMES, "table") == (
        "event_name    event_name\n------------  -----------\n"
        "DeleteBucket  GetObject\nDeleteBucket  ListBuckets\n(2 rows)\n"
    )
    assert written(SAME_NAMES, "markdown") == (
        "| event_name | event_name |\n|---|---|\n"
        "| DeleteBucket | GetObject |\n| DeleteBucket | ListBuckets |\n"
    )
    assert written(SAME_NAMES, "csv") == (
        "event_name,event_name\nDeleteBucket,GetObject\nDeleteBucket,ListBuckets\n"
    )


@pytest.mark.parametrize("fmt", ["json", "ndjson", "parquet"])
def test_formats_of_named_values_refuse_two_columns_of_one_name(tmp_path: Path, fmt: str) -> None:
    """json and ndjson kept one of them, silently; parquet wrote a file its readers refuse."""
    out = tmp_path / f"x.{fmt}"
    with pytest.raises(UsageError) as caught:
        write_result(SAME_NAMES.to_reader(), fmt, stream=io.StringIO(), out=out)
    assert caught.value.one_line() == (
        f"--format {fmt}: the result has more than one column named 'event_name', which {fmt} "
        "cannot keep apart (name each column once with AS, e.g. SELECT a.x AS a_x, b.x AS b_x; "
        "or use csv, table or markdown)"
    )
    assert list(tmp_path.iterdir()) == []


def test_sql_of_a_self_join(cli: CliRunner, tiny_warehouse: Path) -> None:
    statement = (
        "SELECT a.event_name, b.event_name FROM events a JOIN events b ON a.access_key_id ="
        " b.access_key_id AND a.event_name < b.event_name ORDER BY ALL LIMIT 2"
    )
    done = cli("sql", statement, "-w", str(tiny_warehouse))
    assert (done.returncode, done.stdout) == (0, written(SAME_NAMES, "table"))
    refused = cli("sql", statement, "-w", str(tiny_warehouse), "-f", "json")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.startswith(
        "error: --format json: the result has more than one column named 'event_name'"
    )
