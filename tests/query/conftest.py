"""Fixtures of the query engine tests: warehouses to query and a CLI runner.

`sample_warehouse` is sample_logs/AWSLogs ingested once per session (per xdist worker), with the
sample's IAM snapshots imported as `make demo` does; `tiny_warehouse` is a handful of hand-made
records, small enough to upload to the moto server in a second for the S3 tests.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, load_settings
from pipeline.iam.store import import_snapshots
from pipeline.ingest import run_ingest
from pipeline.warehouse.layout import Layout

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_logs"
CASES = ROOT / "tests" / "cases" / "queries"
USER_QUERIES = CASES / "user"
SAMPLE_SNAPSHOT_TAKEN_AT = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)  # sample_logs/README.md


def make_settings(warehouse: Path | str, **overrides: Any) -> Settings:
    """Settings with no agenttrail.toml and no AGENTTRAIL_* variables of the developer's."""
    values: dict[str, Any] = {"warehouse": str(warehouse), "ingest.workers": 1}
    values.update(overrides)
    return load_settings(environ={}, overrides=values, cwd=ROOT / "tests")


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "warehouse"
    settings = make_settings(root)
    run_ingest([str(SAMPLE / "AWSLogs")], settings)
    import_snapshots(
        sorted((SAMPLE / "iam").glob("*.json")),
        Layout.at(root),
        SAMPLE_SNAPSHOT_TAKEN_AT,
        settings,
    )
    return root


def _record(n: int, account: str, day: str, **fields: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": f"tiny-{n:04d}",
        "eventTime": f"{day}T{10 + n % 10:02d}:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestID": f"REQ{n:04d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "eventCategory": "Management",
        "recipientAccountId": account,
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEALICE",
            "arn": f"arn:aws:iam::{account}:user/alice",
            "accountId": account,
            "accessKeyId": "AKIAEXAMPLEALICE",
            "userName": "alice",
        },
        **fields,
    }


TINY_EVENTS = 7


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven events over two accounts and three days (one of them denied), ingested."""
    base = tmp_path_factory.mktemp("tiny")
    records = [
        _record(1, "111111111111", "2026-09-29"),
        _record(2, "111111111111", "2026-09-30"),
        _record(3, "111111111111", "2026-09-30", eventName="DeleteBucket", readOnly=False),
        _record(4, "222222222222", "2026-09-30"),
        _record(5, "222222222222", "2026-10-01", errorCode="AccessDenied"),
        _record(6, "222222222222", "2026-10-01"),
        _record(7, "111111111111", "2026-10-01", eventName="GetObject"),
    ]
    source = base / "logs" / "tiny.json.gz"
    source.parent.mkdir()
    source.write_bytes(gzip.compress(json.dumps({"Records": records}).encode(), mtime=0))
    root = base / "warehouse"
    run_ingest([str(source.parent)], make_settings(root))
    return root


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli() -> CliRunner:
    """`cli("query", "list", ...)`: the real command line in a fresh interpreter."""

    def run(
        *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            check=False,
            timeout=120,
            env={**os.environ, **(env or {})},
        )

    return run
