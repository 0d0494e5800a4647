#!/usr/bin/env python3
"""Ingest benchmark: agenttrail next to gunzip, gunzip + JSON and DuckDB on the same files.

    .venv/bin/python bench/ingest.py [--events 1000000] [--files 2000] [--out bench/out/ingest]
                                     [--skip-baselines] [--workers N]

1. Generates (deterministically, in parallel, cached) a synthetic organization trail in
   CloudTrail's S3 key layout (bench/synthetic_trail.py): >= --events records of about 1.5 KB of
   JSON in >= --files gzipped `{"Records": [...]}` objects, 2 accounts x 3 regions over 90 days.
2. Runs each measurement in a fresh subprocess and samples the RSS of that process and all of its
   descendants every 50 ms (from /proc); the peak is the maximum of the sum. (The sum of RSS
   counts pages shared between processes once per process; results.json also has the peak sum
   of PSS, which splits them.)
3. Prints one markdown table and writes it, with every detail, to OUT/results.json.

See bench/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from synthetic_trail import Dataset, ensure_dataset

SAMPLE_EVERY_SECONDS = 0.05
# PSS (see TreeSampler): read only while RSS is within 10% of its peak so far, at most every
# half second.
PSS_NEAR_PEAK = 0.9
PSS_EVERY_SECONDS = 0.5
DUCKDB_TRIAL_TIMEOUT = 300.0


# ============================================================================ measured steps
# Each step runs in a fresh interpreter (`ingest.py --step NAME --step-args JSON`) and prints
# its result as one JSON object on stdout.


def step_gunzip(paths: list[str], parse_json: bool) -> dict[str, Any]:
    from isal import igzip

    gc.disable()  # as in agenttrail's workers: parsing makes millions of acyclic objects
    decoder = msgspec.json.Decoder()
    started = time.perf_counter()
    out = records = 0
    for path in paths:
        with open(path, "rb") as f:
            data: bytes = igzip.decompress(f.read())  # type: ignore[no-untyped-call]
        out += len(data)
        if parse_json:
            records += len(decoder.decode(data)["Records"])
        del data
    return {"seconds": time.perf_counter() - started, "bytes": out, "records": records}


RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventVersion", "VARCHAR"),
    ("userIdentity", "JSON"),
    ("eventTime", "TIMESTAMPTZ"),
    ("eventSource", "VARCHAR"),
    ("eventName", "VARCHAR"),
    ("awsRegion", "VARCHAR"),
    ("sourceIPAddress", "VARCHAR"),
    ("userAgent", "VARCHAR"),
    ("errorCode", "VARCHAR"),
    ("errorMessage", "VARCHAR"),
    ("requestParameters", "JSON"),
    ("responseElements", "JSON"),
    ("additionalEventData", "JSON"),
    ("requestID", "VARCHAR"),
    ("eventID", "VARCHAR"),
    ("readOnly", "BOOLEAN"),
    ("resources", "JSON"),
    ("eventType", "VARCHAR"),
    ("apiVersion", "VARCHAR"),
    ("managementEvent", "BOOLEAN"),
    ("recipientAccountId", "VARCHAR"),
    ("sharedEventID", "VARCHAR"),
    ("vpcEndpointId", "VARCHAR"),
    ("vpcEndpointAccountId", "VARCHAR"),
    ("eventCategory", "VARCHAR"),
    ("serviceEventDetails", "JSON"),
    ("tlsDetails", "JSON"),
    ("sessionCredentialFromConsole", "VARCHAR"),
    ("addendum", "JSON"),
    ("edgeDeviceDetails", "JSON"),
)
_RECORD_STRUCT = "STRUCT(" + ", ".join(f"{n} {t}" for n, t in RECORD_FIELDS) + ")"
# Variants tried on a sample; the fastest one that returns every record runs on all files.
DUCKDB_VARIANTS: dict[str, str] = {
    "read_json records=true format=newline_delimited": "records = true, format = 'newline_delimited'",
    "read_json records=true format=auto": "records = true, format = 'auto'",
    "read_json records=true format=unstructured": "records = true, format = 'unstructured'",
    "read_json records=auto format=auto": "format = 'auto'",
    "read_json_objects + json_transform": "",
}


def duckdb_query(variant: str, source: str, max_object_size: int) -> str:
    """The SELECT of a DuckDB variant over `source` (a quoted glob or a list literal)."""
    if variant.startswith("read_json_objects"):
        shape = json.dumps({"Records": [dict(RECORD_FIELDS)]})
        reader = (
            f"read_json_objects({source}, format = 'auto', compression = 'gzip', "
            f"maximum_object_size = {max_object_size})"
        )
        records = f"json_transform(json, '{shape}').Records"
    else:
        reader = (
            f"read_json({source}, columns = {{Records: '{_RECORD_STRUCT}[]'}}, "
            f"{DUCKDB_VARIANTS[variant]}, compression = 'gzip', "
            f"maximum_object_size = {max_object_size})"
        )
        records = "Records"
    return f"SELECT unnest(r) FROM (SELECT unnest({records}) AS r FROM {reader})"


def step_duckdb(
    variant: str, source: str, out: str, threads: int, max_object_size: int
) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    started = time.perf_counter()
    query = duckdb_query(variant, source, max_object_size)
    row = con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)").fetchone()
    return {"seconds": time.perf_counter() - started, "records": int(row[0]) if row else 0}


def step_ingest_api(source: str, warehouse: str, workers: int | None) -> dict[str, Any]:
    """Fallback when the `agenttrail` console script is missing: the library call itself."""
    from pipeline.config import load_settings
    from pipeline.ingest import run_ingest

    settings = load_settings(overrides={"warehouse": warehouse, "ingest.workers": workers})
    summary: dict[str, Any] = run_ingest([source], settings).to_dict()
    return summary


def run_step(name: str, args: dict[str, Any]) -> dict[str, Any]:
    if name in ("gunzip", "gunzip_json"):
        paths = json.loads(Path(args["paths_file"]).read_text())
        return step_gunzip(paths, parse_json=name == "gunzip_json")
    if name == "duckdb":
        return step_duckdb(**args)
    if name == "ingest_api":
        return step_ingest_api(**args)
    raise SystemExit(f"unknown step {name!r}")


# ========================================================================= process-tree RSS
def _children_of(pid: int) -> list[int]:
    """Children via /proc/PID/task/*/children (needs CONFIG_PROC_CHILDREN)."""
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out.extend(int(c) for c in f.read().split())
    return out


def _children_by_scan() -> dict[int, list[int]]:
    """Parent -> children from every /proc/PID/stat (when the children files are missing)."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


_HAS_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def process_tree(root: int) -> list[int]:
    scan = None if _HAS_CHILDREN_FILES else _children_by_scan()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            stack.extend(_children_of(pid) if scan is None else scan.get(pid, ()))
        except OSError:
            continue  # the process ended while we looked
    return found


def _proc_field_kb(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0  # ended, or a zombie (no such line)


def rss_kb(pid: int) -> int:
    return _proc_field_kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes that map them."""
    return _proc_field_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User + system CPU of one process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def load_average() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class TreeSampler(threading.Thread):
    """Samples a process tree every SAMPLE_EVERY_SECONDS: peak summed RSS and PSS, and CPU.

    CPU is the last value seen for each process, summed: it misses at most the final sample
    interval of each process, and unlike wall time it does not depend on what else the machine
    is running.

    PSS is read only near the RSS peak (PSS never exceeds RSS) and at most every
    PSS_EVERY_SECONDS, so peak PSS may miss what a process adds in the last half second before
    its peak; peak RSS, sampled every 50 ms, bounds it from above. Reading
    /proc/PID/smaps_rollup walks the process's page tables under its memory-map lock, stalling
    its page faults: read every 50 ms, it slowed the measured run itself by 8-15% (agenttrail's
    ingest and DuckDB's baseline alike, A/B on the bench's 1M events).
    """

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.peak_processes = 0
        self.samples = 0
        self.pss_samples = 0
        self.timeline: dict[int, tuple[int, int]] = {}  # second -> (max RSS kB, processes)
        self._cpu: dict[int, int] = {}
        self._stop_event = threading.Event()

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values()) / _CLOCK_TICKS

    def run(self) -> None:
        started = time.perf_counter()
        last_pss = -PSS_EVERY_SECONDS
        while not self._stop_event.is_set():
            pids = process_tree(self.root)
            total = sum(rss_kb(pid) for pid in pids)
            if total > self.peak_kb:
                self.peak_kb, self.peak_processes = total, len(pids)
            now = time.perf_counter() - started
            second = int(now)
            if total >= self.timeline.get(second, (0, 0))[0]:
                self.timeline[second] = (total, len(pids))
            if total >= PSS_NEAR_PEAK * self.peak_kb and now - last_pss >= PSS_EVERY_SECONDS:
                self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(pid) for pid in pids))
                self.pss_samples += 1
                last_pss = now
            for pid in pids:
                self._cpu[pid] = max(self._cpu.get(pid, 0), cpu_ticks(pid))
            self.samples += 1
            self._stop_event.wait(SAMPLE_EVERY_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Measured:
    command: list[str]
    seconds: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_processes: int
    cpu_seconds: float
    load_average: float  # 1-minute load average when the step ended
    returncode: int
    output: Any  # the step's JSON result
    stderr_tail: str
    timeline: list[tuple[int, float, int]]  # (second, peak RSS MB in it, processes)
    timed_out: bool = False

    def failure(self, what: str) -> str:
        """Why the step failed, in one line (signals are named: SIGKILL is often the OOM killer)."""
        if self.timed_out:
            how = "timed out, killed"
        elif self.returncode < 0:
            how = f"killed by {signal.Signals(-self.returncode).name}"
            if self.returncode == -signal.SIGKILL:
                how += " (out of memory? see `dmesg`)"
        else:
            how = f"exit {self.returncode}"
        last = (self.stderr_tail.strip().splitlines() or [""])[-1][:300]
        return (
            f"{what} failed after {self.seconds:.1f} s, {how}, "
            f"peak RSS {self.peak_rss_mb:,.0f} MB{': ' + last if last else ''}"
        )


class StepFailed(Exception):
    """A measured step failed or returned wrong results; its row is kept, marked as failed."""

    def __init__(self, name: str, measured: Measured, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.measured = measured


def measure(command: list[str], cwd: Path, timeout: float | None = None) -> Measured:
    """Run `command` in a fresh process; wall time and peak RSS of its whole process tree.

    Output goes to files in `cwd` (a pipe could fill up and stall the child); `cwd` is a
    folder of its own, so no agenttrail.toml of the caller's working directory applies.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    with open(cwd / "stdout.txt", "w+b") as out, open(cwd / "stderr.txt", "w+b") as err:
        started = time.perf_counter()
        # A session of its own: on timeout or Ctrl-C, the step's whole process group (and only
        # it) is killed, so no parse worker outlives its measurement.
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timed_out = False
        try:
            returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode, timed_out = proc.wait(), True
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            sampler.stop()
            raise
        seconds = time.perf_counter() - started
        sampler.stop()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return Measured(
        command,
        seconds,
        sampler.peak_kb / 1024,
        sampler.peak_pss_kb / 1024,
        sampler.peak_processes,
        sampler.cpu_seconds,
        load_average(),
        returncode,
        _json_output(stdout),
        stderr[-2000:],
        [(t, round(kb / 1024, 1), n) for t, (kb, n) in sorted(sampler.timeline.items())],
        timed_out,
    )


def _json_output(text: str) -> Any:
    """The first JSON object a step or `agenttrail --json` printed, after any log lines."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text, start)
            return value
        except ValueError:
            start = text.find("{", start + 1)
    return None


def step_command(name: str, args: dict[str, Any]) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--step",
        name,
        "--step-args",
        json.dumps(args),
    ]


# ================================================================================= the runs
@dataclass
class Row:
    """One line of the table: a measured step over the whole data set."""

    name: str
    measured: Measured
    events: int
    compressed_bytes: int
    uncompressed_bytes: int
    throughput: bool = True  # False for the re-run, which reads nothing, and for failures
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failed(cls, exc: StepFailed) -> Row:
        return cls(exc.name, exc.measured, 0, 0, 0, throughput=False, error=str(exc))

    @property
    def seconds(self) -> float:
        return self.measured.seconds

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.throughput and self.seconds else 0.0

    @property
    def events_per_cpu_second(self) -> float:
        cpu = self.measured.cpu_seconds
        return self.events / cpu if self.throughput and cpu else 0.0

    def mb_per_second(self, size: int) -> float:
        return size / 1e6 / self.seconds if self.throughput and self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        m = self.measured
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "events": self.events,
            "events_per_second": round(self.events_per_second),
            "mb_per_second_compressed": round(self.mb_per_second(self.compressed_bytes), 1),
            "mb_per_second_uncompressed": round(self.mb_per_second(self.uncompressed_bytes), 1),
            "peak_rss_mb": round(m.peak_rss_mb, 1),
            "peak_pss_mb": round(m.peak_pss_mb, 1),
            "processes_at_peak": m.peak_processes,
            "cpu_seconds": round(m.cpu_seconds, 2),
            "events_per_cpu_second": round(self.events_per_cpu_second),
            "load_average_1m_after": m.load_average,
            "command": m.command,
            "error": self.error,
            "detail": self.detail,
            "memory_timeline": m.timeline,
        }


def _check(measured: Measured, name: str, ok_codes: Sequence[int] = (0,)) -> dict[str, Any]:
    if measured.returncode not in ok_codes or not isinstance(measured.output, dict):
        raise StepFailed(name, measured, measured.failure(name))
    return measured.output


def bench_gunzip(data: Dataset, work: Path) -> list[Row]:
    """(a) gunzip alone, then gunzip + JSON parsing: one process each, the floor of any ingest."""
    paths_file = work / "paths.json"
    paths_file.write_text(json.dumps(data.paths()))
    rows = []
    for step, label in (
        ("gunzip", "gunzip (isal)"),
        ("gunzip_json", "gunzip + JSON (isal + msgspec)"),
    ):
        m = measure(step_command(step, {"paths_file": str(paths_file)}), work / step)
        out = _check(m, label)
        records_ok = step == "gunzip" or out["records"] == data.events
        if out["bytes"] != data.uncompressed or not records_ok:
            raise StepFailed(
                label,
                m,
                f"{label}: read {out['bytes']} bytes / {out['records']} records, "
                f"expected {data.uncompressed} / {data.events}",
            )
        detail = {"in_process_seconds": round(out["seconds"], 3), "processes": 1}
        rows.append(Row(label, m, data.events, data.compressed, data.uncompressed, detail=detail))
    return rows


def _max_object_size(data: Dataset) -> int:
    largest = max(f.uncompressed for f in data.files)
    return max(16 << 20, 1 << (2 * largest - 1).bit_length())


# Trials of each DuckDB variant, interleaved: a trial takes about a second, in which the shared
# machine's speed can swing by 20%; one trial each once picked a variant that ran the whole set
# 15% slower than the best one.
TRIAL_ROUNDS = 3


def pick_duckdb_variant(
    data: Dataset, work: Path, threads: int
) -> tuple[str, list[dict[str, Any]]]:
    """Try each variant on a sample of the files, TRIAL_ROUNDS times in turn; the complete one
    with the lowest median CPU seconds wins.

    Ranked by CPU seconds, which other load on the machine disturbs less than wall time.
    """
    count = min(len(data.files), max(20, len(data.files) // 10), 300)
    stride = max(1, len(data.files) // count)
    sample = data.files[::stride][:count]
    expected = sum(f.events for f in sample)
    source = "[" + ", ".join(f"'{data.root / f.relpath}'" for f in sample) + "]"
    runs: dict[str, list[Measured]] = {variant: [] for variant in DUCKDB_VARIANTS}
    failed: dict[str, str] = {}
    for _ in range(TRIAL_ROUNDS):
        for variant in DUCKDB_VARIANTS:
            if variant in failed:
                continue
            out = work / "trial.parquet"
            args = {
                "variant": variant,
                "source": source,
                "out": str(out),
                "threads": threads,
                "max_object_size": _max_object_size(data),
            }
            m = measure(step_command("duckdb", args), work / "trial", timeout=DUCKDB_TRIAL_TIMEOUT)
            out.unlink(missing_ok=True)
            records = m.output.get("records") if isinstance(m.output, dict) else None
            if m.returncode == 0 and records == expected:
                runs[variant].append(m)
            else:
                failed[variant] = (m.stderr_tail.strip().splitlines() or ["timeout"])[-1][:300]
    trials: list[dict[str, Any]] = []
    for variant, measured in runs.items():
        ok = variant not in failed
        seconds = statistics.median(r.seconds for r in measured) if ok else 0.0
        cpu = statistics.median(r.cpu_seconds for r in measured) if ok else 0.0
        trials.append(
            {
                "variant": variant,
                "files": len(sample),
                "events": expected,
                "rounds": len(measured),
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu, 2),
                "cpu_seconds_each": [round(r.cpu_seconds, 2) for r in measured],
                "works": ok,
                "error": failed.get(variant, ""),
            }
        )
        outcome = (
            f"median {seconds:.2f} s, {cpu:.2f} CPU s of {len(measured)}"
            if ok
            else f"failed: {failed[variant]}"
        )
        print(f"  DuckDB trial, {variant}: {outcome}", file=sys.stderr)
    working = [t for t in trials if t["works"]]
    if not working:
        raise StepFailed("DuckDB", m, "no DuckDB variant worked on these files (see the trials)")
    best: str = min(working, key=lambda t: float(t["cpu_seconds"]))["variant"]
    return best, trials


def run_duckdb(
    data: Dataset, work: Path, threads: int, variant: str, trials: list[dict[str, Any]]
) -> Row:
    """One measured run of DuckDB's chosen variant over all the files."""
    out = work / "duckdb.parquet"
    max_object_size = _max_object_size(data)
    args = {
        "variant": variant,
        "source": f"'{data.glob}'",
        "out": str(out),
        "threads": threads,
        "max_object_size": max_object_size,
    }
    m = measure(step_command("duckdb", args), work / "duckdb")
    label = f"DuckDB {variant} + COPY"
    result = _check(m, label)
    if result["records"] != data.events:
        raise StepFailed(label, m, f"DuckDB wrote {result['records']} rows, not {data.events}")
    query = duckdb_query(variant, f"'{data.glob}'", max_object_size)
    detail = {
        "variant": variant,
        "threads": threads,
        "in_process_seconds": round(result["seconds"], 3),
        "parquet_mb": round(out.stat().st_size / 1e6, 1),
        "sql": f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)",
        "trials": trials,
    }
    out.unlink()
    return Row(label, m, data.events, data.compressed, data.uncompressed, detail=detail)


def ingest_command(data: Dataset, warehouse: Path, workers: int | None, via: str) -> list[str]:
    """`agenttrail ingest ... --json`, or the run_ingest fallback when there is no CLI."""
    console_script = Path(sys.executable).parent / "agenttrail"
    if via == "cli" or (via == "auto" and console_script.exists()):
        command = [str(console_script), "ingest", str(data.root)]
        command += ["--warehouse", str(warehouse), "--json"]
        return command + (["--workers", str(workers)] if workers else [])
    return step_command(
        "ingest_api", {"source": str(data.root), "warehouse": str(warehouse), "workers": workers}
    )


def bench_agenttrail(data: Dataset, work: Path, workers: int | None, via: str) -> list[Row]:
    """(c) agenttrail ingest into a fresh warehouse, verified; (d) the same command again."""
    first = run_agenttrail(data, work, workers, via)
    return [first, rerun_agenttrail(data, work, workers, via)]


def run_agenttrail(data: Dataset, work: Path, workers: int | None, via: str) -> Row:
    """One measured ingest into a fresh warehouse, verified."""
    warehouse = work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    command = ingest_command(data, warehouse, workers, via)
    first = measure(command, work / "ingest")
    summary = _check(first, "agenttrail ingest", ok_codes=(0, 3))
    if summary.get("events_written") != data.events or summary.get("exit_code") != 0:
        raise StepFailed(
            "agenttrail ingest",
            first,
            f"agenttrail ingest wrote {summary.get('events_written')} events "
            f"(exit {summary.get('exit_code')}), expected {data.events}; "
            f"quarantined: {summary.get('quarantine')}",
        )
    problem, verified = verify_warehouse(warehouse, data.events)
    if problem:
        raise StepFailed("agenttrail ingest", first, problem)
    detail = {
        "workers": workers or os.cpu_count() or 1,
        "summary": _brief(summary),
        "verified": verified,
    }
    return Row(
        "agenttrail ingest", first, data.events, data.compressed, data.uncompressed, detail=detail
    )


def rerun_agenttrail(data: Dataset, work: Path, workers: int | None, via: str) -> Row:
    """The same command again, on the warehouse run_agenttrail left: it must read nothing."""
    command = ingest_command(data, work / "warehouse", workers, via)
    again = measure(command, work / "rerun")
    resummary = _check(again, "agenttrail re-run", ok_codes=(0, 3))
    if resummary.get("objects_read") != 0 or resummary.get("events_written") != 0:
        message = f"the re-run read {resummary.get('objects_read')} objects, expected none"
        raise StepFailed("agenttrail re-run (incremental)", again, message)
    return Row(
        "agenttrail re-run (incremental)",
        again,
        0,
        0,
        0,
        throughput=False,
        detail={"summary": _brief(resummary)},
    )


def ingest_proper_ratio(ours: Row, duck: Row) -> float | None:
    """Ingest proper's events/s (the run minus the attribution its summary reports) over
    DuckDB's: the figure issue 2's target is set on."""
    attribution = _attribution_seconds(ours)
    if attribution is None or not duck.events_per_second:
        return None
    return ours.events / max(1e-9, ours.seconds - attribution) / duck.events_per_second


def bench_pairs(
    data: Dataset, work: Path, cores: int, workers: int | None, via: str, pairs: int
) -> tuple[list[Row], list[dict[str, Any]]]:
    """DuckDB (its variant picked once) and agenttrail ingest, alternately, `pairs` times; then
    the re-run. The machine's speed drifts over minutes (a shared VM): each pair's two runs
    are taken a minute apart at most, and the ratio is judged pair by pair. The rows returned
    are those of the pair with the median ratio."""
    variant, trials = pick_duckdb_variant(data, work, cores)
    measured: list[tuple[Row, Row, float]] = []
    for n in range(pairs):
        print(f"  pair {n + 1} of {pairs} ...", file=sys.stderr)
        duck = run_duckdb(data, work, cores, variant, trials)
        ours = run_agenttrail(data, work, workers, via)
        ratio = ingest_proper_ratio(ours, duck)
        if ratio is None:
            raise StepFailed("agenttrail ingest", ours.measured, "no attribution seconds")
        measured.append((duck, ours, ratio))
    ordered = sorted(measured, key=lambda m: m[2])
    duck, ours, _ = ordered[(len(ordered) - 1) // 2]
    table = [
        {
            "pair": n + 1,
            "duckdb_seconds": round(d.seconds, 3),
            "agenttrail_seconds": round(o.seconds, 3),
            "attribution_seconds": _attribution_seconds(o),
            "ingest_proper_vs_duckdb": round(r, 3),
        }
        for n, (d, o, r) in enumerate(measured)
    ]
    return [duck, ours, rerun_agenttrail(data, work, workers, via)], table


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    """An ingest summary without its per-object lists."""
    return {k: v for k, v in summary.items() if k not in ("quarantine", "failures", "sources")}


def verify_warehouse(warehouse: Path, expected: int) -> tuple[str | None, dict[str, Any]]:
    """count(*) and count(DISTINCT event_id) of the warehouse's Parquet files, read by DuckDB."""
    import duckdb

    files = str(warehouse / "events" / "*" / "*" / "*.parquet")
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM read_parquet($f)", {"f": files}
        ).fetchone()
    assert row is not None
    total, distinct = int(row[0]), int(row[1])
    counts = {"count": total, "distinct_event_id": distinct}
    if total != expected or distinct != expected:
        return (
            f"warehouse holds {total} rows / {distinct} distinct event_id, not {expected}",
            counts,
        )
    return None, counts


def _attribution_seconds(row: Row) -> float | None:
    """Seconds the ingest spent rebuilding attribution, when its summary reports them."""
    attribution = row.detail.get("summary", {}).get("attribution")
    seconds = attribution.get("seconds") if isinstance(attribution, dict) else None
    return float(seconds) if seconds is not None else None


# ================================================================================== report
def machine() -> dict[str, Any]:
    import duckdb

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            models = (line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
            cpu = next(models, "")
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
        "column_builder": _column_builder(),
    }


def _column_builder() -> str:
    """Which column builder agenttrail's parse processes use here (pipeline/parse/gather.py):
    the compiled one, built at install where a C compiler is, or its Python twin."""
    try:
        from pipeline.parse import gather
    except ImportError:
        return "unknown (agenttrail not importable)"
    return "compiled" if gather.compiled is not None else "Python twin"


def _ratio(ours: Row | None, duck: Row | None, metric: str) -> float | None:
    theirs = getattr(duck, metric) if duck else 0.0
    return round(getattr(ours, metric) / theirs, 3) if ours and theirs else None


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}" if value else "-"


def markdown(
    rows: list[Row], data: Dataset, info: dict[str, Any], pairs: list[dict[str, Any]]
) -> str:
    lines = [
        f"{data.events:,} events in {len(data.files):,} files: "
        f"{data.compressed / 1e6:,.1f} MB gzipped, {data.uncompressed / 1e6:,.1f} MB of JSON "
        f"({data.uncompressed / max(1, data.events):,.0f} B/event)",
        "",
        "| step | seconds | events/s | MB/s compressed | MB/s uncompressed | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"{r.name} **FAILED**" if r.error else r.name
        lines.append(
            f"| {name} | {r.seconds:.2f} | {_fmt(r.events_per_second)} | "
            f"{_fmt(r.mb_per_second(r.compressed_bytes), 1)} | "
            f"{_fmt(r.mb_per_second(r.uncompressed_bytes), 1)} | {r.measured.peak_rss_mb:,.0f} |"
        )
    lines.append("")
    lines += [f"FAILED: {r.error}" for r in rows if r.error]
    duck = next((r for r in rows if r.name.startswith("DuckDB") and not r.error), None)
    ours = next((r for r in rows if r.name == "agenttrail ingest" and not r.error), None)
    if ours and (wall := _ratio(ours, duck, "events_per_second")):
        cpu = _ratio(ours, duck, "events_per_cpu_second") or 0.0
        lines.append(
            f"agenttrail / DuckDB events/s: **{wall:.2f}x** (target >= 0.8x); "
            f"per CPU second: {cpu:.2f}x"
        )
    if ours and (attribution := _attribution_seconds(ours)) is not None:
        lines.append(
            f"agenttrail ingest includes {attribution:.1f} s of attribution rebuild; "
            f"without it: {data.events / max(1e-9, ours.seconds - attribution):,.0f} events/s"
        )
    if pairs:
        ratios = [p["ingest_proper_vs_duckdb"] for p in pairs]
        lines.append(
            f"ingest proper / DuckDB events/s: **{statistics.median(ratios):.2f}x** median of "
            f"{len(pairs)} pair(s) run alternately (target >= 0.8x): "
            + ", ".join(f"{r:.2f}x" for r in ratios)
            + "; the table shows the median pair"
        )
    lines.append(
        "CPU seconds (whole process tree): "
        + ", ".join(f"{r.name.split(' (')[0]} {r.measured.cpu_seconds:.1f}" for r in rows)
    )
    loads = [r.measured.load_average for r in rows]
    # An ingest keeps its parse processes (one per core) and its parent busy (cores + 1 runnable
    # processes): a load above that came from something else too.
    busy = max(loads, default=0.0) > (info["cores"] or 1) + 1
    lines.append(
        "Load average (1 min) after each step: "
        + ", ".join(f"{load:.1f}" for load in loads)
        + f" on {info['cores']} cores"
        + (": other processes competed for the CPUs, so wall times are noisy" if busy else "")
    )
    lines.append(
        f"Machine: {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"DuckDB {info['duckdb']}; agenttrail's column builder: {info['column_builder']}"
    )
    return "\n".join(lines)


def warm_page_cache(data: Dataset) -> None:
    """Read every file once so that the first measured step does not pay for cold storage."""
    for path in data.paths():
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    parser.add_argument(
        "--files", type=int, default=2_000, help="gzipped files to spread them over"
    )
    parser.add_argument(
        "--out",
        default="bench/out/ingest",
        help="work folder: data/ (cached), warehouse/, results.json",
    )
    parser.add_argument(
        "--skip-baselines",
        action="store_true",
        help="measure agenttrail only (no gunzip, JSON or DuckDB rows)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="agenttrail parse processes (default: its own, one per core)",
    )
    parser.add_argument(
        "--via",
        choices=("auto", "cli", "api"),
        default="auto",
        help="drive ingest through the `agenttrail` console script or run_ingest",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="DuckDB and agenttrail runs, alternately, this many times each (median pair shown)",
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--step-args", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 1 or args.files < 1:
        parser.error("--events and --files must be positive")
    if args.pairs < 1:
        parser.error("--pairs must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        print(json.dumps(run_step(args.step, json.loads(args.step_args or "{}"))))
        return 0

    out = Path(args.out).resolve()
    cores = os.cpu_count() or 1
    started = time.perf_counter()
    print(
        f"data set: {args.events:,} events in {args.files:,} files under {out / 'data'}",
        file=sys.stderr,
    )
    data = ensure_dataset(out / "data", args.events, args.files, cores)
    generated = data.generated_seconds
    print(f"  generated in {generated:.1f} s" if generated else "  cached", file=sys.stderr)
    warm_page_cache(data)
    work = out / "runs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    steps: list[tuple[str, Callable[[], list[Row]]]] = []
    pairs: list[dict[str, Any]] = []

    def paired() -> list[Row]:
        rows, table = bench_pairs(data, work, cores, args.workers, args.via, args.pairs)
        pairs.extend(table)
        return rows

    if not args.skip_baselines:
        steps.append(("gunzip and gunzip + JSON", lambda: bench_gunzip(data, work)))
    if args.skip_baselines:
        steps.append(
            (
                "agenttrail ingest and re-run",
                lambda: bench_agenttrail(data, work, args.workers, args.via),
            )
        )
    else:
        steps.append(("DuckDB and agenttrail ingest, alternately; then the re-run", paired))
    rows: list[Row] = []
    for title, run in steps:
        print(f"{title} ...", file=sys.stderr)
        try:
            rows += run()
        except StepFailed as exc:  # keep the figures of the other steps
            print(f"  {exc}", file=sys.stderr)
            rows.append(Row.failed(exc))

    info = machine()
    table = markdown(rows, data, info, pairs)
    print(table)
    duck = next((r for r in rows if r.name.startswith("DuckDB") and not r.error), None)
    ours = next((r for r in rows if r.name == "agenttrail ingest" and not r.error), None)
    results = {
        "parameters": {
            "events": args.events,
            "files": args.files,
            "workers": args.workers,
            "skip_baselines": args.skip_baselines,
        },
        "dataset": {
            "root": str(data.root),
            "events": data.events,
            "files": len(data.files),
            "compressed_bytes": data.compressed,
            "uncompressed_bytes": data.uncompressed,
            "generated_seconds": data.generated_seconds,
        },
        "rows": [r.to_dict() for r in rows],
        "agenttrail_vs_duckdb_events_per_second": _ratio(ours, duck, "events_per_second"),
        "agenttrail_vs_duckdb_events_per_cpu_second": _ratio(ours, duck, "events_per_cpu_second"),
        "pairs": pairs,
        "ingest_proper_vs_duckdb_median": (
            round(statistics.median(p["ingest_proper_vs_duckdb"] for p in pairs), 3)
            if pairs
            else None
        ),
        "machine": info,
        "total_seconds": round(time.perf_counter() - started, 1),
        "markdown": table,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\nresults: {out / 'results.json'} ({results['total_seconds']} s in all)", file=sys.stderr
    )
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
