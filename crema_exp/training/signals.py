"""SIGTERM and SIGINT as an exception, so that a job stopped by SLURM, a preemption or Ctrl-C
records why it ended (status.json "interrupted", its Optuna trial failed) instead of vanishing.

The exception comes from a signal handler, so it can land anywhere in the main thread; within
``signals_deferred()`` (a database write to the study) it waits for the block's end, since one
cut in half can leave the storage locked and the job hung while it records the interruption."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

HANDLED = (signal.SIGTERM, signal.SIGINT)

_deferring = False  # inside signals_deferred() (main thread)
_pending: list[int] = []  # signals that arrived meanwhile


class JobInterrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT raise JobInterrupted (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame) -> None:
        if _deferring:
            _pending.append(signum)
        else:
            raise JobInterrupted(signum)

    _pending.clear()
    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT are held back; the first one raises JobInterrupted as the
    block ends (without signals_raise() around it, they act as they would anyway)."""
    global _deferring
    if _deferring or threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _pending:
        raise JobInterrupted(_pending[0])
