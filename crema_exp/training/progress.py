"""Live progress within an epoch: a tqdm bar on a terminal, a log line at most every 30 s elsewhere.

An epoch on full CREMA-D takes minutes on a CPU; without this, a log file (or a SLURM output) shows
nothing between "clips: train ..." and the end of the first epoch.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta
from typing import Callable, TextIO

from tqdm import tqdm

log = logging.getLogger(__name__)


class EpochProgress:
    """Counts the clips and batches of one training epoch and shows how far it is.

    ``stream`` decides the form: a terminal gets a bar (batches, clips/s, ETA; redrawn at most every
    min(interval_s, 0.5) s and removed at the end, so the end-of-epoch log line stays alone);
    anything else gets a log line once ``interval_s`` has passed since the last one.
    """

    def __init__(self, epoch: int, batches: int, clips: int, interval_s: float = 30.0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        stream = stream if stream is not None else sys.stderr
        self.epoch, self.batches, self.clips = epoch, batches, clips
        self.interval_s, self.clock = interval_s, clock
        self.started = self.last_line = clock()
        self.batch = self.seen = 0
        self.bar = None
        if stream.isatty():
            self.bar = tqdm(total=clips, unit="clip", desc=f"epoch {epoch}", file=stream,
                            leave=False, dynamic_ncols=True, mininterval=min(interval_s, 0.5))

    def update(self, clips: int) -> None:
        """One more batch of ``clips`` clips done."""
        self.batch += 1
        self.seen += clips
        if self.bar is not None:
            self.bar.set_postfix_str(f"batch {self.batch}/{self.batches}", refresh=False)
            self.bar.update(clips)
            return
        now = self.clock()
        if now - self.last_line >= self.interval_s:
            self.last_line = now
            rate = self.seen / max(now - self.started, 1e-9)
            eta = timedelta(seconds=round((self.clips - self.seen) / rate)) if rate > 0 else "?"
            log.info("epoch %d: batch %d/%d, %d/%d clips, %.1f clips/s, ETA %s", self.epoch,
                     self.batch, self.batches, self.seen, self.clips, rate, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
