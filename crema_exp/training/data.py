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
from crema_exp.data.splits import SPLITS


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


def split_rows(view, split: str, stream: str, total_frames: int):
    """(rows, offsets, lengths) of one split of ``view``, checked against the stream's frames."""
    rows = view.split(split)
    if len(rows) == 0:
        raise ValueError(f"{view.root}: the {split} split holds no clips")
    offsets = rows["offset"].to_numpy(np.int64)
    lengths = rows["length"].to_numpy(np.int64)
    if (lengths < 1).any() or (offsets < 0).any() or (offsets + lengths > total_frames).any():
        raise ValueError(f"{view.store.root}/index.csv: offsets/lengths do not fit {stream}.npy "
                         f"({total_frames} frames)")
    return rows, offsets, lengths


def load_split(view, split: str, stream: str) -> SplitData:
    """Copy the clips of one split of ``stream`` out of the store into memory, packed."""
    features = view.store.read(stream)
    rows, offsets, lengths = split_rows(view, split, stream, len(features))
    frames = np.concatenate([features[o:o + n] for o, n in zip(offsets, lengths)])
    return SplitData(
        name=split,
        frames=torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float16)),
        offsets=np.cumsum(lengths) - lengths,
        lengths=lengths,
        labels=labels_from_emotions(rows["emotion"], f"{view.root}/splits.csv"),
        clip_ids=rows["clip_id"].astype(str).tolist(),
    )


@dataclass
class TrainingData:
    """The three splits of the chosen stream plus what preparing its batches needs."""

    train: SplitData
    validation: SplitData
    test: SplitData
    stream: str
    mean: np.ndarray  # global normalisation from the view's train split
    var: np.ndarray
    layout: dict | None  # spectral block columns, None for SSL layers


def load_training_data(view, stream: str) -> TrainingData:
    """Every split of ``stream`` in this view, with the view's train-only statistics."""
    mean, var = view.normalisation(stream)
    return TrainingData(
        *(load_split(view, split, stream) for split in SPLITS),
        stream=stream,
        mean=mean,
        var=var,
        layout=view.store.metadata["streams"][stream].get("layout"),
    )
