"""Attribution test helpers: ingest files into a temporary warehouse (one parse worker), import
IAM snapshots, and read the derived tables back as plain rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import Settings, load_settings
from pipeline.iam.store import import_snapshots
from pipeline.ingest import run_ingest
from pipeline.warehouse.layout import Layout

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases" / "attribute"
SAMPLE = REPO / "sample_logs"
# The columns every rule test pins for each event.
VERDICT = (
    "actor_kind",
    "access_path",
    "agent_name",
    "classified_by",
    "human_id",
    "mcp_tool",
    "confidence",
)
Verdict = tuple[str | None, ...]


def settings_for(warehouse: Path, **attribution: Any) -> Settings:
    """Settings for a test warehouse: defaults plus `attribution` overrides, one parse worker,
    and nothing from the environment or an agenttrail.toml of the working directory."""
    overrides: dict[str, Any] = {"warehouse": str(warehouse), "ingest.workers": 1}
    overrides.update({f"attribution.{k}": v for k, v in attribution.items()})
    return load_settings(overrides=overrides, environ={}, cwd=warehouse.parent)


def ingest(paths: Iterable[Path], warehouse: Path, **attribution: Any) -> Settings:
    """Ingest `paths` (attribution is rebuilt at the end of the ingest)."""
    settings = settings_for(warehouse, **attribution)
    summary = run_ingest([str(p) for p in paths], settings)
    assert int(summary.exit_code) == 0, summary.to_dict()
    return settings


def import_iam(paths: Sequence[Path], settings: Settings, taken_at: datetime) -> None:
    """Import IAM snapshots; the import rebuilds attribution with them."""
    summary = import_snapshots(list(paths), Layout.at(settings.warehouse), taken_at, settings)
    assert summary.attribution is not None, "the import did not rebuild attribution"


def rows(warehouse: Path, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a query over the warehouse's views, as dicts."""
    con = duckdb.connect(str(Layout.at(warehouse).database), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cursor = con.execute(sql, params or {})
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def verdicts(warehouse: Path) -> dict[str, dict[str, Any]]:
    """events_classified by event_id."""
    found = rows(warehouse, "SELECT * FROM events_classified")
    by_id = {r["event_id"]: r for r in found}
    assert len(by_id) == len(found), "an event is classified twice"
    return by_id
