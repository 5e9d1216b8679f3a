"""A small feature store on disk, in the documented layout, holding a learnable toy problem.

Each clip's frames are noise around a class-dependent mean vector, with variable lengths, so a
tiny model can beat chance in a few epochs. The store is opened through the real FeatureStore and
seen through a real view (split assignment + train-only statistics).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from crema_exp.config import EMOTIONS, DataConfig
from crema_exp.features.store import FeatureStore
from crema_exp.features.views import FeatureView, ensure_view

TOY_LAYOUT = {"logmel": [0, 8], "delta": [8, 16], "delta_delta": [16, 24], "pitch": [24, 27]}
TOY_DIM = 27
SPLIT_SIZES = {"train": 96, "validation": 36, "test": 36}


def write_toy_store(
    root: Path,
    *,
    seed: int = 0,
    separation: float = 0.6,
    min_len: int = 12,
    max_len: int = 40,
    nan_in_train: bool = False,
    weights: dict | None = None,
) -> FeatureView:
    """Write a complete mel_prosody-like store under ``root``; return its view (one actor a clip)."""
    rng = np.random.default_rng(seed)
    class_means = rng.normal(0.0, separation, size=(len(EMOTIONS), TOY_DIM))
    root.mkdir(parents=True, exist_ok=True)
    frames, rows = [], []
    for split, size in SPLIT_SIZES.items():
        labels = np.arange(size) % len(EMOTIONS)
        lengths = rng.integers(min_len, max_len + 1, size=size)
        clips = [rng.normal(class_means[c], 1.0, size=(n, TOY_DIM)) for c, n in zip(labels, lengths)]
        if nan_in_train and split == "train":
            clips[0][5] = np.nan
        frames += clips
        for c, n in zip(labels, lengths):
            actor = 1001 + len(rows)
            rows.append({"clip_id": f"{actor:04d}_DFA_{EMOTIONS[c][:3].upper()}_XX",
                         "actor": actor, "emotion": EMOTIONS[c], "split": split, "length": n})
    manifest = pd.DataFrame(rows)
    lengths = manifest["length"].to_numpy()
    index = manifest[["clip_id"]].assign(offset=np.cumsum(lengths) - lengths, length=lengths)
    np.save(root / "spectral.npy", np.concatenate(frames).astype(np.float16))
    index.to_csv(root / "index.csv", index=False)
    metadata = {
        "format_version": 2,
        "key": f"toy{seed}",
        "kind": "mel_prosody",
        "streams": {"spectral": {"dim": TOY_DIM, "frame_rate": 100.0, "layout": TOY_LAYOUT}},
        "weights": weights,
        "config": {"features": {"kind": "mel_prosody"}},
    }
    (root / "metadata.json").write_text(json.dumps(metadata))
    return ensure_view(FeatureStore(root), manifest, OmegaConf.structured(DataConfig))


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
