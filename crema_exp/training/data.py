"""One split of one feature stream, held in memory for training.

Clips are read once from the store's packed float16 array (no per-file loading); batches are cut
from it by offset and length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from crema_exp.config import EMOTIONS


@dataclass
class SplitData:
    """Packed frames of every clip of a split, with per-clip offsets, lengths and labels."""

    name: str
    frames: torch.Tensor  # float16 [total_frames, dim]
    offsets: np.ndarray  # int64 [clips]
    lengths: np.ndarray  # int64 [clips]
    labels: np.ndarray  # int64 [clips], index into EMOTIONS
    clip_ids: list[str]

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def dim(self) -> int:
        return int(self.frames.shape[-1])  # [frames, dim], or [frames, layers, dim] for a mix


def labels_from_emotions(emotions: pd.Series, source: str) -> np.ndarray:
    """Class indices in EMOTIONS order; an unknown emotion name fails naming ``source``."""
    lookup = {name: i for i, name in enumerate(EMOTIONS)}
    unknown = sorted(set(emotions) - set(lookup))
    if unknown:
        raise ValueError(f"{source}: unknown emotion(s) {unknown}; expected {list(EMOTIONS)}")
    return np.array(emotions.map(lookup), dtype=np.int64)


def load_split(store, split: str, stream: str) -> SplitData:
    """Read one split of ``stream`` from a FeatureStore into memory and check its index."""
    features, index = store.read(split, stream)
    source = f"{store.root}/{split}/index.csv"
    if len(index) == 0:
        raise ValueError(f"{source}: the {split} split holds no clips")
    offsets = index["offset"].to_numpy(np.int64)
    lengths = index["length"].to_numpy(np.int64)
    if (lengths < 1).any() or (offsets < 0).any() or (offsets + lengths > len(features)).any():
        raise ValueError(
            f"{source}: offsets/lengths do not fit {split}/{stream}.npy ({len(features)} frames)"
        )
    frames = torch.from_numpy(np.array(features, dtype=np.float16))  # one copy into memory
    return SplitData(
        name=split,
        frames=frames,
        offsets=offsets,
        lengths=lengths,
        labels=labels_from_emotions(index["emotion"], source),
        clip_ids=index["clip_id"].astype(str).tolist(),
    )


@dataclass
class TrainingData:
    """The three splits of the chosen stream plus what preparing its batches needs."""

    train: SplitData
    validation: SplitData
    test: SplitData
    mean: np.ndarray  # global normalisation from the train split
    var: np.ndarray
    layout: dict | None  # spectral block columns, None for SSL layers


def load_training_data(store, stream: str) -> TrainingData:
    mean, var = store.normalisation(stream)
    return TrainingData(
        *(load_split(store, split, stream) for split in ("train", "validation", "test")),
        mean=mean,
        var=var,
        layout=store.metadata["streams"][stream].get("layout"),
    )
