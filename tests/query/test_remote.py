"""A warehouse in S3 (`--warehouse s3://bucket/prefix`), read in place through DuckDB and s3fs,
against moto's standalone server: the same views and the same rows as the local copy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import WarehouseError
from pipeline.query.adhoc import run_sql
from pipeline.query.library import Scope, run_query
from pipeline.warehouse.remote import S3Options, connect_reader

from .conftest import USER_QUERIES, CliRunner, make_settings

BUCKET = "agenttrail-warehouse"
PREFIX = "teams/secops/warehouse"
URI = f"s3://{BUCKET}/{PREFIX}"
EVENTS_SQL = "SELECT * EXCLUDE (ingest_run_id) FROM events ORDER BY event_id"


@pytest.fixture
def s3_warehouse(
    tiny_warehouse: Path,
    make_bucket: Callable[[str], Any],
    put_objects: Callable[..., None],
    s3_endpoint: str,
) -> str:
    """The tiny warehouse's files uploaded under PREFIX (without the DuckDB file: S3 readers
    never use it); returns the endpoint URL."""
    client = make_bucket(BUCKET)
    skip = {"agenttrail.duckdb", ".lock"}
    objects = {
        f"{PREFIX}/{path.relative_to(tiny_warehouse).as_posix()}": path.read_bytes()
        for path in tiny_warehouse.rglob("*")
        if path.is_file() and path.name not in skip and "_staging" not in path.parts
    }
    assert any("/derived/" in key for key in objects)
    put_objects(client, BUCKET, objects)
    return s3_endpoint


def test_the_views_and_rows_are_those_of_the_local_warehouse(
    s3_warehouse: str, tiny_warehouse: Path
) -> None:
    options = S3Options(endpoint_url=s3_warehouse)
    views = "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name"
    with connect_reader(URI, s3=options) as remote, connect_reader(str(tiny_warehouse)) as local:
        assert remote.execute(views).fetchall() == local.execute(views).fetchall()
        for view in ("events", "events_classified", "sessions", "manifest", "iam_roles"):
            sql = f"SELECT count(*) FROM {view}"
            assert remote.execute(sql).fetchone() == local.execute(sql).fetchone(), view
        # Read through the fsspec filesystem: DuckDB's httpfs is neither needed nor loaded.
        loaded = remote.execute(
            "SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'httpfs' AND loaded"
        ).fetchone()
        assert loaded == (0,)
        # No progress bar drawn into the output on stdout (as test_connect checks locally).
        setting = "SELECT current_setting('enable_progress_bar')"
        assert remote.execute(setting).fetchone() == (False,)
    remote_rows = run_sql(URI, EVENTS_SQL, s3=options)
    local_rows = run_sql(str(tiny_warehouse), EVENTS_SQL)
    assert remote_rows.num_rows == 7
    assert remote_rows.equals(local_rows)


def test_a_named_query_gives_the_same_rows(s3_warehouse: str, tiny_warehouse: Path) -> None:
    for name, scope in [
        ("calls_per_day", Scope(until=date(2026, 9, 30), account="111111111111")),
        ("activity_by_actor", Scope()),
    ]:
        remote = run_query(
            make_settings(URI),
            name,
            scope=scope,
            extra_dirs=[USER_QUERIES],
            s3=S3Options(endpoint_url=s3_warehouse),
        )
        local = run_query(
            make_settings(tiny_warehouse), name, scope=scope, extra_dirs=[USER_QUERIES]
        )
        assert remote.table.num_rows > 0, name
        assert remote.table.equals(local.table), name


def test_the_cli_reads_an_s3_warehouse(
    cli: CliRunner, s3_warehouse: str, tiny_warehouse: Path
) -> None:
    remote = ["-w", URI, "--endpoint-url", s3_warehouse]
    for args in (
        ["sql", EVENTS_SQL, "-f", "csv"],
        ["query", "run", "calls_per_day", "--queries-dir", str(USER_QUERIES), "-f", "json"],
    ):
        here = cli(*args, "-w", str(tiny_warehouse))
        there = cli(*args, *remote)
        assert here.returncode == 0, here.stderr
        assert there.returncode == 0, there.stderr
        assert there.stdout == here.stdout
        assert there.stdout.count("\n") > 2


def test_a_prefix_without_a_warehouse_is_one_line(s3_warehouse: str, cli: CliRunner) -> None:
    with pytest.raises(WarehouseError) as caught:
        run_sql(f"s3://{BUCKET}/elsewhere", "SELECT 1", s3=S3Options(endpoint_url=s3_warehouse))
    assert caught.value.one_line().startswith(f"no warehouse at s3://{BUCKET}/elsewhere (")
    done = cli(
        "sql", "SELECT 1", "-w", "s3://no-such-bucket-here/x", "--endpoint-url", s3_warehouse
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1
