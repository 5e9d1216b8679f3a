"""A small feature store on disk, in the documented layout, holding a learnable toy problem.

Each clip's frames are noise around a class-dependent mean vector, with variable lengths, so a
tiny model can beat chance in a few epochs. The store is opened through the real FeatureStore.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from crema_exp.config import EMOTIONS
from crema_exp.features.store import FeatureStore

TOY_LAYOUT = {"logmel": [0, 8], "delta": [8, 16], "delta_delta": [16, 24], "pitch": [24, 27]}
TOY_DIM = 27
SPLIT_SIZES = {"train": 96, "validation": 36, "test": 36}


def write_toy_store(
    root: Path,
    *,
    recommended: dict | None = None,
    seed: int = 0,
    separation: float = 0.6,
    min_len: int = 12,
    max_len: int = 40,
    nan_in_train: bool = False,
    weights: dict | None = None,
) -> FeatureStore:
    """Write a complete mel_prosody-like store under ``root`` and return it opened."""
    rng = np.random.default_rng(seed)
    class_means = rng.normal(0.0, separation, size=(len(EMOTIONS), TOY_DIM))
    root.mkdir(parents=True, exist_ok=True)
    train_frames = None
    for split, size in SPLIT_SIZES.items():
        labels = np.arange(size) % len(EMOTIONS)
        lengths = rng.integers(min_len, max_len + 1, size=size)
        clips = [rng.normal(class_means[c], 1.0, size=(n, TOY_DIM)) for c, n in zip(labels, lengths)]
        frames = np.concatenate(clips).astype(np.float16)
        if nan_in_train and split == "train":
            frames[5] = np.nan
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        index = pd.DataFrame(
            {
                "clip_id": [f"{1001 + i:04d}_DFA_{EMOTIONS[c][:3].upper()}_XX" for i, c in enumerate(labels)],
                "offset": offsets,
                "length": lengths,
                "emotion": [EMOTIONS[c] for c in labels],
                "actor": 1001 + np.arange(size),
            }
        )
        (root / split).mkdir(exist_ok=True)
        np.save(root / split / "spectral.npy", frames)
        index.to_csv(root / split / "index.csv", index=False)
        if split == "train":
            train_frames = frames.astype(np.float64)
    np.savez(
        root / "normalisation.npz",
        **{
            "spectral.mean": np.nanmean(train_frames, axis=0).astype(np.float32),
            "spectral.var": np.nanvar(train_frames, axis=0).astype(np.float32),
            "spectral.count": np.int64(len(train_frames)),
        },
    )
    metadata = {
        "kind": "mel_prosody",
        "streams": {"spectral": {"dim": TOY_DIM, "frame_rate": 100.0, "layout": TOY_LAYOUT}},
        "corpus": {"splits": list(SPLIT_SIZES)},
        "recommended": recommended if recommended is not None else {},
        "weights": weights,
        "config": {"features": {"kind": "mel_prosody"}},
    }
    (root / "metadata.json").write_text(json.dumps(metadata))
    return FeatureStore(root)


def tiny_train_config(overrides: list[str] | None = None):
    """A structured train config with a tiny model, CPU, one thread, few epochs."""
    from omegaconf import OmegaConf

    from crema_exp.config import TrainConfig

    cfg = OmegaConf.structured(TrainConfig)
    base = [
        "features.kind=mel_prosody",
        "model.hidden_size=16", "model.attention_heads=2", "model.attention_hidden=16",
        "model.transformer_heads=2", "model.transformer_ffn=32", "model.dropout=0.1",
        "optimizer.lr=0.005", "trainer.epochs=6", "trainer.patience=6", "trainer.device=cpu",
        "trainer.num_threads=1", "scheduler.warmup_epochs=0.5",
    ]
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(base + list(overrides or [])))
