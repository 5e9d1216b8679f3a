"""A background thread that calls ``beat`` every few seconds while a job runs.

The train job uses it to refresh status.json's heartbeat (so compare can tell a dead "running" run,
"stale", from a live one) and its Optuna trial's heartbeat (so a dead job's trial is failed and
retried even when the sweep process that launched it is gone too).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def beating(beat: Callable[[], None], interval_s: float) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                beat()
            except Exception as exc:  # a full disk or lost database must not kill the job
                log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)

    thread = threading.Thread(target=loop, name="job-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
