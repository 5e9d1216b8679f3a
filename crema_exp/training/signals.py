"""SIGTERM and SIGINT as an exception, so that a job stopped by SLURM, a preemption or Ctrl-C
records why it ended (status.json "interrupted", its Optuna trial failed) instead of vanishing."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

HANDLED = (signal.SIGTERM, signal.SIGINT)


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
        raise JobInterrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
