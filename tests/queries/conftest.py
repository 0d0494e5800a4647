"""The sample warehouse for the named-query tests, built once per test session.

`python -m pipeline ingest sample_logs/AWSLogs` runs in a subprocess, as a user would run it. The
IAM snapshots of the sample (taken at 2026-06-30T12:00:00Z) are imported first when the project
can: without them the AgentMcpRole bypass classifies as a workload and every expectation built
from labels.csv would be off, so tests that depend on IAM data skip instead. Importing before
the ingest lets the ingest's own attribution run see the snapshots (one classification, not
two). Under pytest-xdist the workers share one warehouse, built by whichever gets the lock.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .oracle import SAMPLE, SNAPSHOT_TAKEN_AT, Truth

BUILD_TIMEOUT_S = 300


@dataclass(frozen=True)
class Warehouse:
    root: Path
    iam_imported: bool  # the sample's IAM snapshots are in it, attribution included them

    @property
    def database(self) -> Path:
        return self.root / "agenttrail.duckdb"


def _clean_env() -> dict[str, str]:
    """No AGENTTRAIL_* setting of the developer's shell may change the warehouse."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENTTRAIL_")}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,  # a folder without agenttrail.toml: built-in defaults only
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stderr[-3000:]}"


def _import_iam_library(root: Path) -> bool:
    """IAM import through the library, when pipeline.iam has an import function."""
    try:
        store = importlib.import_module("pipeline.iam.store")
        layout_module = importlib.import_module("pipeline.warehouse.layout")
    except ImportError:
        return False
    import_snapshots = getattr(store, "import_snapshots", None)
    if import_snapshots is None:
        return False
    files = sorted((SAMPLE / "iam").glob("*.json"))
    try:
        import_snapshots(files, layout_module.Layout.at(root), SNAPSHOT_TAKEN_AT)
    except TypeError:  # another signature: leave it to the command line
        return False
    return True


def _iam_command_exists(cwd: Path) -> bool:
    return _run(["iam", "import", "--help"], cwd).returncode == 0


def build_warehouse(root: Path) -> Warehouse:
    cwd = root.parent
    iam_imported = _import_iam_library(root)
    _check(_run(["ingest", str(SAMPLE / "AWSLogs"), "--warehouse", str(root)], cwd), "ingest")
    if not iam_imported and _iam_command_exists(cwd):
        files = [str(p) for p in sorted((SAMPLE / "iam").glob("*.json"))]
        taken_at = SNAPSHOT_TAKEN_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
        args = ["iam", "import", *files, "--taken-at", taken_at, "--warehouse", str(root)]
        _check(_run(args, cwd), "iam import")
        _check(_run(["attribute", "--warehouse", str(root)], cwd), "attribute")
        iam_imported = True
    return Warehouse(root, iam_imported)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        yield build_warehouse(tmp_path_factory.mktemp("named-queries") / "warehouse")
        return
    shared = tmp_path_factory.getbasetemp().parent / "named-queries"
    shared.mkdir(exist_ok=True)
    marker = shared / "built.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not marker.exists():
                built = build_warehouse(shared / "warehouse")
                marker.write_text(json.dumps({"iam_imported": built.iam_imported}))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    yield Warehouse(shared / "warehouse", json.loads(marker.read_text())["iam_imported"])


@pytest.fixture(scope="session")
def truth() -> Truth:
    return Truth()


@pytest.fixture
def require_iam(warehouse: Warehouse) -> None:
    """Tests whose expectations follow labels.csv need the IAM snapshots in the warehouse."""
    if not warehouse.iam_imported:
        pytest.skip("no IAM import available: agent roles cannot be classified as the labels say")
