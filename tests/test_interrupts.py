"""uninterrupted(): a signal turned into an exception (as the CLI does) waits for the block's
end, so that no parse process is left half-started, and no pool's shutdown is cut short; parse
processes let Ctrl-C pass, from their start."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import pytest

from pipeline.interrupts import raise_now_or_later, uninterrupted
from pipeline.parse_processes import shut_down_at_end


class Stop(BaseException):
    pass


def test_outside_a_block_the_exception_is_raised_at_once() -> None:
    with pytest.raises(Stop):
        raise_now_or_later(Stop())


def _nested(done: list[str]) -> None:
    with uninterrupted():
        with uninterrupted():
            raise_now_or_later(Stop("first"))
            raise_now_or_later(Stop("second"))  # the same request again: ignored
            done.append("inner")
        done.append("outer")


def test_inside_a_block_it_waits_for_the_outer_end() -> None:
    done: list[str] = []
    with pytest.raises(Stop) as raised:
        _nested(done)
    assert done == ["inner", "outer"]
    assert str(raised.value) == "first"
    with uninterrupted():  # nothing left pending afterwards
        done.append("again")
    assert done == ["inner", "outer", "again"]


def _signalled(done: list[str]) -> None:
    with uninterrupted():
        os.kill(os.getpid(), signal.SIGUSR1)
        signal.getsignal(signal.SIGUSR1)  # a Python step: the handler has run by now
        done.append("finished")


def test_a_real_signal_in_a_block() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise_now_or_later(Stop(signal.Signals(signum).name))

    previous = signal.signal(signal.SIGUSR1, handler)
    done: list[str] = []
    try:
        with pytest.raises(Stop, match="SIGUSR1"):
            _signalled(done)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert done == ["finished"]


def _failing() -> None:
    with uninterrupted():
        raise_now_or_later(Stop())
        raise ValueError("while stopping")


def test_the_blocks_own_error_gives_way_to_the_signal() -> None:
    with pytest.raises(Stop) as raised:
        _failing()
    assert isinstance(raised.value.__context__, ValueError)


PARSE_PROCESS_CTRL_C = """
import os, signal
from pipeline.ingest_task import init_worker

init_worker()
os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the whole process group
signal.getsignal(signal.SIGINT)  # a Python step: a handler would have run by now
print("parsing on")
"""


def test_a_parse_process_lets_ctrl_c_pass() -> None:
    """Ctrl-C reaches the parse processes too, where KeyboardInterrupt printed a traceback
    ("Process ForkServerProcess-1: ... KeyboardInterrupt") under the ingest's "interrupted"
    line: the ingest stops them itself."""
    done = subprocess.run(
        [sys.executable, "-c", PARSE_PROCESS_CTRL_C],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "parsing on\n", "")


def _second_signal_in_the_shutdown(pool: Executor) -> None:
    """The run's body stops on a first signal (Stop("first")); a second one comes 0.1 s later,
    while the pool's shutdown waits for its running task (1 s)."""
    with shut_down_at_end(pool):
        pool.submit(time.sleep, 1.0)
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        raise Stop("first")


def test_a_second_signal_does_not_cut_the_pools_shutdown_short() -> None:
    """An exception raised by a second signal in the shutdown's Thread.join cut it short and
    left the pool's thread marked as ended (Python 3.11): the parse processes were never told
    to stop and the exit waited for them until the CLI's grace ended it. The shutdown now ends
    first, then the second signal raises."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise_now_or_later(Stop(signal.Signals(signum).name))  # as the CLI's handler does

    previous = signal.signal(signal.SIGUSR1, handler)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        with pytest.raises(Stop) as raised:
            _second_signal_in_the_shutdown(pool)
        # The shutdown finished (its process ended, its thread joined), then the second
        # signal raised, over the first.
        assert (multiprocessing.active_children(), pool._executor_manager_thread) == ([], None)
        assert (str(raised.value), str(raised.value.__context__)) == ("SIGUSR1", "first")
    finally:
        signal.signal(signal.SIGUSR1, previous)
        pool.shutdown(wait=True, cancel_futures=True)


def test_the_pool_is_shut_down_at_the_end_of_a_block_that_ends_well() -> None:
    with ThreadPoolExecutor(1) as pool, shut_down_at_end(pool):
        future = pool.submit(time.sleep, 0.05)
    assert future.done()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(time.sleep, 0)


# A probe for the parse processes' start (a module, so that a process forked by the fork
# server can import it): Ctrl-C reaches a parse process before init_worker has ignored it.
PROBE = """
import os
import signal

from pipeline.ingest_task import init_worker


def ctrl_c_then_init():
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C to the group, before init_worker
    signal.getsignal(signal.SIGINT)  # a Python step: a handler would have run by now
    init_worker()


def state():
    return (
        signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []),
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
    )
"""

PARSE_PROCESS_STARTS_BLOCKED = """
import multiprocessing, signal, sys
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, sys.argv[1])
import probe
from pipeline.parse_processes import CONTEXT, start_parse_server, stop_parse_server

start_parse_server()
# Blocked only while the server starts: this process takes Ctrl-C as before.
print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
context = multiprocessing.get_context(CONTEXT)
with ProcessPoolExecutor(1, mp_context=context, initializer=probe.ctrl_c_then_init) as pool:
    print(pool.submit(probe.state).result())  # (SIGINT blocked, SIGINT ignored)
with ProcessPoolExecutor(1, mp_context=context) as pool:  # no initializer: as it starts
    print(pool.submit(probe.state).result())
stop_parse_server()
"""


def test_a_parse_process_starts_with_ctrl_c_blocked(tmp_path: Path) -> None:
    """The fork server restores Python's SIGINT handler in each process it forks: a Ctrl-C
    before init_worker ignores it printed a KeyboardInterrupt traceback. The fork server starts
    with SIGINT blocked, so a parse process starts so too; such a Ctrl-C waits, is discarded
    when init_worker ignores SIGINT, and init_worker unblocks it."""
    (tmp_path / "probe.py").write_text(PROBE)
    done = subprocess.run(
        [sys.executable, "-c", PARSE_PROCESS_STARTS_BLOCKED, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "False\n(False, True)\n(True, False)\n",
        "",
    )
