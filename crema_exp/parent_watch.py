"""Worker processes that die with their parent.

A pool worker outliving a SIGKILLed parent (the OOM killer, `kill -9`) keeps running for nothing
and keeps whatever the parent's descriptors held (a build lock) alive. On Linux the kernel kills
the worker when its parent dies (PR_SET_PDEATHSIG; strictly, when the parent thread that forked
it ends, so pools are made from the job's main thread); elsewhere a daemon thread watches the
parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a forked worker: it is killed as soon as ``parent_pid`` exits."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            _watch_parent(parent_pid)
    else:
        _watch_parent(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
