"""The corpus scan's measurements (duration, peak, or why a file is unreadable), cached per file.

Decoding 7,442 clips takes seconds; a file whose (path, size, mtime) is unchanged keeps its cached
measurement, so an unchanged corpus re-scans with one stat per file. The checks that depend on the
config (data.min_duration, silence) are applied to the measurements afresh on every scan. The cache
is one JSON file per corpus folder under ``<paths.cache_dir>/scan/``; a damaged one is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crema_exp.atomic import write_json_atomic
from crema_exp.data.audio import AudioError, ClipInfo, measure_clip

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what a measurement holds changes
# Decoding is I/O plus C code that releases the GIL: threads keep a 2-core machine busy.
_READ_THREADS = min(8, 2 * (os.cpu_count() or 1))

Measurement = ClipInfo | AudioError


def cache_file(cache_dir: str | os.PathLike, corpus_root: Path) -> Path:
    """Where the scan of ``corpus_root`` is cached."""
    digest = hashlib.sha256(str(Path(corpus_root).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / "scan" / f"{digest}.json"


def measure_all(paths: list[str | os.PathLike], cache: Path | None) -> list[Measurement]:
    """ClipInfo or AudioError per path, decoding only files that are new or changed."""
    known = _load(cache) if cache is not None else {}
    keys = [str(path) for path in paths]
    entries, todo = {}, []
    for key in keys:
        try:
            st = os.stat(key)
            stamp = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp = None  # measure_clip reports why it cannot be opened
        entry = known.get(key)
        if stamp is not None and entry is not None and entry["stamp"] == stamp:
            entries[key] = entry
        else:
            todo.append((key, stamp))
    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        for (key, stamp), entry in zip(todo, pool.map(_measure, [k for k, _ in todo])):
            entries[key] = {**entry, "stamp": stamp}
    if cache is not None and todo:
        write_json_atomic(cache, {"format": FORMAT, "clips": {
            k: e for k, e in entries.items() if e["stamp"] is not None}})
        log.info("Scanned %d new or changed clip(s); %d from the scan cache %s",
                 len(todo), len(paths) - len(todo), cache)
    return [_measurement(key, entries[key]) for key in keys]


def _measure(path: str) -> dict:
    try:
        info = measure_clip(path)
    except AudioError as exc:
        return {"error": exc.reason}
    return {"duration": info.duration, "sample_rate": info.sample_rate,
            "channels": info.channels, "peak": info.peak}


def _measurement(path: str, entry: dict) -> Measurement:
    if "error" in entry:
        return AudioError(path, entry["error"])
    return ClipInfo(duration=entry["duration"], sample_rate=entry["sample_rate"],
                    channels=entry["channels"], peak=entry["peak"])


def _load(cache: Path) -> dict[str, dict]:
    try:
        content = json.loads(cache.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable scan cache %s (%s)", cache, exc)
        return {}
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        return {}
    return content.get("clips", {})
