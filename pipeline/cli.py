"""The `agenttrail` command line: parse options, call one library function, print.

One error boundary (`main`) turns library errors into one actionable line and an exit code
(README, "Exit codes"); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from pipeline.config import Settings, load_settings
from pipeline.errors import AgenttrailError, AttributionPendingError, ExitCode, UsageError
from pipeline.interrupts import raise_now_or_later

app = typer.Typer(
    name="agenttrail",
    help="Tell AI-agent AWS API calls from human ones in CloudTrail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: "s3://bucket[/prefix]" must not be read as rich markup.
    rich_markup_mode=None,
)

_STATE: dict[str, Any] = {"debug": False, "config": None}


class _Command(TyperCommand):
    """A command whose usage line names its arguments as the README does (`agenttrail sql
    [OPTIONS] STATEMENT`): typer writes a required one in braces, `{STATEMENT}`, which reads
    as a set of choices."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


WarehouseOpt = Annotated[
    str | None,
    typer.Option(
        "--warehouse", "-w", help="Warehouse folder (default ./warehouse, or agenttrail.toml)."
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the summary as JSON (for schedulers).")
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(help="S3-compatible endpoint URL, for a --warehouse s3://bucket/prefix."),
]
ProfileOpt = Annotated[
    str | None, typer.Option(help="AWS profile, for a --warehouse s3://bucket/prefix.")
]


def _print_version(wanted: bool) -> None:
    if wanted:
        from pipeline import __version__

        typer.echo(f"agenttrail {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Path of agenttrail.toml to use.")
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print agenttrail's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """agenttrail: evidence of what AI agents and people did with your AWS permissions."""
    _STATE["debug"] = debug
    _STATE["config"] = config


def _settings(**overrides: Any) -> Settings:
    return load_settings(config_file=_STATE["config"], overrides=overrides)


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _count(n: int, noun: str) -> str:
    """'1 event', '2 events', '1,000 events'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _s3_options(endpoint_url: str | None, profile: str | None) -> Any:
    """S3Options for an s3:// warehouse, or None when no S3 flag was given."""
    if endpoint_url is None and profile is None:
        return None
    from pipeline.warehouse.remote import S3Options

    return S3Options(endpoint_url=endpoint_url, profile=profile)


def _parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a date", hint="use YYYY-MM-DD (UTC)") from None


# ---------------------------------------------------------------------------------- ingest
@app.command(cls=_Command)
def ingest(
    sources: Annotated[
        list[str],
        typer.Argument(metavar="SOURCE...", help="s3://bucket[/prefix], folders or files."),
    ],
    warehouse: WarehouseOpt = None,
    since: Annotated[str | None, typer.Option(help="First UTC day to keep (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day to keep (inclusive).")] = None,
    account: Annotated[
        list[str] | None, typer.Option(help="Only this account (repeatable).")
    ] = None,
    region: Annotated[list[str] | None, typer.Option(help="Only this region (repeatable).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile for S3 sources.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="S3-compatible endpoint URL.")] = None,
    workers: Annotated[int | None, typer.Option(help="Parse processes (default: cores).")] = None,
    download_threads: Annotated[int | None, typer.Option(help="Concurrent S3 downloads.")] = None,
    max_object_mb: Annotated[
        int | None, typer.Option(help="Quarantine objects larger than this (MB).")
    ] = None,
    retry_quarantined: Annotated[
        bool, typer.Option(help="Read again objects quarantined by earlier runs.")
    ] = False,
    as_json: JsonOpt = False,
) -> int:
    """Ingest CloudTrail logs from S3 or local folders into the Parquet warehouse.

    Only new or changed objects are read; re-running is always safe. Exit code 3 means some
    inputs were quarantined (see the summary and the `manifest` view).
    """
    from pipeline.parse_processes import start_parse_server

    # First: the parse processes' server imports the parse modules while this process imports
    # the rest (pipeline/parse_processes.py).
    start_parse_server()
    from pipeline.console import progress_printer
    from pipeline.ingest import run_ingest
    from pipeline.source import Filters
    from pipeline.source.keys import check_account_id, check_region

    settings = _settings(
        warehouse=warehouse,
        **{
            "ingest.workers": workers,
            "ingest.download_threads": download_threads,
            "ingest.max_object_mb": max_object_mb,
        },
    )
    since_day, until_day = _parse_day(since, "--since"), _parse_day(until, "--until")
    if since_day and until_day and since_day > until_day:
        raise UsageError("--since is after --until")
    for account_id in account or ():
        check_account_id(account_id)
    for region_name in region or ():
        check_region(region_name)
    filters = Filters(
        since=since_day,
        until=until_day,
        accounts=tuple(account or ()),
        regions=tuple(region or ()),
        slack_days=settings.ingest.late_delivery_days,
    )
    s3_client = None
    if any(s.lower().startswith("s3://") for s in sources):  # as open_source decides
        from pipeline.source.aws import make_s3_client

        s3_client = make_s3_client(
            profile=profile,
            endpoint_url=endpoint_url,
            max_attempts=settings.ingest.retry_max_attempts,
            max_pool_connections=max(10, settings.ingest.download_threads),
        )
    pending: AttributionPendingError | None = None
    with progress_printer(enabled=not as_json) as progress:
        try:
            summary = run_ingest(
                sources,
                settings,
                filters=filters,
                s3_client=s3_client,
                progress=progress,
                retry_quarantined=retry_quarantined,
            )
        except AttributionPendingError as exc:  # the events are committed: say what they are
            summary, pending = exc.summary, exc
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        from pipeline.console import summary_text

        typer.echo(summary_text(summary))
    filtered = (
        " that --since/--until/--account/--region let through"
        if (since or until or account or region)
        else ""
    )
    _notices(
        f"{uri} holds no objects{filtered}; check the bucket, prefix or folder (CloudTrail "
        "writes under AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)"
        for uri in summary.empty_sources
    )
    if pending is not None:
        raise pending  # its one line on stderr, and the summary's exit code
    return int(summary.exit_code)


# ------------------------------------------------------------------------------------- sql
@app.command(cls=_Command)
def sql(
    statement: Annotated[
        str,
        typer.Argument(metavar="STATEMENT", help="One SQL statement over the warehouse views."),
    ],
    warehouse: WarehouseOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json, ndjson, parquet, markdown.")
    ] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
    allow_write: Annotated[
        bool, typer.Option(help="Allow statements that change the warehouse or write files.")
    ] = False,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
) -> int:
    """Run one SQL statement against the warehouse views (events, events_classified, ...)."""
    from pipeline.attribute.freshness import reader_notice
    from pipeline.query.adhoc import open_sql
    from pipeline.query.formats import check_format, write_result

    settings = _settings(warehouse=warehouse)
    check_format(fmt, out, settings.warehouse)  # before the statement runs, not after
    stale = reader_notice(settings, statement)
    _notices([stale] if stale else [])
    with open_sql(
        settings.warehouse,
        statement,
        allow_write=allow_write,
        memory_limit=settings.query.duckdb_memory_limit,
        s3=_s3_options(endpoint_url, profile),
    ) as result:
        width = shutil.get_terminal_size((120, 24)).columns
        write_result(
            result, fmt, stream=sys.stdout, out=out, width=width, warehouse=settings.warehouse
        )
    return 0


# ------------------------------------------------------------------------------- attribute
@app.command()
def attribute(warehouse: WarehouseOpt = None, as_json: JsonOpt = False) -> int:
    """Re-classify every event (agent, human, workload, service) with the rules in force.

    Ingest and `iam import` do this already; run it after changing [attribution] settings.
    """
    from pipeline.attribute.classify import attribute_warehouse, reused_keys_notice

    summary = attribute_warehouse(_settings(warehouse=warehouse))
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(summary), indent=2))
    else:
        actors = ", ".join(f"{kind} {n:,}" for kind, n in summary.by_actor.items())
        typer.echo(
            f"classified {_count(summary.events, 'event')}{f' ({actors})' if actors else ''}; "
            f"{_count(summary.sessions, 'session')}; rules {summary.rules_version}; "
            f"{summary.seconds:.1f} s"
        )
    if summary.reused_issued_keys:
        _notices([reused_keys_notice(summary.reused_issued_keys)])
    return 0


