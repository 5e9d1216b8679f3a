"""Per-dimension feature statistics from the training split, merged chunk by chunk.

The store is built in chunks (and may be resumed), so the statistics are accumulated per chunk and
combined with Chan et al.'s pairwise update in float64: the result does not depend on how the frames
were grouped, and summing millions of float16 frames does not lose precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RunningMoments:
    """Count, mean and sum of squared deviations (M2) of a set of frames, per feature dimension."""

    count: int
    mean: np.ndarray  # float64 [D]
    m2: np.ndarray  # float64 [D]

    @classmethod
    def empty(cls, dim: int) -> "RunningMoments":
        return cls(0, np.zeros(dim, np.float64), np.zeros(dim, np.float64))

    @classmethod
    def from_frames(cls, frames: np.ndarray) -> "RunningMoments":
        """Moments of a [frames, dim] array (any float dtype), computed in float64."""
        x = np.asarray(frames, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"expected a [frames, dim] array, got shape {x.shape}")
        if len(x) == 0:
            return cls.empty(x.shape[1])
        mean = x.mean(axis=0)
        return cls(len(x), mean, np.square(x - mean).sum(axis=0))

    def merge(self, other: "RunningMoments") -> "RunningMoments":
        """Moments of the union of both frame sets (Chan, Golub & LeVeque pairwise update)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + np.square(delta) * (self.count * other.count / count)
        return RunningMoments(count, mean, m2)

    @property
    def variance(self) -> np.ndarray:
        """Population variance (ddof=0), the same as ``np.var`` over all frames."""
        if self.count == 0:
            raise ValueError("variance of an empty frame set is undefined")
        return self.m2 / self.count


def save_normalisation(file, moments: dict[str, RunningMoments]) -> None:
    """Write ``<stream>.mean``, ``<stream>.var`` (float32), ``<stream>.count`` to an open file."""
    arrays = {}
    for stream, m in moments.items():
        arrays[f"{stream}.mean"] = m.mean.astype(np.float32)
        arrays[f"{stream}.var"] = m.variance.astype(np.float32)
        arrays[f"{stream}.count"] = np.int64(m.count)
    np.savez(file, **arrays)


def load_normalisation(path: Path, stream: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean, var) float32 [D] of one stream from a normalisation.npz file."""
    with np.load(path) as stats:
        key = f"{stream}.mean"
        if key not in stats:
            stored = sorted({name.rsplit(".", 1)[0] for name in stats.files})
            raise KeyError(f"{path}: no statistics for stream {stream!r}; stored: {stored}")
        return stats[key], stats[f"{stream}.var"]
