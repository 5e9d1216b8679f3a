"""A sampler seed per sweep worker, so that workers on one study do not propose the same settings.

The worker that creates the study uses the configured seed unchanged (a single sweep stays
reproducible); every other worker (started together, later, or resuming) derives its seed from the
configured one and its identity (host, pid, start time). The identity and the seed are written to
each trial's optuna.json.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class WorkerIdentity:
    host: str
    pid: int
    started: float  # time.time() when the sweep process started its study

    @classmethod
    def current(cls) -> "WorkerIdentity":
        return cls(host=socket.gethostname(), pid=os.getpid(), started=round(time.time(), 6))

    def as_dict(self) -> dict:
        return asdict(self)


def worker_seed(configured: int | None, identity: WorkerIdentity, created_study: bool) -> int | None:
    """``configured`` for the study's creator (or None = unseeded); a derived 32-bit seed otherwise."""
    if configured is None or created_study:
        return configured
    text = f"{configured}:{identity.host}:{identity.pid}:{identity.started}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
