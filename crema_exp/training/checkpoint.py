"""best_model.pt: everything needed to predict from the file alone.

It holds the (EMA) weights, the model config, the resolved train config, the label order, the
global normalisation, per-utterance CMVN on/off, and the feature config and weights identity, so
predict can rebuild the extractor and reproduce the store's features exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from crema_exp.config import EMOTIONS, ModelConfig
from crema_exp.atomic import atomic_write
from crema_exp.models import EmotionClassifier

FORMAT = "crema_exp.best_model/1"


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    *,
    cfg: DictConfig,
    stream: str | list[str],
    mean: np.ndarray,
    var: np.ndarray,
    weights: Any,
    layout: dict | None,
    epoch: int,
    validation: dict[str, float],
) -> None:
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "input_dim": int(np.shape(mean)[-1]),
        "model_config": OmegaConf.to_container(cfg.model, resolve=True),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "labels": list(EMOTIONS),
        "normalisation": {"stream": stream, "mean": np.asarray(mean, np.float32),
                          "var": np.asarray(var, np.float32)},
        "per_utterance_cmvn": bool(cfg.regularization.per_utterance_cmvn),
        "layout": layout,
        "features": OmegaConf.to_container(cfg.features, resolve=True),
        "weights": weights,
        "epoch": epoch,
        "validation": validation,
    }
    with atomic_write(Path(path)) as f:
        torch.save(payload, f)


@dataclass
class Predictor:
    """A loaded checkpoint: the model in eval mode and how its inputs must be prepared."""

    model: EmotionClassifier
    labels: list[str]
    features: dict
    weights: Any
    mean: np.ndarray
    var: np.ndarray
    per_utterance_cmvn: bool
    layout: dict | None  # spectral block columns (what per-utterance CMVN normalises)
    checkpoint: dict


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Predictor:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a crema_exp best_model.pt (expected format {FORMAT})")
    model_cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), ckpt["model_config"])
    stream = ckpt["normalisation"]["stream"]  # a list of layers for a learned layer mix
    model = EmotionClassifier(ckpt["input_dim"], model_cfg, num_classes=len(ckpt["labels"]),
                              mixed_layers=len(stream) if isinstance(stream, list) else 0)
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    norm = ckpt["normalisation"]
    return Predictor(
        model=model,
        labels=list(ckpt["labels"]),
        features=ckpt["features"],
        weights=ckpt["weights"],
        mean=norm["mean"],
        var=norm["var"],
        per_utterance_cmvn=ckpt["per_utterance_cmvn"],
        layout=ckpt["layout"],
        checkpoint=ckpt,
    )
