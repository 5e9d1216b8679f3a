"""`python -m crema_exp.precompute` that stops at a chosen moment, for SIGKILL tests.

    python tests/_store_child.py <moment> <marker-dir> <hydra overrides...>

The real entry point runs with chunks of 3 clips; at ``moment`` it writes ``<marker-dir>/<moment>``
and sleeps until it is killed:
  extract      every finished chunk (parent or pool worker) appends its pid to workers.log and
               sleeps 0.5 s, so workers are busy when the test kills the parent
  consolidate  after the first array of the consolidation is in place
  metadata     after every data file is written, before metadata.json marks the store complete
  none         runs through
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path

from crema_exp.features import consolidate, parts, precompute

moment, markers = sys.argv[1], Path(sys.argv[2])
parts.CHUNK_MAX_CLIPS = 3


def pause_at(name: str) -> None:
    (markers / name).touch()
    time.sleep(600)


if moment == "extract":
    original_chunk = parts.extract_chunk

    def slow_chunk(*args, **kwargs):
        handled = original_chunk(*args, **kwargs)
        with open(markers / "workers.log", "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return handled

    parts.extract_chunk = slow_chunk
elif moment == "consolidate":
    original_stream = consolidate._write_stream

    def stream_then_pause(*args, **kwargs):
        original_stream(*args, **kwargs)
        pause_at("consolidate")

    consolidate._write_stream = stream_then_pause
elif moment == "metadata":
    original_record = precompute.record_files

    def record_then_pause(root):
        files = original_record(root)
        pause_at("metadata")
        return files

    precompute.record_files = record_then_pause

sys.argv = [sys.argv[0], *sys.argv[3:]]
runpy.run_module("crema_exp.precompute", run_name="__main__")  # as `python -m`: Hydra finds conf/
