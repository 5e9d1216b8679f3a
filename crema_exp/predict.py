"""Predict job: python -m crema_exp.predict checkpoint=best_model.pt inputs=FILE_OR_DIR [output=...]

The checkpoint alone is enough: it names the feature extractor (and SSL weights identity), the
normalisation and the model. An unreadable input is listed with its reason, never fatal; so is a
clip shorter than the training data's ``data.min_duration`` (training skipped those, so the model
never saw one). The job exits with status 1 when no input could be predicted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from crema_exp.cli_errors import user_errors
from crema_exp.config import FeaturesConfig
from crema_exp.data import AudioError, load_audio
from crema_exp.device import resolve_device
from crema_exp.features.frames import stored_frames
from crema_exp.features.kinds import make_extractor
from crema_exp.atomic import write_csv_atomic
from crema_exp.training.checkpoint import CheckpointError, Predictor, load_checkpoint

log = logging.getLogger(__name__)


def list_inputs(inputs: str | Path) -> list[Path]:
    path = Path(inputs)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".wav")
        if files:
            return files
        raise FileNotFoundError(f"{path}: folder holds no .wav files")
    raise FileNotFoundError(f"{path}: no such file or folder")


def build_extractor(predictor: Predictor):
    """The store's extractor, rebuilt from the checkpoint; SSL weights must be the same ones."""
    features_cfg = OmegaConf.merge(OmegaConf.structured(FeaturesConfig), predictor.features)
    extractor = make_extractor(features_cfg)
    # The "random" flag says how to read results, not which weights: compared without it.
    now, trained_on = (
        {k: v for k, v in (identity or {}).items() if k != "random"}
        for identity in (extractor.weights_identity, predictor.weights)
    )
    if now != trained_on:
        raise CheckpointError(
            f"feature weights differ from those the model was trained on: now {now}, "
            f"checkpoint {trained_on}"
        )
    return features_cfg, extractor


def extract_features(extractor, stream: str | list[str], path: Path, sample_rate: int,
                     min_duration: float = 0.0) -> np.ndarray:
    """[frames, dim] float16 ([frames, layers, dim] for a layer mix), as the store keeps them
    (same checks as the store builder)."""
    wave = load_audio(path, sample_rate=sample_rate)
    if wave.size < min_duration * sample_rate:
        raise AudioError(path, f"too short ({wave.size / sample_rate:.3f} s < data.min_duration "
                               f"{min_duration:g} s of the model's training data)")
    out = extractor.extract_many([wave])[0]
    if isinstance(stream, list):
        return np.stack([stored_frames(out[s], s) for s in stream], axis=1)
    return stored_frames(out[stream], stream)


@torch.no_grad()
def classify(predictor: Predictor, clips: list[np.ndarray], device: torch.device) -> np.ndarray:
    """Class probabilities [clips, classes] for stored-like frame arrays (prepared as in training)."""
    lengths = torch.tensor([len(c) for c in clips])
    flat = torch.from_numpy(np.concatenate(clips)).to(device)
    frames = predictor.transform.batch(flat, lengths)
    return torch.softmax(predictor.model(frames, lengths).float(), dim=1).cpu().numpy()


def predict(checkpoint: str | Path, inputs: str | Path, device: str = "auto",
            batch_size: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions: clip, path, predicted, p_<emotion>...; skipped: path, reason)."""
    torch_device = resolve_device(device, "device")
    predictor = load_checkpoint(checkpoint, torch_device)
    features_cfg, extractor = build_extractor(predictor)
    stream = predictor.transform.stream
    min_duration = predictor.checkpoint.get("config", {}).get("data", {}).get("min_duration", 0.0)
    paths, clips, skipped = [], [], []
    for path in list_inputs(inputs):
        try:
            clips.append(extract_features(extractor, stream, path, features_cfg.sample_rate,
                                          min_duration))
            paths.append(path)
        except (AudioError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, AudioError) else str(exc)
            log.warning("skipped %s: %s", path, reason)
            skipped.append({"path": str(path), "reason": reason})
    probabilities = np.zeros((0, len(predictor.labels)), np.float32)
    if clips:
        # sorted by length so each batch pads little; results are put back in input order
        order = np.argsort([len(c) for c in clips], kind="stable")
        probabilities = np.empty((len(clips), len(predictor.labels)), np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            probabilities[chosen] = classify(predictor, [clips[i] for i in chosen], torch_device)
    predictions = pd.DataFrame(
        {
            "clip": [p.stem for p in paths],
            "path": [str(p) for p in paths],
            "predicted": [predictor.labels[i] for i in probabilities.argmax(axis=1)],
            **{f"p_{name}": probabilities[:, i] for i, name in enumerate(predictor.labels)},
        }
    )
    return predictions, pd.DataFrame(skipped, columns=["path", "reason"])


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
@user_errors
def main(cfg: DictConfig) -> None:
    predictions, skipped = predict(cfg.checkpoint, cfg.inputs, cfg.device, cfg.batch_size)
    output = Path(cfg.output)
    write_csv_atomic(output, predictions)
    log.info("%d clip(s) predicted -> %s", len(predictions), output)
    if len(skipped):
        skipped_path = output.with_name(f"{output.stem}_skipped.csv")
        write_csv_atomic(skipped_path, skipped)
        log.warning("%d unreadable clip(s) listed in %s", len(skipped), skipped_path)
    if predictions.empty:
        log.error("no input could be predicted (%s)", cfg.inputs)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
