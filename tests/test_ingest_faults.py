"""Faults: SIGKILL at any moment, then a re-run, gives exactly the event set (and the kept copy of
every eventID) of an uninterrupted run; SIGTERM and Ctrl-C unwind cleanly; a killed ingest
leaves no parse process behind; and one writer at a time.

`python -m pipeline ingest` runs as a subprocess on ~60 generated files with one worker and a
small commit batch, so a run makes several commits. Kills land by time (fixed and seeded random
points) and by what the warehouse shows (right after staged files are renamed into events/ and
before the manifest names their objects; right after a commit). Each chain of kills must land at
least one kill mid-run.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from ingest_fixtures import (
    cli_env,
    ingest,
    kill_group,
    plain_records,
    rows,
    run_cli,
    scalar,
    start_cli,
    write_trail,
)

import pipeline.ingest
import pipeline.ingest_task
from pipeline.errors import AgenttrailError, OutOfMemoryError
from pipeline.ingest_task import ParseTask, TaskResult, run_task
from pipeline.warehouse import manifest

COMMIT_ROWS = "200"


@dataclass(frozen=True)
class Trail:
    logs: Path
    # event_id -> (source file, record index) of the copy the warehouse must keep: the smallest
    # source_uri, then the first record in it (the documented rule).
    kept: dict[str, tuple[str, int]]
    files: int


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Trail:
    logs = tmp_path_factory.mktemp("trail") / "logs"
    paths = write_trail(logs)
    kept: dict[str, tuple[str, int]] = {}
    for path in sorted(paths, key=str):
        for index, record in enumerate(plain_records(path)):
            kept.setdefault(record["eventID"], (str(path), index))
    return Trail(logs, kept, len(paths))


def env() -> dict[str, str]:
    return cli_env(AGENTTRAIL_INGEST_COMMIT_ROWS=COMMIT_ROWS)


def ingest_args(trail: Trail, warehouse: Path) -> list[str]:
    return ["ingest", str(trail.logs), "--warehouse", str(warehouse), "--workers", "1", "--json"]


def files_under(folder: Path, pattern: str) -> set[Path]:
    return set(folder.glob(pattern)) if folder.is_dir() else set()


@dataclass
class Kill:
    trigger: str
    finished_first: bool  # the run ended on its own before the trigger fired
    staging_left: bool  # the kill landed while the run was working
    new_event_files: int
    new_manifest_files: int

    @property
    def mid_run(self) -> bool:
        return not self.finished_first and self.staging_left

    @property
    def between_rename_and_manifest(self) -> bool:
        return self.mid_run and self.new_event_files > 0 and self.new_manifest_files == 0


Condition = Callable[[set[Path], set[Path]], bool]  # (new event files, new manifest files)


def run_and_kill(
    trail: Trail, warehouse: Path, after: float | None, condition: Condition | None = None
) -> Kill:
    """Start an ingest; SIGKILL it `after` seconds from its start, or as soon as `condition`
    holds of the files it has added to events/ and manifest/ (polled every millisecond)."""
    events_before = files_under(warehouse / "events", "*/*/*.parquet")
    manifest_before = files_under(warehouse / "manifest", "*.parquet")
    process = start_cli(*ingest_args(trail, warehouse), cwd=warehouse.parent, env=env())
    started = time.monotonic()
    deadline = started + (after if after is not None else 60.0)
    finished = False
    while True:
        if process.poll() is not None:
            finished = True
            break
        if time.monotonic() >= deadline:
            break
        if condition is not None:
            new_events = files_under(warehouse / "events", "*/*/*.parquet") - events_before
            new_manifest = files_under(warehouse / "manifest", "*.parquet") - manifest_before
            if condition(new_events, new_manifest):
                break
        time.sleep(0.001)
    kill_group(process)
    if finished:
        assert process.returncode == 0, process.stderr
    return Kill(
        trigger=f"{after:.2f}s" if condition is None else "condition",
        finished_first=finished,
        staging_left=(warehouse / "_staging").exists(),
        new_event_files=len(files_under(warehouse / "events", "*/*/*.parquet") - events_before),
        new_manifest_files=len(files_under(warehouse / "manifest", "*.parquet") - manifest_before),
    )


def complete_and_check(trail: Trail, warehouse: Path, kills: list[Kill]) -> None:
    """Re-run to completion; the warehouse must equal an uninterrupted run's."""
    done = run_cli(*ingest_args(trail, warehouse), cwd=warehouse.parent, env=env())
    assert done.returncode == 0, (done.stderr, kills)
    check_complete(trail, warehouse)


