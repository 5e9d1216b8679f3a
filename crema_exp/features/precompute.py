"""Build (or reuse, or resume) the feature store for a data + features config.

The store directory is named by a hash of everything that changes its content (corpus files and
splits, feature settings, model weights, FORMAT_VERSION), so a changed config can never read stale
features. Extraction runs in chunks of clips; each finished chunk is an atomically written part
file, so an interrupted build resumes where it stopped. Parts are then streamed into one contiguous
float16 array per split and stream, normalisation statistics are taken from the train split, and
metadata.json is written last to mark the store complete. A file lock lets parallel sweep trials
(also on several machines sharing the cache) ask for the same store: one builds, the others wait
and reuse it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from crema_exp.config import EMOTIONS
from crema_exp.data import AudioError, load_audio, load_corpus, save_splits, write_skipped
from crema_exp.features.normalisation import RunningMoments, save_normalisation
from crema_exp.features.recommendations import recommended_settings
from crema_exp.atomic import (
    atomic_write,
    remove_temp_files,
    temp_path,
    write_csv_atomic,
    write_json_atomic,
)
from crema_exp.features.store import (
    INDEX,
    INDEX_COLUMNS,
    MANIFEST,
    METADATA,
    NORMALISATION,
    PARTS,
    SKIPPED,
    SPLITS,
    FeatureStore,
    StoreError,
)

log = logging.getLogger(__name__)

# Bump when the on-disk layout or the meaning of stored values changes: old stores get a new key.
FORMAT_VERSION = 1
SPLIT_ORDER = ("train", "validation", "test")
# A chunk (one part file, one pool task) ends at whichever limit comes first: small enough to lose
# little work on interruption and to balance the pool, large enough to keep the part count low.
CHUNK_MAX_CLIPS = 64
CHUNK_MAX_SECONDS = 240.0


@dataclass(frozen=True)
class Chunk:
    """Clips of one split extracted together and written to one part file."""

    number: int
    split: str
    clip_ids: tuple[str, ...]
    paths: tuple[str, ...]

    @property
    def part_name(self) -> str:
        return f"part-{self.number:05d}.npz"


# ---------------------------------------------------------------------------- key and extractor


def make_extractor(features_cfg: DictConfig):
    """The extractor for ``features.kind`` (building the SSL one loads its weights)."""
    if features_cfg.kind == "ssl":
        from crema_exp.features.ssl import SSLExtractor

        return SSLExtractor(features_cfg)
    from crema_exp.features.spectral import SpectralExtractor

    return SpectralExtractor(features_cfg)


def extractor_identity(features_cfg: DictConfig, extractor) -> dict[str, Any]:
    """The feature settings that change stored values (not ssl_layer, num_workers or device)."""
    if features_cfg.kind == "ssl":
        ssl = features_cfg.ssl
        return {
            "model": ssl.model,
            "weights": extractor.weights_identity,
            "layers": OmegaConf.to_container(ssl.layers) if ssl.layers is not None else None,
            "dtype": ssl.dtype,
            "arch_overrides": OmegaConf.to_container(ssl.arch_overrides, resolve=True),
        }
    return extractor.identity()


def corpus_fingerprint(manifest: pd.DataFrame) -> list[list[Any]]:
    """Per clip: id, file size, mtime_ns, split and emotion (a touched or moved clip changes it)."""
    rows = []
    for clip in manifest.sort_values("clip_id").itertuples(index=False):
        try:
            st = os.stat(clip.path)
        except OSError as exc:
            raise StoreError(f"{clip.path}: cannot stat corpus file ({exc.strerror})") from exc
        rows.append([clip.clip_id, st.st_size, st.st_mtime_ns, clip.split, clip.emotion])
    return rows


def store_key(manifest: pd.DataFrame, features_cfg: DictConfig, extractor) -> str:
    """sha256 hex digest over corpus content, feature identity and FORMAT_VERSION."""
    content = {
        "format_version": FORMAT_VERSION,
        "kind": features_cfg.kind,
        "sample_rate": features_cfg.sample_rate,
        "extractor": extractor_identity(features_cfg, extractor),
        "corpus": corpus_fingerprint(manifest),
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------- entry point


def ensure_store(cfg: DictConfig, extractor=None) -> FeatureStore:
    """Return the complete store for ``cfg.data`` + ``cfg.features``, building it if needed.

    ``extractor`` may be passed to reuse an already built one (an SSL model loaded once);
    by default it is made from ``cfg.features``.
    """
    corpus = load_corpus(cfg.data, cfg.paths)
    manifest = corpus.manifest
    unknown = sorted(set(manifest["split"]) - set(SPLIT_ORDER))
    if unknown:
        raise StoreError(f"corpus {corpus.root}: unknown split names {unknown}")
    duplicated = sorted(set(manifest.loc[manifest["clip_id"].duplicated(), "clip_id"]))
    if duplicated:
        raise StoreError(f"corpus {corpus.root}: clip ids occur more than once: {duplicated[:5]}")
    if not (manifest["split"] == "train").any():
        raise StoreError(f"corpus {corpus.root}: no usable training clips, nothing to precompute")
    if extractor is None:
        extractor = make_extractor(cfg.features)
    key = store_key(manifest, cfg.features, extractor)
    name = f"{cfg.features.kind}-{key[:16]}"
    feature_dir = Path(cfg.paths.feature_dir)
    root = feature_dir / name
    if (root / METADATA).is_file():
        log.info("Reusing complete feature store %s (nothing to compute)", root)
        return FeatureStore(root)
    feature_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(feature_dir / f"{name}.lock"):
        if (root / METADATA).is_file():
            log.info("Feature store %s was completed by another process; reusing it", root)
            shutil.rmtree(root / PARTS, ignore_errors=True)
        else:
            _build(root, key, corpus, cfg, extractor)
    return FeatureStore(root)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an flock on ``path``; the file stays in place (deleting lock files races)."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Another process is building this feature store; waiting on %s", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- build


def plan_chunks(manifest: pd.DataFrame) -> list[Chunk]:
    """Split clips into chunks: splits in SPLIT_ORDER, no chunk spans two splits.

    Within a split clips go by (duration, clip_id): deterministic, and it puts clips of equal
    length in the same chunk, which the SSL extractor batches into one forward pass.
    """
    chunks: list[Chunk] = []
    for split in SPLIT_ORDER:
        rows = manifest[manifest["split"] == split].sort_values(["duration", "clip_id"])
        ids: list[str] = []
        paths: list[str] = []
        seconds = 0.0
        for clip in rows.itertuples(index=False):
            if ids and (len(ids) >= CHUNK_MAX_CLIPS or seconds + clip.duration > CHUNK_MAX_SECONDS):
                chunks.append(Chunk(len(chunks), split, tuple(ids), tuple(paths)))
                ids, paths, seconds = [], [], 0.0
            ids.append(clip.clip_id)
            paths.append(clip.path)
            seconds += clip.duration
        if ids:
            chunks.append(Chunk(len(chunks), split, tuple(ids), tuple(paths)))
    return chunks


def _build(root: Path, key: str, corpus, cfg: DictConfig, extractor) -> None:
    started = time.monotonic()
    features_cfg = cfg.features
    parts_dir = root / PARTS
    parts_dir.mkdir(parents=True, exist_ok=True)
    remove_temp_files(root)
    chunks = plan_chunks(corpus.manifest)
    pending = [c for c in chunks if not _part_is_complete(parts_dir / c.part_name, c)]
    if len(pending) < len(chunks):
        log.info("Resuming %s: %d of %d chunks already done", root, len(chunks) - len(pending),
                 len(chunks))
    else:
        log.info("Building feature store %s (%d clips, %d chunks)", root, len(corpus.manifest),
                 len(chunks))

    streams = list(extractor.streams)
    sample_rate = int(features_cfg.sample_rate)
    with tqdm(total=sum(len(c.clip_ids) for c in pending), unit="clip",
              desc=f"precompute {features_cfg.kind}", mininterval=1.0) as progress:
        if features_cfg.kind == "ssl":
            for chunk in pending:
                progress.update(extract_chunk(extractor, chunk, parts_dir, sample_rate,
                                              batched=True))
        else:
            workers = features_cfg.num_workers or os.cpu_count() or 1
            _extract_in_pool(extractor, pending, parts_dir, sample_rate, workers, progress.update)

    result = _consolidate(root, chunks, corpus.manifest, streams)
    skipped = pd.concat([corpus.skipped[["path", "reason"]], result.skipped], ignore_index=True)
    _write_side_files(root, corpus.manifest, skipped, result, streams)
    elapsed = time.monotonic() - started
    write_json_atomic(root / METADATA, _metadata(key, cfg, extractor, corpus, result, skipped,
                                                 streams, elapsed))
    shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = result.manifest_used["duration"].sum()
    log.info("Feature store ready: %s | %d clips, %.2f h audio, %.1f s wall, %d skipped",
             root, len(result.manifest_used), seconds / 3600, elapsed, len(skipped))


# ---------------------------------------------------------------------------- extraction


_WORKER_EXTRACTOR = None


def _init_worker(extractor) -> None:
    """Pool initializer: one extractor per worker process, single-threaded torch."""
    global _WORKER_EXTRACTOR
    torch.set_num_threads(1)
    _WORKER_EXTRACTOR = extractor


def _worker_extract_chunk(chunk: Chunk, parts_dir: Path, sample_rate: int) -> int:
    return extract_chunk(_WORKER_EXTRACTOR, chunk, parts_dir, sample_rate, batched=False)


def _extract_in_pool(extractor, pending: list[Chunk], parts_dir: Path, sample_rate: int,
                     workers: int, on_clips: Callable[[int], None]) -> None:
    """Spectral extraction over chunks: in this process for one worker, else a process pool."""
    workers = min(workers, len(pending))
    if workers <= 1:
        for chunk in pending:
            on_clips(extract_chunk(extractor, chunk, parts_dir, sample_rate, batched=False))
        return
    pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(extractor,))
    try:
        futures = [pool.submit(_worker_extract_chunk, c, parts_dir, sample_rate) for c in pending]
        for future in as_completed(futures):
            on_clips(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def extract_chunk(extractor, chunk: Chunk, parts_dir: Path, sample_rate: int,
                  batched: bool) -> int:
    """Load, extract and write one chunk as a part file; returns the number of clips handled.

    Clips whose audio fails to load, that the extractor rejects, or whose features are empty or
    not finite in float16 are recorded in the part as skipped. ``batched`` hands the whole chunk
    to ``extract_many`` (SSL: equal-length clips share forward passes), else ``extract`` per clip.
    """
    streams = list(extractor.streams)
    skipped: list[tuple[str, str]] = []
    loaded: list[tuple[str, str, np.ndarray]] = []
    for clip_id, path in zip(chunk.clip_ids, chunk.paths):
        try:
            loaded.append((clip_id, path, load_audio(path, sample_rate=sample_rate)))
        except AudioError as exc:
            skipped.append((path, f"audio: {exc.reason}"))
    outputs = _extract_all(extractor, [wave for _, _, wave in loaded], batched)
    done: list[tuple[str, dict[str, np.ndarray]]] = []
    for (clip_id, path, _), out in zip(loaded, outputs, strict=True):
        arrays, problem = (None, out) if isinstance(out, str) else _stored_arrays(out, streams)
        if problem:
            skipped.append((path, f"features: {problem}"))
        else:
            done.append((clip_id, arrays))
    _write_part(parts_dir / chunk.part_name, chunk, done, skipped, streams)
    return len(chunk.clip_ids)


def _extract_all(extractor, waves: list[np.ndarray], batched: bool) -> list[dict | str]:
    """Features per wave, or the message of the ValueError the extractor raised for that wave."""
    if batched and waves:
        try:
            return extractor.extract_many(waves)
        except ValueError:
            pass  # some clip is unusable: redo one by one to find it and keep the others
    results: list[dict | str] = []
    for wave in waves:
        try:
            out = extractor.extract_many([wave])[0] if batched else extractor.extract(wave)
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
    if next(iter(lengths.values())) == 0:
        return None, "features: no frames (clip too short for the extractor)"
    arrays = {s: np.asarray(out[s]).astype(np.float16) for s in streams}
    bad = [s for s, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        return None, f"features: non-finite values (NaN/inf or beyond float16) in {bad}"
    return arrays, None


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
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _part_is_complete(path: Path, chunk: Chunk) -> bool:
    """A finished part for exactly this chunk's clips (anything else is redone)."""
    if not path.is_file():
        return False
    try:
        with np.load(path) as part:
            return tuple(part["chunk"].tolist()) == chunk.clip_ids
    except (OSError, ValueError, KeyError):
        return False


