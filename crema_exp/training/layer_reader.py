"""Several SSL layers of a view's splits, read from disk batch by batch, for a learned layer mix.

The single-layer path holds its layer in memory; every layer of full CREMA-D is about 19 GB of
float16, so a mix cannot. Here each batch gathers its clips' frames from the memory-mapped .npy
file of each layer (a clip's frames are contiguous in every file) and the mapping is dropped after
the batch: resident memory stays about one batch, and the page cache, not the process, keeps what
the machine has room for.

Each split's ``frames`` are the store's whole-corpus ``<stream>.npy`` files (store version 2), and
its offsets the view's split rows (offsets into those files), so nothing is copied or repacked.

Interface: ``mixed_streams(store, features_cfg)`` says which streams a config mixes (None for one
layer); ``load_mixed_training_data(view, streams)`` gives a TrainingData whose ``frames`` yield
float16 [frames, layers, dim] tensors and whose normalisation (the view's train statistics of
each layer) is [layers, dim].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from crema_exp.data.splits import SPLITS
from crema_exp.features.ssl import layer_stream
from crema_exp.features.store import StoreError
from crema_exp.training.data import SplitData, TrainingData, labels_from_emotions, split_rows

WEIGHTED = "weighted"


def mixed_streams(store, features_cfg) -> list[str] | None:
    """The layer streams ``features.ssl_layer`` mixes ("weighted" = all stored), None for one."""
    choice = features_cfg.ssl_layer
    if not (choice == WEIGHTED or OmegaConf.is_list(choice) or isinstance(choice, (list, tuple))):
        return None
    if store.kind != "ssl":
        raise StoreError(f"features.ssl_layer={choice}: a layer mix needs SSL features, "
                         f"{store.root} holds {store.kind!r}")
    stored = sorted(s for s in store.streams if s.startswith("layer_"))
    if choice == WEIGHTED:
        return stored
    wanted = [layer_stream(int(layer)) for layer in choice]
    missing = [s for s in wanted if s not in stored]
    if missing:
        raise StoreError(f"features.ssl_layer={list(choice)}: {missing} not stored in "
                         f"{store.root}; stored layers: {stored}")
    return wanted


class LayerFrames:
    """Packed frames of one split over several layers; ``frames[index]`` reads only those rows."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        shapes = {np.load(p, mmap_mode="r").shape for p in paths}
        if len(shapes) != 1:
            raise StoreError(f"layer files of unequal shapes {sorted(shapes)}: {paths}")
        frames, dim = shapes.pop()
        self.shape = (frames, len(paths), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, frame_index: torch.Tensor) -> torch.Tensor:
        """float16 [len(frame_index), layers, dim]."""
        rows = np.asarray(frame_index)
        out = np.empty((len(rows), *self.shape[1:]), np.float16)
        for layer, path in enumerate(self.paths):
            out[:, layer] = np.load(path, mmap_mode="r")[rows]  # unmapped again right after
        return torch.from_numpy(out)


def load_mixed_split(view, split: str, streams: list[str]) -> SplitData:
    """The ``split`` rows of ``view`` over the layer files ``streams`` (read batch by batch)."""
    frames = LayerFrames([view.store.root / f"{s}.npy" for s in streams])  # as mixed_streams chose
    rows, offsets, lengths = split_rows(view, split, streams[0], len(frames))
    return SplitData(name=split, frames=frames, offsets=offsets, lengths=lengths,
                     labels=labels_from_emotions(rows["emotion"], f"{view.root}/splits.csv"),
                     clip_ids=rows["clip_id"].astype(str).tolist())


def load_mixed_training_data(view, streams: list[str]) -> TrainingData:
    """Every split of ``view`` over several layers, normalised per layer by its train split."""
    stats = [view.normalisation(s) for s in streams]
    return TrainingData(
        *(load_mixed_split(view, split, streams) for split in SPLITS),
        stream=list(streams),
        mean=np.stack([mean for mean, _ in stats]),
        var=np.stack([var for _, var in stats]),
        layout=None,
    )
