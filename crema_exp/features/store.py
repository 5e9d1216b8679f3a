"""Reading a complete feature store.

On-disk layout, format version 2 (one directory per content key; docs/interfaces.md has the same):

    <kind>-<key16>/metadata.json   written last: its presence marks a complete store
                   manifest.csv    the clips scanned (path, clip_id, actor, ..., duration; no split)
                   skipped.csv     path, reason: clips the scan or the extractor rejected
                   index.csv       clip_id, offset, length (frames) of every stored clip
                   <stream>.npy    float16 [total_frames, dim], every clip of the corpus, no padding
                   views/<view-key16>/   split assignments and their train-only statistics
                                   (crema_exp.features.views; not part of the store's content)

The store holds every usable clip once, whatever split it lands in: labels, splits, folds and
normalisation are views over it (features/views.py). Each stream (an SSL layer, or the spectral
features) is its own .npy file, so a training run that reads one layer maps only that file.
Version 1 stores (one directory per split, normalisation.npz) have another key and are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crema_exp.features.kinds import extractor_class

METADATA = "metadata.json"
MANIFEST = "manifest.csv"
SKIPPED = "skipped.csv"
INDEX = "index.csv"
PARTS = "parts"
VIEWS = "views"
INDEX_COLUMNS = ["clip_id", "offset", "length"]


class StoreError(RuntimeError):
    """A feature store that is missing, incomplete, or asked for something it does not hold."""


class FeatureStore:
    """A complete feature store on disk (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        meta_path = self.root / METADATA
        if not meta_path.is_file():
            state = "does not exist" if not self.root.exists() else f"has no {METADATA}"
            raise StoreError(
                f"{self.root} is not a complete feature store: it {state} "
                "(run `python -m crema_exp.precompute` with the same data and features config)"
            )
        try:
            self.metadata: dict[str, Any] = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{meta_path}: unreadable metadata ({exc})") from exc
        self.streams: list[str] = list(self.metadata["streams"])
        self.kind: str = self.metadata["kind"]

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    @property
    def key(self) -> str:
        return self.metadata["key"]

    def stream_name(self, features_cfg: Any) -> str:
        """Stream the train job reads for this features config (the kind decides, e.g. ssl_layer)."""
        if features_cfg.kind != self.kind:
            raise StoreError(
                f"{self.root} holds {self.kind!r} features, not features.kind={features_cfg.kind!r}"
            )
        try:
            return extractor_class(self.kind).select_stream(features_cfg, self.streams, self.root)
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    def index(self) -> pd.DataFrame:
        """clip_id, offset, length of every stored clip."""
        return pd.read_csv(self.root / INDEX, dtype={"clip_id": str})

    def read(self, stream: str) -> np.ndarray:
        """Memory-mapped float16 [frames, dim] array of one stream (rows as in ``index()``)."""
        if stream not in self.streams:
            raise StoreError(f"{self.root}: no stream {stream!r}; stored: {self.streams}")
        return np.load(self.root / f"{stream}.npy", mmap_mode="r")
