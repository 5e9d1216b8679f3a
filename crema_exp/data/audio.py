"""Reading clips as 16 kHz mono float32, and checking that a clip is usable before any work starts.

Audio goes through soundfile (libsndfile) only; resampling uses torchaudio's windowed-sinc
``resample``. Stereo, 44.1 kHz or 8-bit files are fine: they are down-mixed and resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

# Peak below this (about -80 dBFS, ~3 LSB of 16-bit audio) counts as a silent clip.
SILENCE_PEAK = 1e-4
_WAVE_MAGIC = (b"RIFF", b"RIFX", b"RF64")


class AudioError(Exception):
    """A clip that cannot be used; ``reason`` is short and fit for a skipped-clips report."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class ClipInfo:
    duration: float  # seconds of decoded audio
    sample_rate: int
    channels: int
    peak: float  # largest absolute sample value


def _starts_like_wave(path: Path) -> bool:
    """Whether the file begins like a WAV container: tells a damaged clip from a non-audio file."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) in _WAVE_MAGIC
    except OSError:
        return False


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Decode every channel as float32 [samples, channels]; unreadable files raise AudioError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(path, f"cannot open ({exc.strerror})") from exc
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except sf.SoundFileError as exc:
        kind = "corrupt or truncated header" if _starts_like_wave(path) else "not an audio file"
        raise AudioError(path, f"{kind} (libsndfile: {exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(path, "no audio samples")
    return data, rate


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Return mono float32 [samples] at ``sample_rate``; raise AudioError if unreadable."""
    data, rate = _read(Path(path))
    mono = data.mean(axis=1, dtype=np.float32)
    if rate != sample_rate:
        mono = AF.resample(torch.from_numpy(mono), rate, sample_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


def measure_clip(path: str | Path) -> ClipInfo:
    """Decode the clip once and measure it; unreadable files raise AudioError."""
    data, rate = _read(Path(path))
    return ClipInfo(duration=data.shape[0] / rate, sample_rate=rate, channels=data.shape[1],
                    peak=float(np.max(np.abs(data))))


def check_clip(path: str | Path, info: ClipInfo, min_duration: float = 0.0) -> ClipInfo:
    """Reject a measured clip that would spoil training: silent or too short."""
    if info.duration < min_duration:
        raise AudioError(
            path, f"too short ({info.duration:.3f} s < data.min_duration {min_duration:g} s)")
    if info.peak < SILENCE_PEAK:
        raise AudioError(path, f"silent (peak {info.peak:.1e} < {SILENCE_PEAK:g})")
    return info


def inspect_clip(path: str | Path, min_duration: float = 0.0) -> ClipInfo:
    """Decode the clip once; reject what would spoil training: unreadable, silent or too short."""
    return check_clip(path, measure_clip(path), min_duration)
