"""Terminal output of the CLI (the only module besides cli.py that writes to the terminal).

A live progress bar (files, events, MB/s) when stderr is a terminal; plain log lines otherwise,
so scheduler logs stay readable; and the final summary table.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.ingest import IngestSummary
    from pipeline.ingest import Progress as IngestProgress

LOG_EVERY_SECONDS = 5.0  # plain-log cadence when not on a terminal


def _rate(progress: IngestProgress) -> float:
    elapsed = max(time.monotonic() - progress.started, 1e-6)
    return progress.bytes_read / elapsed / 1e6


@contextmanager
def progress_printer(enabled: bool = True) -> Iterator[Callable[[IngestProgress], None] | None]:
    if not enabled:
        yield None
        return
    if sys.stderr.isatty():
        # rich is imported where it draws: a scheduler's ingest (no terminal, --json) starts
        # parsing ~50 ms sooner without it.
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} files"),
            TextColumn("{task.fields[events]:,} events"),
            TextColumn("{task.fields[rate]:.1f} MB/s"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = bar.add_task("ingest", total=None, events=0, rate=0.0)

        def update(p: IngestProgress) -> None:
            bar.update(
                task,
                total=p.objects_total,
                completed=p.objects_done,
                events=p.events,
                rate=_rate(p),
            )

        with bar:
            yield update
        return

    last = [0.0]

    def log(p: IngestProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= LOG_EVERY_SECONDS or p.objects_done == p.objects_total:
            last[0] = now
            files = "file" if p.objects_total == 1 else "files"
            events = "event" if p.events == 1 else "events"
            print(
                f"ingest: {p.objects_done}/{p.objects_total} {files}, {p.events:,} {events}, "
                f"{_rate(p):.1f} MB/s",
                file=sys.stderr,
                flush=True,
            )

    yield log


def summary_text(summary: IngestSummary) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ingest {summary.run_id}", show_header=False, box=None)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows: list[tuple[str, int | str]] = [
        ("objects listed", summary.objects_listed),
        ("  unchanged since last run", summary.objects_unchanged),
        ("  read", summary.objects_read),
        ("  too large, not read", summary.objects_too_large),
        ("  digests recorded", summary.digests_recorded),
        *((f"  skipped ({kind})", n) for kind, n in sorted(summary.skipped_by_kind.items())),
        ("  quarantined", summary.objects_quarantined),
        ("records read", summary.records_read),
        ("  events written", summary.events_written),
        ("  duplicates dropped", summary.duplicates_dropped),
        ("  outside --since/--until", summary.outside_period),
        ("  outside --account/--region", summary.outside_scope),
        ("  quarantined", summary.records_quarantined),
        ("MB read", f"{summary.bytes_read / 1e6:,.1f}"),
        ("seconds", f"{summary.seconds:,.1f}"),
    ]
    for label, value in rows:
        table.add_row(label, f"{value:,}" if isinstance(value, int) else value)
    from pipeline.attribute.classify import reused_keys_notice

    console = Console(width=100, record=True, file=None, force_terminal=False)
    with console.capture() as capture:
        console.print(table)
        # Free text (keys, reasons, errors naming "[attribution] ...") is not rich markup.
        plain = functools.partial(console.print, soft_wrap=True, markup=False, highlight=False)
        for item in summary.quarantine:
            where = f" record {item['record']}" if "record" in item else ""
            plain(f"quarantined: {item['uri']}{where}: {item['reason']}")
        for failure in summary.failures:
            plain(f"failed: {failure['uri']}: {failure['error']}")
        if summary.attribution_failed:
            plain(f"attribution failed: {summary.attribution['error']}")
        elif summary.attribution and summary.attribution.get("reused_issued_keys"):
            plain(f"notice: {reused_keys_notice(summary.attribution['reused_issued_keys'])}")
        plain(f"warehouse: {summary.warehouse}")
    return capture.get()
