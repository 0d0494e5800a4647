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
from multiprocessing import forkserver

from pipeline.interrupts import uninterrupted

CONTEXT = "forkserver"
PRELOAD = ["__main__", "pipeline.ingest_task"]


def start_parse_server() -> None:
    """Start the fork server (if it is not running) with the parse modules preloaded; it goes
    on importing them in its own process while the caller carries on."""
    multiprocessing.get_context(CONTEXT).set_forkserver_preload(PRELOAD)
    # A signal must not cut the server's start in half (pipeline/interrupts.py).
    with uninterrupted():
        forkserver.ensure_running()


def stop_parse_server() -> None:
    """Stop the fork server: it holds the parse modules (~70 MB) and would idle through the
    attribution rebuild. The next ingest in this process starts it again. `_stop` is the
    standard library's own way to stop it (used by its tests), absent on other versions."""
    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()
