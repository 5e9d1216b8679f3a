"""Views over a feature store: one split assignment (seeded split or fold k) plus its statistics.

The store holds every clip once; a view says which stored clip is train, validation or test (and
with which label) for the current data config, and computes the normalisation statistics of a
stream from that view's training frames only. Both are cheap (seconds: one read of one stream),
so 5-fold cross-validation or a new split seed never re-runs the extractor. A view is cached in
``<store>/views/<view-key16>/`` (its key: the store key + every clip's split), holding
``splits.csv`` (clip_id, actor, emotion, split), ``view.json`` (what made it) and one
``<stream>.npz`` of statistics per stream a run has read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from crema_exp.atomic import atomic_write, write_csv_atomic, write_json_atomic
from crema_exp.data import load_corpus
from crema_exp.data.splits import SPLITS
from crema_exp.features.normalisation import RunningMoments, load_normalisation, save_normalisation
from crema_exp.features.precompute import ensure_store
from crema_exp.features.store import VIEWS, FeatureStore, StoreError

log = logging.getLogger(__name__)

VIEW_FILE = "view.json"
VIEW_SPLITS = "splits.csv"
_BLOCK_FRAMES = 1 << 14  # frames per read for statistics: ~100 MB of float64 at 768 dims


@dataclass
class FeatureView:
    """A split assignment over a store's clips, and its train-only normalisation."""

    store: FeatureStore
    key: str
    clips: pd.DataFrame  # clip_id, actor, emotion, split, offset, length (store order)
    split_settings: dict[str, Any]  # the data config that chose the splits (fold, seed, ...)
    # layout of the corpus this run scanned (official | split_folders); the store is shared by
    # content, so its metadata records only the layout of whichever corpus built it
    corpus_layout: str | None = None

    @property
    def root(self) -> Path:
        return self.store.root / VIEWS / self.key[:16]

    def split(self, name: str) -> pd.DataFrame:
        """Rows of ``clips`` in split ``name`` (store order)."""
        return self.clips[self.clips["split"] == name].reset_index(drop=True)

    def normalisation(self, stream: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, var) float32 [dim] of ``stream`` over this view's training frames (cached)."""
        path = self.root / f"{stream}.npz"
        if not path.is_file():
            moments = train_moments(self.store.read(stream), self.split("train"))
            with atomic_write(path) as f:
                save_normalisation(f, {stream: moments})
        return load_normalisation(path, stream)

    def record(self) -> dict[str, Any]:
        """What a run records about the data it saw (test_metrics.json "features")."""
        counts = self.clips["split"].value_counts()
        return {"store": str(self.store.root), "view": str(self.root),
                "split": self.split_settings,
                "clips": {s: int(counts.get(s, 0)) for s in SPLITS}}


def train_moments(frames: np.ndarray, train: pd.DataFrame) -> RunningMoments:
    """Moments over the frames of the ``train`` clips (offset, length) of a packed stream."""
    mask = np.zeros(len(frames), dtype=bool)
    for offset, length in zip(train["offset"], train["length"]):
        mask[offset:offset + length] = True
    moments = RunningMoments.empty(frames.shape[1])
    for start in range(0, len(frames), _BLOCK_FRAMES):
        chosen = mask[start:start + _BLOCK_FRAMES]
        if chosen.any():
            block = np.asarray(frames[start:start + _BLOCK_FRAMES])[chosen]
            moments = moments.merge(RunningMoments.from_frames(block))
    return moments


def split_settings(data_cfg: DictConfig) -> dict[str, Any]:
    """The data settings that decide the split assignment (recorded with every run)."""
    return {"fold": data_cfg.fold, **OmegaConf.to_container(data_cfg.split, resolve=True)}


def ensure_view(store: FeatureStore, manifest: pd.DataFrame, data_cfg: DictConfig,
                corpus_layout: str | None = None) -> FeatureView:
    """The view of ``store`` that ``manifest``'s split column describes, written if new."""
    index = store.index()
    labels = manifest[["clip_id", "actor", "emotion", "split"]]
    clips = index.merge(labels, on="clip_id", how="inner", validate="one_to_one")
    unknown = sorted(set(clips["split"]) - set(SPLITS))
    if unknown:
        raise StoreError(f"{store.root}: unknown split names {unknown}; expected {list(SPLITS)}")
    empty = [s for s in SPLITS if not (clips["split"] == s).any()]
    if empty:
        raise StoreError(f"{store.root}: no stored clip in the {' and '.join(empty)} split(s) "
                         f"of this data config")
    clips = clips[["clip_id", "actor", "emotion", "split", "offset", "length"]]
    blob = json.dumps({"store": store.key, "splits": clips[["clip_id", "split"]].values.tolist()})
    key = hashlib.sha256(blob.encode()).hexdigest()
    view = FeatureView(store, key, clips, split_settings(data_cfg), corpus_layout)
    if not (view.root / VIEW_FILE).is_file():
        view.root.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(view.root / VIEW_SPLITS, clips[["clip_id", "actor", "emotion", "split"]])
        write_json_atomic(view.root / VIEW_FILE, {"key": key, "store": store.key,
                                                  "split": view.split_settings})
        log.info("New view %s of %s (%s)", view.root.name, store.root, view.split_settings)
    return view


def prepare_features(cfg: DictConfig, extractor=None) -> FeatureView:
    """Scan the corpus, find or build the store, and return the view of ``cfg.data``'s split."""
    corpus = load_corpus(cfg.data, cfg.paths)
    store = ensure_store(cfg, extractor, corpus=corpus)
    return ensure_view(store, corpus.manifest, cfg.data, corpus.layout)