# ------------------------------------------------------------------------------------- iam
iam_app = typer.Typer(
    help="IAM inventory: role tags, boundaries and policies.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(iam_app, name="iam")


def _parse_moment(value: str | None) -> datetime:
    from pipeline.iam.load import parse_taken_at

    now = datetime.now(UTC)
    return now if value is None else parse_taken_at(value, now)


def _print_import(summary: Any) -> None:
    from pipeline.attribute.classify import reused_keys_notice

    _notices(
        f"removed the files of IAM snapshot {snapshot_id}, whose import did not finish "
        "(it failed or was killed before listing the snapshot)"
        for snapshot_id in summary.removed_incomplete
    )
    for snap in summary.snapshots:
        state = "already present" if snap.already_present else "imported"
        typer.echo(
            f"{state}: {snap.source_file} -> account {snap.account_id}, taken at "
            f"{snap.taken_at.isoformat()}, {snap.roles} roles, {snap.users} users, "
            f"{snap.groups} groups, {snap.policies} policies (snapshot {snap.snapshot_id})"
        )
    if summary.attribution is not None:
        typer.echo(f"re-classified {_count(summary.attribution.events, 'event')}")
        if summary.attribution.reused_issued_keys:
            _notices([reused_keys_notice(summary.attribution.reused_issued_keys)])
    elif summary.current:
        typer.echo("nothing new: events_classified is up to date")


@iam_app.command("import", cls=_Command)
def iam_import(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="get-account-authorization-details JSON."),
    ],
    taken_at: Annotated[
        str | None,
        typer.Option(help="When the snapshot was taken (ISO 8601 with zone; default: now)."),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> int:
    """Import IAM snapshots (the output of `aws iam get-account-authorization-details`)."""
    from pipeline.iam.store import import_snapshots
    from pipeline.warehouse.layout import Layout

    settings = _settings(warehouse=warehouse)
    summary = import_snapshots(
        files, Layout.at(settings.warehouse), _parse_moment(taken_at), settings
    )
    _print_import(summary)
    return 0


@iam_app.command("snapshot")
def iam_snapshot(
    profile: Annotated[str | None, typer.Option(help="AWS profile.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="IAM endpoint URL.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Keep the JSON in this new file, outside the warehouse (default: its iam/raw/).",
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> int:
    """Take an IAM snapshot live (iam:GetAccountAuthorizationDetails) and import it."""
    from pipeline.iam.client import make_iam_client
    from pipeline.iam.snapshot import check_snapshot_out, raw_path, snapshot_to_file
    from pipeline.iam.store import import_snapshots
    from pipeline.warehouse.layout import Layout

    settings = _settings(warehouse=warehouse)
    layout = Layout.at(settings.warehouse)
    if out is not None:
        check_snapshot_out(out, settings.warehouse)
    client = make_iam_client(
        profile=profile, endpoint_url=endpoint_url, max_attempts=settings.ingest.retry_max_attempts
    )
    target = out or raw_path(layout.iam_raw, datetime.now(UTC))
    taken = snapshot_to_file(client, target)
    typer.echo(f"snapshot written to {taken.path}")
    _print_import(import_snapshots([taken.path], layout, taken.taken_at, settings))
    return 0


# ------------------------------------------------------------------------------------ demo
# The demo's warehouse unless --warehouse names one. agenttrail.toml's and AGENTTRAIL_WAREHOUSE
# are never used: events are never rewritten, so the sample's made-up accounts would stay in a
# real warehouse's every query for good.
DEMO_WAREHOUSE = "demo-warehouse"


@app.command()
def demo(
    warehouse: Annotated[
        str | None,
        typer.Option(
            "--warehouse",
            "-w",
            help=f"Warehouse folder (default: ./{DEMO_WAREHOUSE}; never the configured one, "
            "which the sample would mix into).",
        ),
    ] = None,
) -> int:
    """The main job on the bundled sample: ingest sample_logs/AWSLogs, import sample_logs/iam."""
    from pipeline.demo import run_demo
    from pipeline.query.formats import render

    settings = _settings(warehouse=warehouse or DEMO_WAREHOUSE)
    result = run_demo(settings)
    ingest = result.ingest
    typer.echo(
        f"ingested {ingest.events_written:,} new events from {ingest.objects_read:,} files "
        f"({ingest.objects_unchanged:,} unchanged, {ingest.duplicates_dropped:,} duplicates "
        f"dropped, {ingest.digests_recorded} digests recorded); "
        f"{result.snapshots_imported} IAM snapshot(s) imported"
    )
    import pyarrow as pa

    typer.echo("\nwho acted, and through which path:")
    typer.echo(render(pa.Table.from_pylist(result.by_actor_and_path), "table"), nl=False)
    typer.echo("\nagents seen:")
    typer.echo(render(pa.Table.from_pylist(result.agents), "table"), nl=False)
    database = result.warehouse / "agenttrail.duckdb"
    # Show the command as it can be typed here: `make demo` does not put .venv/bin on PATH.
    exe = "agenttrail"
    if shutil.which("agenttrail") is None:
        beside = Path(sys.executable).parent / "agenttrail"
        exe = os.path.relpath(beside) if beside.exists() else "python -m pipeline"
    typer.echo(
        f"\nwarehouse: {result.warehouse}\n"
        f"open it:   duckdb {database}   (views: events, events_classified, sessions, ...)\n"
        f"next:      {exe} query list\n"
        f"           {exe} query run agent_bypass --quarter 2026Q3 -w {result.warehouse}\n"
        "HTML reports: none yet; the quarterly report and evidence bundle are the next issues."
    )
    return int(ingest.exit_code)


# ----------------------------------------------------------------------------------- query
query_app = typer.Typer(
    help="The named SQL library: queries/*.sql and your own folders (docs/queries.md).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(query_app, name="query")

QueriesDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--queries-dir",
        help="Another folder of .sql queries (repeatable); a query named like a built-in wins.",
    ),
]


def _notices(notices: Any) -> None:
    for notice in notices:
        _err(f"notice: {notice}")


def _parse_params(items: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            example = f"--param {key.strip()}=VALUE" if key.strip() else "--param NAME=VALUE"
            raise UsageError(f"--param {item!r} is not NAME=VALUE", hint=f"write {example}")
        if key.strip() in params:
            raise UsageError(
                f"--param {key.strip()} is given twice",
                hint="a list parameter takes comma-separated values: --param k=a,b",
            )
        params[key.strip()] = value
    return params


@query_app.command("list")
def query_list(queries_dir: QueriesDirOpt = None, warehouse: WarehouseOpt = None) -> int:
    """List the named queries: name and one line each (--warehouse is accepted, not needed).

    An invalid query file is not listed: a notice gives its problem, the others are listed, and
    the command ends with an error (exit 1) naming the invalid files."""
    from pipeline.query.library import survey_queries

    survey = survey_queries(_settings(warehouse=warehouse), queries_dir or ())
    queries = survey.queries
    width = max((len(q.name) for q in queries), default=0)
    columns = shutil.get_terminal_size((120, 24)).columns
    for query in queries:
        line = f"{query.name.ljust(width)}  {'[user] ' if query.origin == 'user' else ''}"
        line += query.summary
        typer.echo(line if len(line) <= columns else line[: max(columns - 1, width + 10)] + "…")
    _notices(n for q in queries if (n := q.notice()))
    _notices(f"not listed: {error.one_line()}" for error in survey.invalid)
    problem = survey.problem()
    if problem is not None:
        raise problem
    return 0


@query_app.command("show", cls=_Command)
def query_show(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Query name (see 'agenttrail query list').")
    ],
    queries_dir: QueriesDirOpt = None,
    warehouse: WarehouseOpt = None,
) -> int:
    """Show a query's header and SQL, with the file it comes from and the flags it takes."""
    from pipeline.query.library import show_query

    query = show_query(_settings(warehouse=warehouse), name, queries_dir or ())
    flags = ", ".join(query.scope_flags) or "none"
    typer.echo(f"-- file: {query.display} ({query.origin}); scope flags: {flags}")
    typer.echo(query.text, nl=not query.text.endswith("\n"))
    _notices([n for n in [query.notice()] if n])
    return 0


@query_app.command("run", cls=_Command)
def query_run(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Query name (see 'agenttrail query list').")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A query parameter NAME=VALUE (repeatable)."),
    ] = None,
    quarter: Annotated[
        str | None, typer.Option(help="Period: a quarter, e.g. 2026Q3 (fiscal if configured).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Period: first UTC day (YYYY-MM-DD).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Period: last UTC day, included (YYYY-MM-DD).")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Only this account id.")] = None,
    principal: Annotated[
        str | None, typer.Option(help="Only this principal (as the query describes).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json, ndjson, parquet, markdown.")
    ] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
    queries_dir: QueriesDirOpt = None,
    warehouse: WarehouseOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
) -> int:
    """Run a named query. Scope flags a query does not declare are refused, never ignored."""
    from pipeline.query.formats import check_format, write_result
    from pipeline.query.library import Scope, open_query

    settings = _settings(warehouse=warehouse)
    check_format(fmt, out, settings.warehouse)  # before the query runs, not after
    scope = Scope(
        quarter=quarter,
        since=_parse_day(since, "--since"),
        until=_parse_day(until, "--until"),
        account=account,
        principal=principal,
    )
    # Streamed as `sql` streams: batch by batch, and a reader that leaves (`| head`) ends the
    # command with 141.
    with open_query(
        settings,
        name,
        scope=scope,
        params=_parse_params(param),
        extra_dirs=queries_dir or (),
        s3=_s3_options(endpoint_url, profile),
    ) as result:
        _notices(result.notices)
        width = shutil.get_terminal_size((120, 24)).columns
        write_result(
            result.reader,
            fmt,
            stream=sys.stdout,
            out=out,
            width=width,
            warehouse=settings.warehouse,
        )
    return 0


class _Terminated(BaseException):
    """SIGTERM (a scheduler's timeout or shutdown), raised in the main thread so that a command
    unwinds as it does for Ctrl-C: staged files removed, parse processes stopped, locks freed.
    Without it the default action ends the process on the spot."""


# The signals received, in order. A signal can surface as another error: DuckDB, interrupted
# mid-query, raises "Query interrupted" instead of the handler's exception. The error boundary
# reports the signal, not what it caused.
_SIGNALLED: list[int] = []
# Set once main has said so (interrupted, terminated): the grace thread, ending a process whose
# exit hangs after that, does not say it twice.
_REPORTED = threading.Event()


def _on_signal(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    # Not in the middle of starting a parse process (pipeline/interrupts.py).
    raise_now_or_later(KeyboardInterrupt() if signum == signal.SIGINT else _Terminated())


# Seconds a command has to unwind after SIGTERM or Ctrl-C before it is ended on the spot.
# Python runs the handler (and so the unwinding) only between two Python steps of the main
# thread; a long DuckDB query or Arrow read can keep it away for minutes. Users: schedulers,
# whose timeouts send SIGTERM and SIGKILL some seconds later, and analysts pressing Ctrl-C.
# Ending on the spot loses nothing either: every write is safe against SIGKILL.
SIGNAL_GRACE_SECONDS = 10.0


@contextlib.contextmanager
def _signals_handled() -> Iterator[None]:
    """SIGTERM and SIGINT raise in the main thread (_on_signal) while the block runs, and
    another thread sees each one as it arrives (the wakeup fd is written by the C-level handler
    at once), ending the process if the main thread has not unwound within
    SIGNAL_GRACE_SECONDS. The previous handlers are back afterwards (tests call main in their
    own process)."""
    _SIGNALLED.clear()
    _REPORTED.clear()
    previous = {signum: signal.signal(signum, _on_signal) for signum in _HANDLED}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_end_after_grace, args=(read_fd,), daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        # The thread reads end of file: it ends, or after a signal waits out the grace (an
        # exit that hangs is still ended).
        os.close(write_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_HANDLED = (signal.SIGTERM, signal.SIGINT)


def _end_after_grace(read_fd: int) -> None:
    """Wait for the first signal's byte on the wakeup pipe, then give the main thread
    SIGNAL_GRACE_SECONDS to unwind. The pipe's read end stays open, and is drained, until the
    end of the grace or until _signals_handled closes the write end: a second Ctrl-C or SIGTERM
    is written to the pipe too, and a pipe without its reader would make Python print
    "Exception ignored when trying to write to the signal wakeup fd: BrokenPipeError"."""
    with os.fdopen(read_fd, "rb", buffering=0) as wakeups:
        received = wakeups.read(1)
        if not received:
            return
        signum = received[0]
        deadline = time.monotonic() + SIGNAL_GRACE_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            if select.select([wakeups], [], [], left)[0] and not wakeups.read(64):
                break  # end of file: the wakeup fd is reset, nothing writes any more
        time.sleep(max(0.0, deadline - time.monotonic()))
    what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    if not _REPORTED.is_set():
        _err(f"{what}; {_CARRY_ON}")
    sys.stderr.flush()
    os._exit(TERMINATED if signum == signal.SIGTERM else INTERRUPTED)


INTERRUPTED = 128 + signal.SIGINT  # typer's code for Ctrl-C (KeyboardInterrupt)
TERMINATED = 128 + signal.SIGTERM
# The reader of the output went away (`agenttrail sql ... | head`): silent, with the code a
# shell gives a command that SIGPIPE ended, as `yes | head` does.
BROKEN_PIPE = 128 + signal.SIGPIPE
_CARRY_ON = "re-run the same command to carry on (nothing is lost)"


def hoist_global_options(args: list[str]) -> list[str]:
    """`args` with --debug and --config FILE moved in front of the command, wherever they were
    typed: they belong to the root command, and an error message's "re-run with --debug" is
    naturally appended at the end. Nothing after a `--` is touched. A --config without its
    value is a usage error: left where it was, typer would say "No such option: --config" of
    a command typed before it; and so is one followed by an option (`--config --debug` read
    --debug as the file's name: a file named so is `--config ./--debug`)."""
    end = args.index("--") if "--" in args else len(args)
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < end:
        arg = args[i]
        if arg == "--debug" or arg.startswith("--config="):
            hoisted.append(arg)
        elif arg == "--config":
            if i + 1 == end or args[i + 1].startswith("--"):
                raise UsageError(
                    "--config requires a value",
                    hint="the path of an agenttrail.toml: --config FILE, before or after the "
                    "command",
                )
            hoisted += [arg, args[i + 1]]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return [*hoisted, *rest, *args[end:]]


def main() -> None:
    """Console-script entry point: the one error boundary."""
    args = sys.argv[1:]
    debug = "--debug" in args
    code: int = ExitCode.ERROR
    with _signals_handled():
        try:
            code = _dispatch(args, debug)
        except BaseException:
            if not _SIGNALLED:
                raise
    if _SIGNALLED:
        first = _SIGNALLED[0]
        what = "terminated (SIGTERM)" if first == signal.SIGTERM else "interrupted"
        _err(f"{what}; {_CARRY_ON}")
        _REPORTED.set()
        code = TERMINATED if first == signal.SIGTERM else INTERRUPTED
    sys.stdout.flush()
    sys.exit(code)


def _dispatch(args: list[str], debug: bool) -> int:
    """Run the command; every error it raises becomes one line and an exit code, except where
    a signal caused it (main reports the signal)."""
    try:
        result = app(args=hoist_global_options(args), standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit:
        # typer (typer/core.py) ends a command whose output pipe closed (EPIPE) with exit 1,
        # stdout and stderr wrapped in click's PacifyFlushWrapper to silence them; any other
        # SystemExit is passed on. test_cli holds this to the typer installed.
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return BROKEN_PIPE
        raise
    except typer.Abort:
        _err("aborted")
        return ExitCode.ERROR
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _err(f"error: {exc}")
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except AgenttrailError as exc:
        if _SIGNALLED:
            raise
        if debug:
            _print_traceback(exc)
        _err(f"error: {exc.one_line()}")
        return exc.exit_code
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if _SIGNALLED:
            raise
        if debug:
            _print_traceback(exc)
        from pipeline.endpoints import without_secrets_in_urls

        more = "" if debug else " (re-run with --debug for details)"
        text = str(exc).strip()
        # One line (DuckDB's messages run on for lines), without what a URL in it may hold.
        first = f": {without_secrets_in_urls(text.splitlines()[0])}" if text else ""
        _err(f"internal error: {type(exc).__name__}{first}{more}")
        return ExitCode.ERROR


def _print_traceback(exc: BaseException) -> None:
    """--debug's traceback, the chained exceptions' with it, with every URL in it cut to
    scheme://host[:port]: a library's message may quote an endpoint with its user:password@
    or a signed query string (botocore's "Could not connect to the endpoint URL: ...")."""
    from pipeline.endpoints import without_secrets_in_urls

    text = "".join(traceback.format_exception(exc))
    _err(without_secrets_in_urls(text).rstrip("\n"))
