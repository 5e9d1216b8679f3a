"""Stand-ins for the feature-store tests: a tiny wav corpus and deterministic fake extractors.

The fakes implement the FeatureKind protocol (crema_exp/features/kinds.py) so the store mechanics (key, chunks,
resume, consolidation, locking) are tested without the real log-mel or SSL code.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import soundfile as sf
from omegaconf import OmegaConf

from crema_exp.config import EMOTIONS, PrecomputeConfig

SAMPLE_RATE = 16000
HOP = 160  # fake spectral frames: 10 ms
SPLIT_OF_ACTOR = {1001: "train", 1002: "train", 1003: "train", 1004: "validation",
                  1005: "test", 1006: "test"}
_CODES = {"anger": "ANG", "disgust": "DIS", "fear": "FEA", "happy": "HAP", "neutral": "NEU",
          "sad": "SAD"}


def write_corpus(root: Path, emotions=EMOTIONS[:3], sentences=("DFA", "IEO"), seed=0):
    """Write short wav clips in the official naming and return a Corpus-like object."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for actor, split in SPLIT_OF_ACTOR.items():
        for sentence in sentences:
            for emotion in emotions:
                clip_id = f"{actor}_{sentence}_{_CODES[emotion]}_XX"
                duration = float(rng.uniform(0.3, 0.6))
                t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
                wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t)
                wave += 0.05 * rng.standard_normal(len(t))
                path = root / f"{clip_id}.wav"
                sf.write(path, wave.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
                rows.append(dict(path=str(path), clip_id=clip_id, actor=actor, sentence=sentence,
                                 emotion=emotion, level="XX", sex="Female", split=split,
                                 duration=len(t) / SAMPLE_RATE))
    manifest = pd.DataFrame(rows).sort_values("clip_id", ignore_index=True)
    return SimpleNamespace(manifest=manifest, skipped=pd.DataFrame(columns=["path", "reason"]),
                           root=root, layout="official")


def rewrite_clip(corpus, clip_id: str, wave: np.ndarray | None = None, raw: bytes | None = None):
    """Replace one clip's file (new audio, or raw bytes for a corrupt file)."""
    path = Path(corpus.manifest.set_index("clip_id").loc[clip_id, "path"])
    if raw is not None:
        path.write_bytes(raw)
    else:
        sf.write(path, wave.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return path


def make_cfg(tmp_path: Path, kind: str = "mel_prosody", num_workers: int | None = 1,
             feature_dir: str = "features"):
    cfg = OmegaConf.structured(PrecomputeConfig)
    cfg.paths.cache_dir = str(tmp_path / "cache")
    cfg.paths.feature_dir = str(tmp_path / feature_dir)
    cfg.features.kind = kind
    cfg.features.num_workers = num_workers
    if kind == "ssl":
        cfg.features.ssl.weights = "random"
    return cfg


@dataclass
class FakeExtractor:
    """Deterministic spectral-like features: per 10 ms frame [mean, std, min, max] (+ scale).

    Silent input gives NaN frames (to exercise the non-finite check). ``crash_after`` raises after
    that many calls (a simulated crash); ``calls_log`` records calls across processes; ``delay``
    slows each call (to make builds overlap).
    """

    scale: float = 1.0
    crash_after: int | None = None
    calls_log: str | None = None
    delay: float = 0.0
    calls: int = 0

    streams = ("spectral",)
    frame_rate = 100.0
    layout = {"mean_std": [0, 2], "min_max": [2, 4]}

    weights_identity = {"random": False}

    def identity(self) -> dict:
        return {"fake": "spectral", "scale": self.scale}

    def pool_workers(self, features_cfg) -> int:
        return int(features_cfg.num_workers or 1)

    def extract_many(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return [self.extract(wave) for wave in waves]

    def extract(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise RuntimeError("simulated crash")
        if self.calls_log:
            with open(self.calls_log, "a") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(self.delay)
        frames = wave[: len(wave) // HOP * HOP].reshape(-1, HOP)
        feats = np.stack([frames.mean(1), frames.std(1), frames.min(1), frames.max(1)], axis=1)
        if not np.any(wave):
            feats[:] = np.nan
        return {"spectral": (feats * self.scale).astype(np.float32)}


@dataclass
class FakeSSLExtractor:
    """SSL-like extractor: four 'layers' at 50 frames/s, each a different function of the wave.

    Like the real one, a call with any wave shorter than ``min_samples`` raises ValueError.
    """

    calls: int = 0
    min_samples: int = 400
    streams = ("layer_00", "layer_01", "layer_02", "layer_03")
    frame_rate = 50.0
    layout = None
    weights_identity = {"source": "random", "seed": 0, "random": True}

    def identity(self) -> dict:
        return {"fake": "ssl", "weights": self.weights_identity}

    def pool_workers(self, features_cfg) -> int:
        return 1

    def extract_many(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self.calls += 1
        out = []
        for index, wave in enumerate(waves):
            if len(wave) < self.min_samples:
                raise ValueError(f"clip {index}: {len(wave)} samples is too short")
            frames = wave[: len(wave) // 320 * 320].reshape(-1, 320).astype(np.float32)
            base = np.stack([frames.mean(1), frames.std(1), frames.max(1)], axis=1)
            out.append({s: base * (k + 1) + k for k, s in enumerate(self.streams)})
        return out


def store_files(root: Path) -> dict[str, bytes]:
    """Contents of every data file of a store (metadata.json differs by creation time)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in {".npy", ".csv", ".npz"}}
