"""Blocks of code that a signal must not cut in the middle, and the signal raised after them.

The CLI turns SIGTERM and Ctrl-C into exceptions raised in the main thread (cli.py), so that a
command unwinds: staged files removed, parse processes stopped, locks freed. An exception raised
in the middle of starting a parse process leaves that process half-born: forked by the fork
server, but not yet known to the pool, so nothing waits for it; the ingest then exits, its
semaphores are unlinked, and the child, still reading its start-up data, prints a traceback
after the "terminated" line. Inside `uninterrupted()`, the exception waits for the block's end.

This module imports nothing heavy: the CLI's signal handler uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Blocks:
    depth: int = 0  # uninterrupted blocks the main thread is in
    pending: list[BaseException] = field(default_factory=list)  # raised at the outer end


_blocks = _Blocks()


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Signals delivered inside the block (see raise_now_or_later) raise at its end."""
    _blocks.depth += 1
    try:
        yield
    finally:
        _blocks.depth -= 1
        if _blocks.depth == 0 and _blocks.pending:
            exc = _blocks.pending.pop(0)
            _blocks.pending.clear()
            raise exc


def raise_now_or_later(exc: BaseException) -> None:
    """Raise `exc` now, or at the end of the current uninterrupted block (the first of several
    wins: the later ones are the same request, repeated)."""
    if _blocks.depth == 0:
        raise exc
    if not _blocks.pending:
        _blocks.pending.append(exc)
