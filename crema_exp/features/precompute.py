"""Build (or reuse, or resume) the feature store for a data + features config.

The store directory is named by a hash of what changes its content and nothing else: the corpus
files (names, sizes, mtimes), the extractor's identity (settings and weights) and FORMAT_VERSION.
Labels, splits, folds and the split seed are not in it: every usable clip is extracted once, and
splits with their normalisation are cheap views over the store (views.py). Extraction runs in
chunks of clips; each finished chunk is an atomically written part file, so an interrupted build
resumes where it stopped. Parts are then streamed into one contiguous float16 array per stream,
and metadata.json (with every file's size and sha256) is written last to mark the store complete.
A build lock (features/store_lock.py) lets parallel sweep trials (also on several machines sharing
the cache) ask for the same store: one builds, the others wait and reuse it. A reused store is
checked first (features/store_check.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from crema_exp.atomic import remove_temp_files, write_json_atomic
from crema_exp.data import load_corpus
from crema_exp.features.consolidate import Consolidated, consolidate, write_side_files
from crema_exp.features.kinds import FeatureKind, make_extractor
from crema_exp.features.parts import extract_in_pool, part_is_complete, plan_chunks
from crema_exp.features.store import METADATA, PARTS, FeatureStore, StoreError
from crema_exp.features.store_check import FILES, check_store, record_files
from crema_exp.features.store_lock import build_lock

log = logging.getLogger(__name__)

# Bump when the on-disk layout or the meaning of stored values changes: old stores get a new key.
# 2: content-only key, one array per stream over the whole corpus (splits became views).
# 3: prosody block of 5 columns (voicing, voiced, log-F0, normalised log-F0, delta log-F0) from a
#    Viterbi voicing path on frames centred like the mel frames; a "files" record in metadata.json.
FORMAT_VERSION = 3


# ---------------------------------------------------------------------------- key


def corpus_fingerprint(manifest: pd.DataFrame) -> list[list[Any]]:
    """Per clip: id, file size and mtime_ns (a touched, added or removed clip changes it)."""
    rows = []
    for clip in manifest.sort_values("clip_id").itertuples(index=False):
        try:
            st = os.stat(clip.path)
        except OSError as exc:
            raise StoreError(f"{clip.path}: cannot stat corpus file ({exc.strerror})") from exc
        rows.append([clip.clip_id, st.st_size, st.st_mtime_ns])
    return rows


def store_key(manifest: pd.DataFrame, features_cfg: DictConfig, extractor: FeatureKind) -> str:
    """sha256 hex digest over the corpus files, the extractor identity and FORMAT_VERSION."""
    content = {
        "format_version": FORMAT_VERSION,
        "kind": features_cfg.kind,
        "sample_rate": features_cfg.sample_rate,
        "extractor": extractor.identity(),
        "corpus": corpus_fingerprint(manifest),
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------- entry point


def ensure_store(cfg: DictConfig, extractor: FeatureKind | None = None,
                 corpus=None) -> FeatureStore:
    """Return the complete store for ``cfg.data`` + ``cfg.features``, building it if needed.

    ``extractor`` may be passed to reuse an already built one (an SSL model loaded once);
    by default it is made from ``cfg.features``. ``corpus`` saves a second scan when the
    caller has already loaded it.
    """
    if corpus is None:
        corpus = load_corpus(cfg.data, cfg.paths)
    manifest = corpus.manifest
    duplicated = sorted(set(manifest.loc[manifest["clip_id"].duplicated(), "clip_id"]))
    if duplicated:
        raise StoreError(f"corpus {corpus.root}: clip ids occur more than once: {duplicated[:5]}")
    if extractor is None:
        extractor = make_extractor(cfg.features)
    key = store_key(manifest, cfg.features, extractor)
    name = f"{cfg.features.kind}-{key[:16]}"
    feature_dir = Path(cfg.paths.feature_dir)
    root = feature_dir / name
    verify, rebuild = bool(cfg.get("verify", False)), bool(cfg.get("rebuild", False))
    if (root / METADATA).is_file() and not rebuild:
        log.info("Reusing complete feature store %s (nothing to compute)", root)
        return _checked(FeatureStore(root), verify)
    feature_dir.mkdir(parents=True, exist_ok=True)
    with build_lock(feature_dir / f"{name}.lock"):
        if rebuild and root.exists():
            log.info("rebuild=true: deleting feature store %s and building it again", root)
            shutil.rmtree(root)
        if (root / METADATA).is_file():
            log.info("Feature store %s was completed by another process; reusing it", root)
            shutil.rmtree(root / PARTS, ignore_errors=True)
            return _checked(FeatureStore(root), verify)
        try:
            _build(root, key, corpus, cfg, extractor)
        except BaseException:
            _remove_if_empty(root)  # a build that failed before its first part leaves nothing
            raise
    return FeatureStore(root)


def _remove_if_empty(root: Path) -> None:
    """rmdir (never rmtree) the parts folder and the store folder: finished parts stay to resume."""
    for folder in (root / PARTS, root):
        try:
            folder.rmdir()
        except OSError:
            return


def _checked(store: FeatureStore, verify: bool) -> FeatureStore:
    if verify:
        log.info("verify=true: comparing every file of %s with its recorded sha256", store.root)
    check_store(store, verify=verify)
    return store


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
        extract_in_pool(extractor, pending, parts_dir, sample_rate,
                        extractor.pool_workers(features_cfg), progress.update)

    result = consolidate(root, chunks, corpus.manifest, streams)
    skipped = pd.concat([corpus.skipped[["path", "reason"]], result.skipped], ignore_index=True)
    write_side_files(root, corpus.manifest, skipped)
    elapsed = time.monotonic() - started
    metadata = _metadata(key, cfg, extractor, corpus, result, skipped, streams, elapsed)
    write_json_atomic(root / METADATA, {**metadata, FILES: record_files(root)})
    shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = result.manifest_used["duration"].sum()
    log.info("Feature store ready: %s | %d clips, %.2f h audio, %.1f s wall, %d skipped",
             root, len(result.manifest_used), seconds / 3600, elapsed, len(skipped))


# ---------------------------------------------------------------------------- metadata


def _statistics(rows: pd.DataFrame) -> dict[str, Any]:
    """Clips, seconds and frames of a set of stored clips."""
    return {"clips": int(len(rows)), "seconds": round(float(rows["duration"].sum()), 3),
            "frames": int(rows["frames"].sum())}


def _metadata(key: str, cfg: DictConfig, extractor: FeatureKind, corpus, result: Consolidated,
              skipped: pd.DataFrame, streams: list[str], elapsed: float) -> dict[str, Any]:
    features_cfg = cfg.features
    data = OmegaConf.to_container(cfg.data, resolve=True)
    for view_only in ("split", "fold"):  # not part of the store: each run records its view
        data.pop(view_only, None)
    return {
        "format_version": FORMAT_VERSION,
        "key": key,
        "kind": features_cfg.kind,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(elapsed, 3),
        "config": {"paths": OmegaConf.to_container(cfg.paths, resolve=True), "data": data,
                   "features": OmegaConf.to_container(features_cfg, resolve=True)},
        "versions": {pkg: importlib.metadata.version(pkg)
                     for pkg in ("torch", "torchaudio", "numpy", "crema-exp")},
        "weights": dict(extractor.weights_identity),
        "extractor": extractor.identity(),
        "streams": {s: {"dim": result.dims[s], "frame_rate": float(extractor.frame_rate),
                        "layout": extractor.layout} for s in streams},
        "corpus": {"root": str(corpus.root), "layout": corpus.layout,
                   "total": _statistics(result.manifest_used)},
        "skipped": skipped.to_dict(orient="records"),
        # for the record only: runs take their settings from conf/features/<kind>.yaml
        "recommended": OmegaConf.to_container(features_cfg.recommended, resolve=True)
        if features_cfg.get("recommended") is not None else {},
    }