# ---------------------------------------------------------------------------- consolidation


@dataclass
class _Consolidated:
    manifest_used: pd.DataFrame  # manifest rows that were stored, plus "frames"
    skipped: pd.DataFrame  # path, reason (extraction stage)
    moments: dict[str, RunningMoments]  # train-split statistics per stream
    dims: dict[str, int]


def _consolidate(root: Path, chunks: list[Chunk], manifest: pd.DataFrame,
                 streams: list[str]) -> _Consolidated:
    """Stream parts into <split>/<stream>.npy + index.csv, one part and one stream at a time."""
    parts = {c.number: root / PARTS / c.part_name for c in chunks}
    indices: dict[str, list[pd.DataFrame]] = {}
    skipped_rows = []
    for chunk in chunks:
        with np.load(parts[chunk.number]) as part:
            skipped_rows += list(zip(part["skipped_path"].tolist(),
                                     part["skipped_reason"].tolist()))
            index = pd.DataFrame({"clip_id": part["clip_id"].tolist(),
                                  "length": part["length"], "part": chunk.number})
        indices.setdefault(chunk.split, []).append(index)
    by_split = {s: pd.concat(indices.get(s, []) or [_EMPTY_INDEX], ignore_index=True)
                for s in SPLIT_ORDER}
    if by_split["train"].empty:
        reasons = "; ".join(f"{p}: {r}" for p, r in skipped_rows[:5])
        raise StoreError(f"no training clip could be extracted for {root} ({reasons})")

    dims = _stream_dims(parts, by_split["train"], streams)
    moments = {s: RunningMoments.empty(dims[s]) for s in streams}
    info = manifest.set_index("clip_id")
    used = []
    for split in SPLIT_ORDER:
        index = by_split[split]
        lengths = index["length"].to_numpy(dtype=np.int64)
        index["offset"] = np.cumsum(lengths) - lengths
        (root / split).mkdir(exist_ok=True)
        for stream in streams:
            moments[stream] = moments[stream].merge(
                _write_stream(root / split / f"{stream}.npy", index, parts, stream, dims[stream],
                              with_moments=split == "train"))
        rows = info.loc[index["clip_id"]].reset_index()
        index["emotion"] = rows["emotion"].to_numpy()
        index["actor"] = rows["actor"].to_numpy()
        write_csv_atomic(root / split / INDEX, index[INDEX_COLUMNS])
        used.append(rows.assign(frames=index["length"].to_numpy()))
    return _Consolidated(
        manifest_used=pd.concat(used, ignore_index=True),
        skipped=pd.DataFrame(skipped_rows, columns=["path", "reason"]),
        moments=moments,
        dims=dims,
    )