def check_complete(trail: Trail, warehouse: Path) -> None:
    """Every event once, each eventID's documented copy, every object ingested, no leftovers."""
    found = rows(
        warehouse, "SELECT event_id, source_uri, source_record_index FROM events ORDER BY 1"
    )
    assert {r["event_id"]: (r["source_uri"], r["source_record_index"]) for r in found} == trail.kept
    assert len(found) == len(trail.kept)  # no duplicate rows
    assert scalar(warehouse, "SELECT count(DISTINCT event_id) FROM events") == len(trail.kept)
    statuses = rows(warehouse, "SELECT status, count(*) AS n FROM manifest GROUP BY 1")
    assert statuses == [{"status": "ingested", "n": trail.files}]
    assert not (warehouse / "_staging").exists()
    assert list(warehouse.rglob("*.tmp")) == []
    assert [
        p for p in (warehouse / "events").rglob("*") if p.is_file() and p.suffix != ".parquet"
    ] == []


def test_sigkill_at_fixed_and_random_times_then_rerun(trail: Trail, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    rng = random.Random(20240301)
    times = [0.3, 0.6, 1.0, rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0)]
    kills = [run_and_kill(trail, warehouse, after) for after in times]
    assert any(k.mid_run for k in kills), kills
    complete_and_check(trail, warehouse, kills)


def test_sigkill_between_rename_and_manifest_then_rerun(trail: Trail, tmp_path: Path) -> None:
    """Kill as soon as a commit's first file is renamed into events/, before the manifest names its
    objects: the re-run reads those objects again and drops their rows as already present.

    The window is a few milliseconds (the manifest's write), caught by polling; on a loaded
    machine a run can end before the poll sees it. Each attempt then starts afresh, in a warehouse
    of its own, until one kill lands in the window."""
    for attempt in range(ATTEMPTS):
        warehouse = tmp_path / f"wh-{attempt}"
        kills = [run_and_kill(trail, warehouse, None, lambda ev, man: bool(ev) and not man)]
        if kills[-1].between_rename_and_manifest:
            break
    assert kills[-1].between_rename_and_manifest, kills
    # Then once right after a commit (between two commits of a run).
    kills.append(run_and_kill(trail, warehouse, None, lambda ev, man: bool(man)))
    complete_and_check(trail, warehouse, kills)


ATTEMPTS = 6


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.warehouse.lock import writer_lock
with writer_lock(Path(sys.argv[1]) / ".lock", "ingest"):
    print("locked", flush=True)
    time.sleep(120)
