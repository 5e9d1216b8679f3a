"""Tiny generated corpora for the data-layer tests (real CREMA-D names, synthetic audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from omegaconf import OmegaConf

from crema_exp.config import DataConfig, PrecomputeConfig

SAMPLES = Path(__file__).parent / "data" / "crema_d_samples"
CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


def tone(seconds: float = 0.6, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voiced-looking test signal: a sine plus a little noise, [samples] or [samples, channels]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(120, 250) * t) + 0.02 * rng.standard_normal(len(t))
    wave = wave.astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def write_wav(path: Path, wave: np.ndarray | None = None, rate: int = 16000,
              subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(rate=rate) if wave is None else wave, rate, subtype=subtype)
    return path


def write_official(root: Path, actors=range(1001, 1007), codes=CODES[:3], sentences=("DFA",),
                   sexes: dict[int, str] | None = None) -> list[str]:
    """root/AudioWAV/{actor}_{sentence}_{code}_XX.wav (+ VideoDemographics.csv); returns clip ids."""
    clip_ids = []
    for i, actor in enumerate(actors):
        for sentence in sentences:
            for code in codes:
                clip_id = f"{actor}_{sentence}_{code}_XX"
                write_wav(root / "AudioWAV" / f"{clip_id}.wav", tone(seed=i))
                clip_ids.append(clip_id)
    if sexes is not None:
        lines = ['"ActorID","Age","Sex","Race","Ethnicity"']
        lines += [f'{actor},30,"{sex}","Caucasian","Not Hispanic"' for actor, sex in sexes.items()]
        (root / "VideoDemographics.csv").write_text("\n".join(lines) + "\n")
    return sorted(clip_ids)


def data_cfg(root: Path | None = None, **overrides):
    """A DataConfig node for ``crema_d`` at ``root`` (dotted overrides, e.g. ``split__seed=3``)."""
    cfg = OmegaConf.structured(DataConfig)
    cfg.name = "crema_d"
    cfg.root = None if root is None else str(root)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key.replace("__", "."), value)
    return cfg


def paths_cfg(tmp_path: Path):
    """The paths node of a full config (its interpolations refer to ``paths.cache_dir``)."""
    cfg = OmegaConf.structured(PrecomputeConfig)
    cfg.paths.cache_dir = str(tmp_path / "cache")
    return cfg.paths
