"""pipeline/console.py: the ingest summary a person reads."""

from __future__ import annotations

from pipeline.console import summary_text
from pipeline.ingest import IngestSummary


def test_free_text_is_printed_as_it_is() -> None:
    """Brackets in keys, reasons and errors are text, not rich markup (which ate
    "[attribution]" out of the out-of-memory hint)."""
    summary = IngestSummary(
        run_id="r1",
        warehouse="/w",
        sources=["/logs"],
        quarantine=[{"uri": "/logs/[x].json", "reason": "not JSON: [bold]x[/bold]"}],
        failures=[{"uri": "s3://b/[k]", "error": "read failed [red]"}],
        attribution={"error": "raise [attribution] duckdb_memory_limit (now 700MB)"},
    )
    lines = summary_text(summary).splitlines()[-4:]
    assert lines == [
        "quarantined: /logs/[x].json: not JSON: [bold]x[/bold]",
        "failed: s3://b/[k]: read failed [red]",
        "attribution failed: raise [attribution] duckdb_memory_limit (now 700MB)",
        "warehouse: /w",
    ]