"""
LOCKED = re.compile(
    r"error: warehouse (?P<wh>\S+) is busy: ingest by pid (?P<pid>\d+) since "
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 "
    r"\(wait for it to finish; only one ingest or import runs at a time\)\n"
)


def test_second_ingest_is_refused_while_the_lock_is_held(trail: Trail, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        refused = run_cli(*ingest_args(trail, warehouse), cwd=tmp_path, env=env())
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout:
            holder.stdout.close()
    assert refused.returncode == 1
    assert refused.stdout == ""
    match = LOCKED.fullmatch(refused.stderr)
    assert match, refused.stderr
    assert (match["wh"], int(match["pid"])) == (str(warehouse), holder.pid)
    assert files_under(warehouse / "events", "*/*/*.parquet") == set()


def test_second_ingest_is_refused_while_one_runs(trail: Trail, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    first = start_cli(*ingest_args(trail, warehouse), cwd=tmp_path, env=env())
    try:
        lock = warehouse / ".lock"
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_text().startswith(f"ingest by pid {first.pid} ")):
            assert first.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.005)
        second = run_cli(*ingest_args(trail, warehouse), cwd=tmp_path, env=env())
        still_running = first.poll() is None
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            kill_group(first)
    assert still_running, "the first ingest ended before the second one asked for the lock"
    assert second.returncode == 1
    match = LOCKED.fullmatch(second.stderr)
    assert match, second.stderr
    assert int(match["pid"]) == first.pid
    # The first run, uninterrupted, is the reference the kill tests compare with.
    assert first.returncode == 0, err
    check_complete(trail, warehouse)
    entries = rows(warehouse, "SELECT sum(events_written) AS w, sum(duplicates) AS d FROM manifest")
    assert entries == [{"w": len(trail.kept), "d": 3 * (trail.files - 1)}]
    # The generated trail is large enough for several parse tasks, hence several commits.
    assert len(files_under(warehouse / "manifest", "*.parquet")) >= 2


def group_processes(pgid: int) -> list[int]:
    """The processes of a process group: the CLI and what it started (fork server, parse
    processes, multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue  # ended while we looked
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry.name))
    return found


def wait_for_parsing(process: subprocess.Popen[str], warehouse: Path) -> None:
    """Until the ingest has a parse process at work (the fork server and at least one child)."""
    deadline = time.monotonic() + 30
    while len(group_processes(process.pid)) < 4 or not (warehouse / "_staging").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no parse process started"
        time.sleep(0.005)


def wait_until_gone(pgid: int, seconds: float) -> list[int]:
    """The group's processes still alive after `seconds` (none, once they have all ended)."""
    deadline = time.monotonic() + seconds
    while (left := group_processes(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_parse_processes_end_when_their_ingest_is_killed(trail: Trail, tmp_path: Path) -> None:
    """SIGKILL of the ingest alone (the OOM killer picks one process): its parse processes, fork
    server and resource tracker must not wait for tasks forever, holding their memory."""
    warehouse = tmp_path / "wh"
    process = start_cli(*ingest_args(trail, warehouse), cwd=tmp_path, env=env())
    try:
        wait_for_parsing(process, warehouse)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        assert wait_until_gone(process.pid, 15) == []
    finally:
        kill_group(process)
    complete_and_check(trail, warehouse, [])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("sent", "code", "message"),
    [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGINT, 130, "interrupted"),
    ],
)
def test_sigterm_and_ctrl_c_unwind_then_rerun(
    trail: Trail, tmp_path: Path, sent: signal.Signals, code: int, message: str
) -> None:
    """A scheduler's timeout (SIGTERM to the ingest) or Ctrl-C (SIGINT to the whole foreground
    group): staged files removed, every process of the run ended, the lock free, one line that
    says what to do."""
    warehouse = tmp_path / "wh"
    process = start_cli(*ingest_args(trail, warehouse), cwd=tmp_path, env=env())
    try:
        wait_for_parsing(process, warehouse)
        if sent == signal.SIGINT:
            os.killpg(process.pid, sent)
        else:
            os.kill(process.pid, sent)
        _, err = process.communicate(timeout=60)
        assert process.returncode == code, err
        assert err.splitlines()[-1] == (
            f"{message}; re-run the same command to carry on (nothing is lost)"
        ), err
        assert not (warehouse / "_staging").exists()
        assert wait_until_gone(process.pid, 15) == []
    finally:
        kill_group(process)
    complete_and_check(trail, warehouse, [])


