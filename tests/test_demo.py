"""`agenttrail demo` (what `make demo` runs) on the bundled sample, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_summarises_the_sample_as_its_scenario_says(tmp_path: Path) -> None:
    scenario = json.loads((ROOT / "sample_logs" / "scenario.json").read_text())
    warehouse = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    distinct = scenario["events"]["distinct"]
    duplicates = scenario["events"]["records_in_files"] - distinct
    assert f"ingested {distinct:,} new events" in out
    assert f"{duplicates:,} duplicates dropped" in out
    assert "2 IAM snapshot(s) imported" in out
    # Every (actor_kind, access_path) total printed equals the scenario's own count.
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            rows[(parts[0], parts[1])] = int(parts[2])
    per_kind: dict[str, int] = {}
    per_path: dict[str, int] = {}
    for (kind, path), n in rows.items():
        per_kind[kind] = per_kind.get(kind, 0) + n
        per_path[path] = per_path.get(path, 0) + n
    assert per_kind == scenario["events"]["per_actor_kind"]
    assert per_path == scenario["events"]["per_access_path"]
    assert f"warehouse: {warehouse}" in out
    # A second run reads nothing new and still succeeds.
    again = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "ingested 0 new events" in again.stdout
