"""Reading a complete feature store.

On-disk layout (one directory per content key, see docs/interfaces.md):

    <kind>-<key16>/metadata.json       written last: its presence marks a complete store
                   normalisation.npz   per stream mean/var/count over train frames
                   manifest.csv, skipped.csv, splits.csv (clip_id, actor, split)
                   <split>/index.csv   clip_id, offset, length, emotion, actor (frames)
                   <split>/<stream>.npy  float16 [total_frames, dim], no padding

Each stream (an SSL layer, or the spectral features) is its own .npy file, so a training run that
reads one layer memory-maps only that file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crema_exp.features.normalisation import load_normalisation

METADATA = "metadata.json"
NORMALISATION = "normalisation.npz"
MANIFEST = "manifest.csv"
SKIPPED = "skipped.csv"
SPLITS = "splits.csv"
INDEX = "index.csv"
PARTS = "parts"
SPECTRAL_STREAM = "spectral"
INDEX_COLUMNS = ["clip_id", "offset", "length", "emotion", "actor"]

_LAYER = re.compile(r"layer_(\d+)")


class StoreError(RuntimeError):
    """A feature store that is missing, incomplete, or asked for something it does not hold."""


def layer_stream(layer: int) -> str:
    """Stream name of an SSL hidden layer (0 = transformer input)."""
    return f"layer_{layer:02d}"


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
        self.splits: list[str] = list(self.metadata["corpus"]["splits"])
        self.kind: str = self.metadata["kind"]

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def stream_name(self, features_cfg: Any) -> str:
        """Stream the train job reads for this features config.

        Spectral kinds have one stream. For SSL, ``ssl_layer`` is a layer number, or a negative
        index into the stored layers (-1 = the last stored layer).
        """
        if features_cfg.kind != self.kind:
            raise StoreError(
                f"{self.root} holds {self.kind!r} features, not features.kind={features_cfg.kind!r}"
            )
        if self.kind != "ssl":
            return SPECTRAL_STREAM
        layers = sorted(int(_LAYER.fullmatch(s).group(1)) for s in self.streams)
        wanted = int(features_cfg.ssl_layer)
        if wanted < 0:
            if -wanted > len(layers):
                raise StoreError(
                    f"features.ssl_layer={wanted}: {self.root} stores only {len(layers)} layers "
                    f"({layers})"
                )
            return layer_stream(layers[wanted])
        if wanted not in layers:
            raise StoreError(
                f"features.ssl_layer={wanted} is not stored in {self.root}; stored layers: {layers}"
            )
        return layer_stream(wanted)

    def read(self, split: str, stream: str) -> tuple[np.ndarray, pd.DataFrame]:
        """Memory-mapped float16 [frames, dim] array of one split and stream, and its index."""
        if split not in self.splits:
            raise StoreError(f"{self.root}: no split {split!r}; stored: {self.splits}")
        if stream not in self.streams:
            raise StoreError(f"{self.root}: no stream {stream!r}; stored: {self.streams}")
        features = np.load(self.root / split / f"{stream}.npy", mmap_mode="r")
        index = pd.read_csv(self.root / split / INDEX, dtype={"clip_id": str, "emotion": str})
        return features, index

    def normalisation(self, stream: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, var) float32 [dim] of a stream over the training split's frames."""
        if stream not in self.streams:
            raise StoreError(f"{self.root}: no stream {stream!r}; stored: {self.streams}")
        return load_normalisation(self.root / NORMALISATION, stream)
