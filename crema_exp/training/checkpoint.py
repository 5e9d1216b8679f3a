"""best_model.pt: everything needed to predict from the file alone.

It holds the (EMA) weights, the model config, the resolved train config, the label order, the
input transform (stream, normalisation, per-utterance CMVN, layout), and the feature config and
weights identity, so predict can rebuild the extractor and prepare frames exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from crema_exp.config import EMOTIONS, ModelConfig
from crema_exp.atomic import atomic_write
from crema_exp.models import EmotionClassifier
from crema_exp.training.input_transform import InputTransform

FORMAT = "crema_exp.best_model/2"  # 2: one "input_transform" entry


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    *,
    cfg: DictConfig,
    transform: InputTransform,
    weights: Any,
    epoch: int,
    validation: dict[str, float],
) -> None:
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "input_dim": transform.dim,
        "model_config": OmegaConf.to_container(cfg.model, resolve=True),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "labels": list(EMOTIONS),
        "input_transform": transform.to_dict(),
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
    transform: InputTransform
    checkpoint: dict


class CheckpointError(ValueError):
    """A file that is not a readable crema_exp checkpoint, or one that does not fit the inputs."""


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Predictor:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a crema_exp best_model.pt (expected format {FORMAT})")
    model_cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), ckpt["model_config"])
    transform = InputTransform.from_dict(ckpt["input_transform"])
    model = EmotionClassifier(ckpt["input_dim"], model_cfg, num_classes=len(ckpt["labels"]),
                              mixed_layers=transform.layers)  # >0 for a learned layer mix
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return Predictor(
        model=model,
        labels=list(ckpt["labels"]),
        features=ckpt["features"],
        weights=ckpt["weights"],
        transform=transform,
        checkpoint=ckpt,
    )
