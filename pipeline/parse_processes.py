"""The fork server the parse processes start from, started early and with the parse modules
already imported.

Parse processes come from multiprocessing's fork server. By default it imports only the
program's `__main__`, and each parse process then imports the parse stage itself (pyarrow,
msgspec, isal: ~0.15 s) before its first object. Started here, first thing in an ingest, the
server imports `pipeline.ingest_task` while the ingest process is still importing its own
modules and listing its sources; the parse processes are then forked ready to work.

This module imports nothing heavy, so that the CLI can call it before anything else.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import forkserver, resource_tracker
from typing import TYPE_CHECKING, TypeVar

from pipeline.interrupts import uninterrupted

if TYPE_CHECKING:
    from concurrent.futures import Executor

CONTEXT = "forkserver"
PRELOAD = ["__main__", "pipeline.ingest_task"]


def start_parse_server() -> None:
    """Start the fork server (if it is not running) with the parse modules preloaded; it goes
    on importing them in its own process while the caller carries on.

    The server starts with SIGINT blocked, and so does every parse process it forks (a blocked
    signal stays blocked across fork and exec). Ctrl-C reaches the whole process group: the
    server ignores SIGINT once its preload is done, but each process it forks restores Python's
    handler first, so a Ctrl-C before the process's initializer (ingest_task.init_worker)
    ignored SIGINT printed a KeyboardInterrupt traceback under the ingest's "interrupted" line;
    so did one during the server's own preload. Blocked, a Ctrl-C waits, and is discarded when
    SIGINT is ignored; init_worker then unblocks it."""
    multiprocessing.get_context(CONTEXT).set_forkserver_preload(PRELOAD)
    # A signal must not cut the server's start in half (pipeline/interrupts.py).
    with uninterrupted():
        # The resource tracker first (the fork server's start starts it otherwise): its start
        # blocks SIGINT for its own process and then unblocks it in this thread, which would
        # undo the block below.
        resource_tracker.ensure_running()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            # A Ctrl-C received meanwhile is delivered here, and raises at the block's end.
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_parse_server() -> None:
    """Stop the fork server: it holds the parse modules (~70 MB) and would idle through the
    attribution rebuild. The next ingest in this process starts it again. `_stop` is the
    standard library's own way to stop it (used by its tests), absent on other versions."""
    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()


_E = TypeVar("_E", bound="Executor")


@contextmanager
def shut_down_at_end(executor: _E) -> Iterator[_E]:
    """`executor` (the parse processes' pool, the download threads), shut down at the block's
    end all the way, whatever signal comes meanwhile.

    The shutdown waits for the pool's threads (Thread.join). A signal's exception raised in
    that wait (a second Ctrl-C or SIGTERM while the first unwinds the run) cut it short and, in
    Python 3.11 (threading's _wait_for_tstate_lock, its bpo-45274 branch), left the thread
    marked as ended while it ran on: nothing waited for it any more. For the process pool that
    stranded the parse processes: Python's exit closed their task queue first (a
    multiprocessing finalizer), so the stop sentinels the pool's thread sent afterwards never
    reached them, and the exit waited for them until the CLI's grace ended the process (10 s).
    The files their last tasks staged after the run had removed _staging/ stayed.

    So the shutdown runs uninterrupted (pipeline/interrupts.py): a signal received meanwhile
    raises once it is complete. Leaving the block on an exception (a signal, an error), the
    tasks not yet handed to a parse process are cancelled: the shutdown waits only for those
    handed over (one more than the processes), whose output the run discards."""
    try:
        yield executor
    except BaseException:
        with uninterrupted():
            executor.shutdown(wait=True, cancel_futures=True)
        raise
    with uninterrupted():
        executor.shutdown(wait=True)
