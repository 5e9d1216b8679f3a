"""Several SSL layers of a split, read from disk batch by batch, for a learned layer mix.

The single-layer path holds its layer in memory; every layer of full CREMA-D is about 19 GB of
float16, so a mix cannot. Here each batch gathers its clips' frames from the memory-mapped .npy
file of each layer (a clip's frames are contiguous in every file) and the mapping is dropped after
the batch: resident memory stays about one batch, and the page cache, not the process, keeps what
the machine has room for.

Interface: ``mixed_streams(store, features_cfg)`` says which streams a config mixes (None for one
layer); ``load_mixed_training_data(store, streams)`` gives a TrainingData whose ``frames`` yield
float16 [frames, layers, dim] tensors and whose normalisation is [layers, dim].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from crema_exp.features.store import StoreError, layer_stream
from crema_exp.training.data import SplitData, TrainingData, labels_from_emotions

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


def load_mixed_split(store, split: str, streams: list[str]) -> SplitData:
    features, index = store.read(split, streams[0])
    source = f"{store.root}/{split}/index.csv"
    if len(index) == 0:
        raise ValueError(f"{source}: the {split} split holds no clips")
    offsets = index["offset"].to_numpy(np.int64)
    lengths = index["length"].to_numpy(np.int64)
    if (lengths < 1).any() or (offsets < 0).any() or (offsets + lengths > len(features)).any():
        raise ValueError(f"{source}: offsets/lengths do not fit {split}/{streams[0]}.npy")
    paths = [Path(store.read(split, s)[0].filename) for s in streams]
    return SplitData(name=split, frames=LayerFrames(paths), offsets=offsets, lengths=lengths,
                     labels=labels_from_emotions(index["emotion"], source),
                     clip_ids=index["clip_id"].astype(str).tolist())


def load_mixed_training_data(store, streams: list[str]) -> TrainingData:
    stats = [store.normalisation(s) for s in streams]
    return TrainingData(
        *(load_mixed_split(store, split, streams) for split in ("train", "validation", "test")),
        mean=np.stack([mean for mean, _ in stats]),
        var=np.stack([var for _, var in stats]),
        layout=None,
    )