_EMPTY_INDEX = pd.DataFrame({"clip_id": pd.Series(dtype=str), "length": pd.Series(dtype=np.int64),
                             "part": pd.Series(dtype=np.int64)})


def _stream_dims(parts: dict[int, Path], train_index: pd.DataFrame, streams: list[str]):
    with np.load(parts[int(train_index["part"].iloc[0])]) as part:
        return {s: int(part[f"stream.{s}"].shape[1]) for s in streams}


def _write_stream(path: Path, index: pd.DataFrame, parts: dict[int, Path], stream: str, dim: int,
                  with_moments: bool) -> RunningMoments:
    """Copy one stream of a split part by part into a memory-mapped temp file, then rename."""
    total = int(index["length"].sum())
    tmp = temp_path(path)
    moments = RunningMoments.empty(dim)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(total, dim))
        position = 0
        for number in index["part"].drop_duplicates():
            with np.load(parts[int(number)]) as part:
                frames = part[f"stream.{stream}"]
            if frames.shape[1] != dim:
                raise StoreError(f"{parts[int(number)]}: stream {stream!r} has dim "
                                 f"{frames.shape[1]}, expected {dim}")
            out[position:position + len(frames)] = frames
            position += len(frames)
            if with_moments:
                moments = moments.merge(RunningMoments.from_frames(frames))
        if position != total:
            raise StoreError(f"{path}: wrote {position} frames, index says {total}")
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return moments


