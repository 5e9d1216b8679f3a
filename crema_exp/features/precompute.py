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
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from crema_exp.atomic import remove_temp_files, write_json_atomic
from crema_exp.config import EMOTIONS
from crema_exp.data import load_corpus
from crema_exp.features.consolidate import Consolidated, consolidate, write_side_files
from crema_exp.features.parts import (
    SPLIT_ORDER,
    extract_chunk,
    extract_in_pool,
    part_is_complete,
    plan_chunks,
)
from crema_exp.features.recommendations import recommended_settings
from crema_exp.features.store import METADATA, PARTS, FeatureStore, StoreError

log = logging.getLogger(__name__)

# Bump when the on-disk layout or the meaning of stored values changes: old stores get a new key.
FORMAT_VERSION = 2


# ---------------------------------------------------------------------------- key and extractor


def make_extractor(features_cfg: DictConfig):
    """The extractor for ``features.kind`` (an SSL one loads its weights only when it first extracts)."""
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


def _build(root: Path, key: str, corpus, cfg: DictConfig, extractor) -> None:
    started = time.monotonic()
    features_cfg = cfg.features
    parts_dir = root / PARTS
    parts_dir.mkdir(parents=True, exist_ok=True)
    remove_temp_files(root)
    chunks = plan_chunks(corpus.manifest)
    pending = [c for c in chunks if not part_is_complete(parts_dir / c.part_name, c)]
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
            extract_in_pool(extractor, pending, parts_dir, sample_rate, workers, progress.update)

    result = consolidate(root, chunks, corpus.manifest, streams)
    skipped = pd.concat([corpus.skipped[["path", "reason"]], result.skipped], ignore_index=True)
    write_side_files(root, corpus.manifest, skipped, result, streams)
    elapsed = time.monotonic() - started
    write_json_atomic(root / METADATA, _metadata(key, cfg, extractor, corpus, result, skipped,
                                                 streams, elapsed))
    shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = result.manifest_used["duration"].sum()
    log.info("Feature store ready: %s | %d clips, %.2f h audio, %.1f s wall, %d skipped",
             root, len(result.manifest_used), seconds / 3600, elapsed, len(skipped))


# ---------------------------------------------------------------------------- metadata


def _statistics(rows: pd.DataFrame) -> dict[str, Any]:
    return {"clips": int(len(rows)), "seconds": round(float(rows["duration"].sum()), 3),
            "frames": int(rows["frames"].sum())}


def _metadata(key: str, cfg: DictConfig, extractor, corpus, result: Consolidated,
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
