"""The status compare shows for a run: status.json's, except that a "running" run whose heartbeat
is older than its ``stale_after_s`` is "stale" (its job died without a word: SIGKILL, OOM, lost node)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def effective_status(status: dict[str, Any], now: dt.datetime | None = None) -> str:
    state = status.get("status", "unknown")
    beat, grace = status.get("heartbeat"), status.get("stale_after_s")
    if state != "running" or not beat or grace is None:
        return state
    try:
        last = dt.datetime.fromisoformat(beat)
    except (TypeError, ValueError):
        return state
    now = now or dt.datetime.now(dt.timezone.utc)
    return "stale" if (now - last).total_seconds() > float(grace) else state