# ---------------------------------------------------------------------------- side files, metadata


def _write_side_files(root: Path, manifest: pd.DataFrame, skipped: pd.DataFrame,
                      result: _Consolidated, streams: list[str]) -> None:
    with atomic_write(root / NORMALISATION) as f:
        save_normalisation(f, result.moments)
    write_csv_atomic(root / MANIFEST, manifest)
    write_skipped(skipped, root / SKIPPED)
    save_splits(result.manifest_used, root / SPLITS)  # the clips actually stored, per split


def _statistics(rows: pd.DataFrame) -> dict[str, Any]:
    return {"clips": int(len(rows)), "seconds": round(float(rows["duration"].sum()), 3),
            "frames": int(rows["frames"].sum())}


def _metadata(key: str, cfg: DictConfig, extractor, corpus, result: _Consolidated,
              skipped: pd.DataFrame, streams: list[str], elapsed: float) -> dict[str, Any]:
    features_cfg = cfg.features
    used = result.manifest_used
    splits = {}
    for split in SPLIT_ORDER:
        rows = used[used["split"] == split]
        splits[split] = {**_statistics(rows), "classes": {
            emotion: _statistics(rows[rows["emotion"] == emotion]) for emotion in EMOTIONS}}
    if features_cfg.kind == "ssl":
        weights = {**extractor.weights_identity,
                   "random": features_cfg.ssl.weights == "random"}
        layout = None
    else:
        weights = {"random": False}  # spectral features have no learned weights
        layout = extractor.layout
    return {
        "format_version": FORMAT_VERSION,
        "key": key,
        "kind": features_cfg.kind,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(elapsed, 3),
        "config": {part: OmegaConf.to_container(cfg[part], resolve=True)
                   for part in ("paths", "data", "features")},
        "versions": {pkg: importlib.metadata.version(pkg)
                     for pkg in ("torch", "torchaudio", "numpy", "crema-exp")},
        "weights": weights,
        "extractor": extractor_identity(features_cfg, extractor),
        "streams": {s: {"dim": result.dims[s], "frame_rate": float(extractor.frame_rate),
                        "layout": layout} for s in streams},
        "corpus": {"root": str(corpus.root), "layout": corpus.layout, "splits": splits,
                   "total": _statistics(used)},
        "skipped": skipped.to_dict(orient="records"),
        "recommended": recommended_settings(features_cfg.kind),
    }
