"""The main job on the bundled sample: what `make demo` runs.

Ingests sample_logs/AWSLogs into a local warehouse, imports the sample's IAM snapshots (taken at
2026-06-30T12:00:00Z, see sample_logs/README.md) and returns a summary of who did what. Until the
report issues land, "the main job" is exactly that: ingest, attribution and a summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.iam.store import import_snapshots
from pipeline.ingest import IngestSummary, run_ingest
from pipeline.query.adhoc import run_internal
from pipeline.resources import checkout_dir
from pipeline.warehouse.layout import Layout

SAMPLE_SNAPSHOT_TAKEN_AT = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoSummary:
    warehouse: Path
    ingest: IngestSummary
    snapshots_imported: int
    by_actor_and_path: list[dict[str, Any]]
    agents: list[dict[str, Any]]


def sample_dir() -> Path:
    folder = checkout_dir() / "sample_logs"
    if not (folder / "AWSLogs").is_dir():
        raise UsageError(
            "the demo needs sample_logs/ from a checkout of the agenttrail repository",
            hint="run it from the repository, or ingest your own logs with 'agenttrail ingest'",
        )
    return folder


def run_demo(settings: Settings) -> DemoSummary:
    sample = sample_dir()
    layout = Layout.at(settings.warehouse)
    summary = run_ingest([str(sample / "AWSLogs")], settings)
    snapshots = import_snapshots(
        sorted((sample / "iam").glob("*.json")), layout, SAMPLE_SNAPSHOT_TAKEN_AT, settings
    )
    by_path = run_internal(layout, "summary/actors_and_paths")
    agents = run_internal(layout, "summary/agents_seen")
    return DemoSummary(
        warehouse=layout.root,
        ingest=summary,
        snapshots_imported=snapshots.imported,
        by_actor_and_path=by_path.to_pylist(),
        agents=agents.to_pylist(),
    )