FILE_SIZE_LIMIT = 64 << 10  # bytes: below an events file of the trail, above the lock file


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_full_disk_stops_the_run_with_one_line_then_a_rerun_completes(
    trail: Trail, tmp_path: Path
) -> None:
    """A write the disk refuses (here a file-size limit, ulimit -f: a real EFBIG from the
    kernel, as ENOSPC from a full disk) stops the run with a message about the disk; no object
    is quarantined for it, so the re-run with room again reads every object and completes."""
    warehouse = tmp_path / "wh"
    limited = subprocess.run(
        [sys.executable, "-m", "pipeline", *ingest_args(trail, warehouse)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=_limit_file_size,
    )
    assert limited.returncode == 1, limited.stderr
    assert limited.stderr.splitlines()[-1] == (
        f"error: cannot write the warehouse {warehouse}: a file-size limit (ulimit -f) was "
        "reached (make room, then re-run the same command: nothing it committed is lost)"
    )
    complete_and_check(trail, warehouse, [])


# The warehouse whose manifest _parse_or_die waits for (set before the parse process forks).
_DIE_AFTER_COMMIT_IN: list[Path] = []


def _parse_or_die(task: ParseTask) -> TaskResult:
    """A parse task whose process the OOM killer picks when it starts on the second task, once
    the first task's objects are committed: killed sooner, the pool can break before the
    ingest process has read the first task's result, which is then lost with it (and read
    again by the re-run), so what the run committed would depend on timing."""
    if task.task_id == 1:
        deadline = time.monotonic() + 60
        while _DIE_AFTER_COMMIT_IN and time.monotonic() < deadline:
            if manifest.load_latest(_DIE_AFTER_COMMIT_IN[0] / "manifest"):
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task)


def test_a_parse_process_killed_ends_the_run_with_one_line_then_a_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parse process killed outright (the kernel's out-of-memory killer) broke the pool, and
    the run ended with "internal error: BrokenProcessPool ... (re-run with --debug)". It is one
    line saying what happened and what to do; what was committed before stays, and the re-run
    reads the rest."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a", "b", "c"):
        records = [
            {"eventID": f"{name}{i}", "eventTime": "2024-03-01T10:00:00Z",
             "recipientAccountId": "111122223333"}
            for i in range(2)
        ]  # fmt: skip
        (logs / f"{name}.json").write_text(json.dumps({"Records": records}))
    warehouse = tmp_path / "wh"
    monkeypatch.setattr(pipeline.ingest, "TASK_MAX_OBJECTS", 1)  # a task per object
    monkeypatch.setattr(pipeline.ingest, "run_task", _parse_or_die)
    monkeypatch.setattr(sys.modules[__name__], "_DIE_AFTER_COMMIT_IN", [warehouse])
    # Parse processes forked from this process, where run_task is the one above.
    monkeypatch.setattr(
        pipeline.ingest._Job,
        "_parse_processes",
        lambda self: ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")),
    )
    with pytest.raises(AgenttrailError) as caught:
        ingest([logs], warehouse, **{"ingest.commit_rows": 1})
    assert type(caught.value) is AgenttrailError
    assert caught.value.one_line() == (
        "a parse process died (killed, most likely by the out-of-memory killer): the objects"
        " it was parsing are not committed, and nothing committed before is lost (lower"
        " --workers (or [ingest] workers) or give the machine more memory, then re-run the"
        " same command to carry on: it reads only what is missing)"
    )
    assert isinstance(caught.value.__cause__, BrokenProcessPool)
    committed = manifest.load_latest(warehouse / "manifest")
    assert sorted(Path(uri).name for uri in committed) == ["a.json"]
    assert not (warehouse / "_staging").exists()
    monkeypatch.undo()
    rerun = ingest([logs], warehouse)
    assert (rerun.objects_unchanged, rerun.objects_read, rerun.events_written) == (1, 2, 4)
    assert rows(warehouse, "SELECT count(*) AS n FROM events_classified") == [{"n": 6}]


