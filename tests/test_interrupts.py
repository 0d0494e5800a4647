"""uninterrupted(): a signal turned into an exception (as the CLI does) waits for the block's
end, so that no parse process is left half-started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import pytest

from pipeline.interrupts import raise_now_or_later, uninterrupted


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
