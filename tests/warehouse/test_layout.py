"""Layout.at: the warehouse folders a writer or reader is given, refused before anything is
written when DuckDB could not read them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import UsageError
from pipeline.warehouse.layout import Layout


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("wh[1]", "'['"),
        ("w*x", "'*'"),
        ("w?y", "'?'"),
        ("w\\b", "'\\\\'"),
        ("a[b]*c?", "'[' and '*' and '?'"),
    ],
)
def test_a_path_duckdb_reads_as_a_pattern_is_refused(tmp_path: Path, name: str, shown: str) -> None:
    with pytest.raises(UsageError) as caught:
        Layout.at(tmp_path / name)
    assert caught.value.one_line() == (
        f"the warehouse path {tmp_path / name} holds {shown}, which DuckDB reads as a file"
        " pattern: the views would read other folders' files, or none"
        " (choose a warehouse folder whose path has none of [ * ? \\)"
    )
    assert int(caught.value.exit_code) == 2
    assert not (tmp_path / name).exists()


def test_a_pattern_in_a_parent_folder_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Layout.at(tmp_path / "runs[2024]" / "wh")


@pytest.mark.parametrize("name", ["w{z}", "w]c", "w!d", "w^e", "w,f", "w'g"])
def test_other_punctuation_is_a_folder_like_any(tmp_path: Path, name: str) -> None:
    assert Layout.at(tmp_path / name).root == tmp_path / name


def test_why_these_characters_duckdb_globs_a_plain_file_path(tmp_path: Path) -> None:
    """The premise of the refusal, on the DuckDB in use: a path naming one file reads another
    folder's file when its name holds '[', and a folder with '\\' is never found."""
    for folder, value in (("wh[1]", 1), ("wh1", 2), ("w\\b", 3)):
        (tmp_path / folder).mkdir()
        pq.write_table(pa.table({"x": [value]}), tmp_path / folder / "f.parquet")
    with duckdb.connect() as con:

        def read(pattern: str) -> list[int]:
            found = con.execute("SELECT x FROM read_parquet($p)", {"p": pattern}).fetchall()
            return [row[0] for row in found]

        assert read(str(tmp_path / "wh[1]" / "f.parquet")) == [2]
        with pytest.raises(duckdb.IOException):
            read(str(tmp_path / "w\\b" / "*.parquet"))