def _forked_parse_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse processes forked from this process, so they see what the test patched."""
    monkeypatch.setattr(
        pipeline.ingest._Job,
        "_parse_processes",
        lambda self: ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")),
    )


def _two_objects(logs: Path) -> None:
    logs.mkdir()
    for name in ("a", "big"):
        records = [
            {"eventID": f"{name}{i}", "eventTime": "2024-03-01T10:00:00Z",
             "recipientAccountId": "111122223333"}
            for i in range(2)
        ]  # fmt: skip
        (logs / f"{name}.json").write_text(json.dumps({"Records": records}))


OUT_OF_MEMORY_HINT = (
    " (lower --workers (or [ingest] workers) or [ingest] stream_threshold_mb, or give the"
    " machine more memory, then re-run the same command to carry on)"
)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(MemoryError, id="MemoryError"),
        pytest.param(pa.lib.ArrowMemoryError, id="ArrowMemoryError"),
    ],
)
def test_running_out_of_memory_while_parsing_stops_the_run_and_quarantines_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[MemoryError]
) -> None:
    """A MemoryError while parsing an object (malloc failing under `ulimit -v` or strict
    overcommit) quarantined it as "cannot parse: MemoryError", and every later run skipped it
    as unchanged. It stops the run with one line, as a full disk does; nothing records the
    object, so the next run, with memory to spare, reads it."""
    logs = tmp_path / "logs"
    _two_objects(logs)
    warehouse = tmp_path / "wh"
    tables = pipeline.ingest_task.ObjectParser.tables

    def short_of_memory(self: Any, source: Any) -> Any:
        if self.source_uri.endswith("big.json"):
            raise error()
        return tables(self, source)

    monkeypatch.setattr(pipeline.ingest_task.ObjectParser, "tables", short_of_memory)
    _forked_parse_processes(monkeypatch)
    with pytest.raises(OutOfMemoryError) as caught:
        ingest([logs], warehouse)
    assert caught.value.one_line() == (
        f"out of memory while parsing {logs / 'big.json'}: the objects not committed yet are"
        " read again by the next run, and nothing committed before is lost" + OUT_OF_MEMORY_HINT
    )
    assert caught.value.exit_code == 1
    assert str(logs / "big.json") not in manifest.load_latest(warehouse / "manifest")
    assert not (warehouse / "_staging").exists()

    monkeypatch.undo()
    rerun = ingest([logs], warehouse)
    assert (rerun.objects_quarantined, rerun.quarantine, int(rerun.exit_code)) == (0, [], 0)
    assert sorted(r["event_id"] for r in rows(warehouse, "SELECT event_id FROM events")) == [
        "a0",
        "a1",
        "big0",
        "big1",
    ]


def test_running_out_of_memory_in_the_ingest_process_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MemoryError in the ingest process itself (here a digest's body, decompressed there)
    ends the run with the same line, not "internal error: MemoryError"; the re-run records
    the digest."""
    logs = tmp_path / "logs"
    _two_objects(logs)
    digest = (
        logs / "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01"
        / "111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T100000Z.json.gz"
    )  # fmt: skip
    digest.parent.mkdir(parents=True)
    digest.write_bytes(gzip.compress(b'{"logFiles": []}'))
    warehouse = tmp_path / "wh"

    def short_of_memory(data: bytes) -> bytes:
        raise MemoryError

    monkeypatch.setattr(pipeline.ingest, "decompress", short_of_memory)
    with pytest.raises(OutOfMemoryError) as caught:
        ingest([logs], warehouse)
    assert caught.value.one_line() == (
        "out of memory while ingesting: the objects not committed yet are read again by the"
        " next run, and nothing committed before is lost" + OUT_OF_MEMORY_HINT
    )
    monkeypatch.undo()
    rerun = ingest([logs], warehouse)
    assert (rerun.digests_recorded, rerun.objects_quarantined, rerun.events_written) == (1, 0, 4)
