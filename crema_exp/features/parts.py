"""Extraction in chunks: each chunk of clips becomes one atomically written part file.

A chunk is the unit of resumption (an interrupted build redoes only unfinished chunks) and of
parallelism (one process-pool task, or one ``extract_many`` call in this process). Chunks cover
the whole corpus: which split a clip lands in is not the store's business (see views.py).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from crema_exp.atomic import atomic_write
from crema_exp.data import AudioError, load_audio
from crema_exp.features.store import StoreError
from crema_exp.features.frames import stored_frames
from crema_exp.features.store_lock import close_inherited_locks
from crema_exp.parent_watch import die_with_parent

# A chunk (one part file, one pool task) ends at whichever limit comes first: small enough to lose
# little work on interruption and to balance the pool, large enough to keep the part count low.
CHUNK_MAX_CLIPS = 64
CHUNK_MAX_SECONDS = 240.0


@dataclass(frozen=True)
class Chunk:
    """Clips extracted together and written to one part file."""

    number: int
    clip_ids: tuple[str, ...]
    paths: tuple[str, ...]

    @property
    def part_name(self) -> str:
        return f"part-{self.number:05d}.npz"


def plan_chunks(manifest: pd.DataFrame) -> list[Chunk]:
    """Cut the corpus into chunks, clips in (duration, clip_id) order.

    Deterministic, and it puts clips of equal length in the same chunk, which the SSL extractor
    batches into one forward pass.
    """
    chunks: list[Chunk] = []
    ids: list[str] = []
    paths: list[str] = []
    seconds = 0.0
    for clip in manifest.sort_values(["duration", "clip_id"]).itertuples(index=False):
        if ids and (len(ids) >= CHUNK_MAX_CLIPS or seconds + clip.duration > CHUNK_MAX_SECONDS):
            chunks.append(Chunk(len(chunks), tuple(ids), tuple(paths)))
            ids, paths, seconds = [], [], 0.0
        ids.append(clip.clip_id)
        paths.append(clip.path)
        seconds += clip.duration
    if ids:
        chunks.append(Chunk(len(chunks), tuple(ids), tuple(paths)))
    return chunks


_WORKER_EXTRACTOR = None


def _init_worker(extractor, parent_pid: int) -> None:
    """Pool initializer: die with the parent, drop its build lock, one extractor, one thread."""
    global _WORKER_EXTRACTOR
    die_with_parent(parent_pid)
    close_inherited_locks()
    torch.set_num_threads(1)
    _WORKER_EXTRACTOR = extractor


def _worker_extract_chunk(chunk: Chunk, parts_dir: Path, sample_rate: int) -> int:
    return extract_chunk(_WORKER_EXTRACTOR, chunk, parts_dir, sample_rate)


def extract_in_pool(extractor, pending: list[Chunk], parts_dir: Path, sample_rate: int,
                     workers: int, on_clips: Callable[[int], None]) -> None:
    """Extraction over chunks: in this process for one worker, else a process pool."""
    workers = min(workers, len(pending))
    if workers <= 1:
        for chunk in pending:
            on_clips(extract_chunk(extractor, chunk, parts_dir, sample_rate))
        return
    # fork on Linux (workers start fast and inherit the extractor), spawn elsewhere; never a
    # forkserver, whose workers are not our children and could not die with us.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(extractor, os.getpid()))
    try:
        futures = [pool.submit(_worker_extract_chunk, c, parts_dir, sample_rate) for c in pending]
        for future in as_completed(futures):
            on_clips(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def extract_chunk(extractor, chunk: Chunk, parts_dir: Path, sample_rate: int) -> int:
    """Load, extract and write one chunk as a part file; returns the number of clips handled.

    Clips whose audio fails to load, that the extractor rejects, or whose features are empty or
    not finite in float16 are recorded in the part as skipped. The whole chunk goes to one
    ``extract_many`` call (SSL: equal-length clips share forward passes).
    """
    streams = list(extractor.streams)
    skipped: list[tuple[str, str]] = []
    loaded: list[tuple[str, str, np.ndarray]] = []
    for clip_id, path in zip(chunk.clip_ids, chunk.paths):
        try:
            loaded.append((clip_id, path, load_audio(path, sample_rate=sample_rate)))
        except AudioError as exc:
            skipped.append((path, f"audio: {exc.reason}"))
    outputs = _extract_all(extractor, [wave for _, _, wave in loaded])
    done: list[tuple[str, dict[str, np.ndarray]]] = []
    for (clip_id, path, _), out in zip(loaded, outputs, strict=True):
        arrays, problem = (None, out) if isinstance(out, str) else _stored_arrays(out, streams)
        if problem:
            skipped.append((path, f"features: {problem}"))
        else:
            done.append((clip_id, arrays))
    _write_part(parts_dir / chunk.part_name, chunk, done, skipped, streams)
    return len(chunk.clip_ids)


def _extract_all(extractor, waves: list[np.ndarray]) -> list[dict | str]:
    """Features per wave, or the message of the ValueError the extractor raised for that wave."""
    if waves:
        try:
            return extractor.extract_many(waves)
        except ValueError:
            pass  # some clip is unusable: redo one by one to find it and keep the others
    results: list[dict | str] = []
    for wave in waves:
        try:
            out = extractor.extract_many([wave])[0]
        except ValueError as exc:
            out = str(exc)
        results.append(out)
    return results


def _stored_arrays(out: dict[str, np.ndarray], streams: list[str]):
    """float16 copies of one clip's streams, or (None, reason) when the clip cannot be stored."""
    if sorted(out) != sorted(streams):
        raise StoreError(f"extractor returned streams {sorted(out)}, expected {sorted(streams)}")
    lengths = {s: np.shape(a)[0] for s, a in out.items()}
    if any(np.ndim(a) != 2 for a in out.values()) or len(set(lengths.values())) != 1:
        shapes = {s: np.shape(a) for s, a in out.items()}
        raise StoreError(f"extractor must return [frames, dim] arrays of one length, got {shapes}")
    try:
        return {s: stored_frames(out[s], s) for s in streams}, None
    except ValueError as exc:
        return None, str(exc)


def _write_part(path: Path, chunk: Chunk, done, skipped, streams: list[str]) -> None:
    arrays = {
        "chunk": np.array(chunk.clip_ids, dtype=str),
        "clip_id": np.array([clip_id for clip_id, _ in done], dtype=str),
        "length": np.array([len(a[streams[0]]) for _, a in done], dtype=np.int64),
        "skipped_path": np.array([p for p, _ in skipped], dtype=str),
        "skipped_reason": np.array([r for _, r in skipped], dtype=str),
    }
    for stream in streams:
        arrays[f"stream.{stream}"] = (
            np.concatenate([a[stream] for _, a in done]) if done else np.zeros((0, 0), np.float16)
        )
    with atomic_write(path, size_hint=sum(a.nbytes for a in arrays.values())) as f:
        np.savez(f, **arrays)


def part_is_complete(path: Path, chunk: Chunk) -> bool:
    """A finished part for exactly this chunk's clips (anything else is redone)."""
    if not path.is_file():
        return False
    try:
        with np.load(path) as part:
            return tuple(part["chunk"].tolist()) == chunk.clip_ids
    except (OSError, ValueError, KeyError):
        return False
