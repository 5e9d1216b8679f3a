"""Log-mel features with optional deltas, delta-deltas and NCCF pitch (kinds mel_prosody, mel).

One clip becomes one ``"spectral"`` stream of ``[T, D]`` float32 frames, ``T = 1 + len // hop``
(centred frames). Columns are blocks named in ``layout``: ``logmel``, ``delta``, ``delta_delta``
(each ``n_mels`` wide, the same mel bins in the same order, so SpecAugment can mask a bin in all
of them) and ``pitch``, present only when enabled, whose columns are ``PITCH_COLUMNS``:
  * ``voicing``: Kaldi's probability of voicing (soft, from the frame's best NCCF peak);
  * ``voiced``: 1.0 where the pitch tracker's Viterbi path calls the frame voiced, else 0.0;
  * ``log_f0``: natural log of F0 in Hz, continuous (interpolated through unvoiced frames);
  * ``log_f0_norm``: log_f0 less the clip's mean over its voiced frames: the intonation without
    the speaker's register, for actor-disjoint tests (per-utterance CMVN leaves pitch alone);
  * ``delta_log_f0``: its delta (the same for both log-F0 columns).
``kind`` only names the recipe: the content follows the ``deltas``/``delta_delta``/
``pitch.enabled`` flags (conf/features/mel.yaml turns them all off for log-mel alone).

Choices (all part of ``identity()``, so changing one makes a new feature store):
  * power mel spectrogram, Hann window of win_ms, n_fft = next power of two, HTK mel scale,
    f_min 20 Hz (below, only rumble), f_max = Nyquist;
  * log(mel + 1e-6): the floor sits around the int16 quantisation noise of a 25 ms frame, so
    digital silence gives a finite, constant value instead of -inf;
  * deltas with torchaudio's compute_deltas, win_length 5 (+-2 frames, as Kaldi's add-deltas).

The extractor holds only plain numbers (it is pickled into a process pool); the torch transform is
built on first use in each process. ``extract`` runs torch on one thread: the pool parallelises.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF

from crema_exp.features.pitch import LOWPASS_HZ, estimate_pitch, normalised_log_f0

SPECTRAL_KINDS = ("mel_prosody", "mel")
F_MIN_HZ = 20.0
LOG_FLOOR = 1e-6
DELTA_WIN = 5
PITCH_COLUMNS = ("voicing", "voiced", "log_f0", "log_f0_norm", "delta_log_f0")
# Bump when the computation changes in a way the parameters in identity() do not capture.
ALGORITHM_VERSION = 2


class SpectralExtractor:
    """Waveform -> {"spectral": [T, D] float32} for the spectral feature kinds."""

    streams = ["spectral"]
    weights_identity = {"random": False}  # no learned weights

    def __init__(self, features_cfg):
        if features_cfg.kind not in SPECTRAL_KINDS:
            raise ValueError(f"features.kind={features_cfg.kind!r}: SpectralExtractor handles "
                             f"{', '.join(SPECTRAL_KINDS)}")
        self.sample_rate = int(features_cfg.sample_rate)
        self.n_mels = int(features_cfg.n_mels)
        self.win_length = _samples(features_cfg.win_ms, self.sample_rate, "features.win_ms")
        self.hop_length = _samples(features_cfg.hop_ms, self.sample_rate, "features.hop_ms")
        if self.hop_length > self.win_length:
            raise ValueError(f"features.hop_ms={features_cfg.hop_ms} exceeds features.win_ms="
                             f"{features_cfg.win_ms}: frames would skip samples")
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        self.deltas = bool(features_cfg.deltas)
        self.delta_delta = bool(features_cfg.delta_delta)
        self.pitch = bool(features_cfg.pitch.enabled)
        self.fmin = float(features_cfg.pitch.fmin)
        self.fmax = float(features_cfg.pitch.fmax)
        if self.pitch and not 0 < self.fmin < self.fmax < LOWPASS_HZ:
            raise ValueError(f"features.pitch.fmin={self.fmin}, fmax={self.fmax}: pitch needs "
                             f"0 < fmin < fmax < {LOWPASS_HZ:g} Hz")
        self._mel = None  # built lazily, per process

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def layout(self) -> dict[str, list[int]]:
        """[start, end) columns of each enabled block, in output order."""
        widths = {"logmel": self.n_mels}
        if self.deltas:
            widths["delta"] = self.n_mels
        if self.delta_delta:
            widths["delta_delta"] = self.n_mels
        if self.pitch:
            widths["pitch"] = len(PITCH_COLUMNS)
        layout, start = {}, 0
        for name, width in widths.items():
            layout[name] = [start, start + width]
            start += width
        return layout

    def identity(self) -> dict:
        """Every parameter that changes the output (part of the feature store key)."""
        return {
            "extractor": "spectral",
            "version": ALGORITHM_VERSION,
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "win_length": self.win_length,
            "hop_length": self.hop_length,
            "n_fft": self.n_fft,
            "f_min": F_MIN_HZ,
            "log_floor": LOG_FLOOR,
            "delta_win": DELTA_WIN,
            "layout": self.layout,
            "pitch": ({"fmin": self.fmin, "fmax": self.fmax, "columns": list(PITCH_COLUMNS)}
                      if self.pitch else None),
        }

    def extract(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """{"spectral": [1 + len(wave) // hop, D] float32} for one mono waveform at sample_rate."""
        wave = self._checked(wave)
        with _single_thread(), torch.inference_mode():
            logmel = torch.log(self._transform()(torch.from_numpy(wave)) + LOG_FLOOR)  # [F, T]
            blocks = [logmel]
            if self.deltas or self.delta_delta:
                delta = AF.compute_deltas(logmel, win_length=DELTA_WIN)
                if self.deltas:
                    blocks.append(delta)
                if self.delta_delta:
                    blocks.append(AF.compute_deltas(delta, win_length=DELTA_WIN))
            if self.pitch:
                blocks.append(self._pitch(wave))
            frames = torch.cat(blocks, dim=0).T
        return {"spectral": np.ascontiguousarray(frames.numpy(), dtype=np.float32)}

    def extract_many(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return [self.extract(wave) for wave in waves]

    def pool_workers(self, features_cfg) -> int:
        """``features.num_workers`` processes (null = every core): one clip is one thread's work."""
        return int(features_cfg.num_workers or os.cpu_count() or 1)

    @staticmethod
    def select_stream(features_cfg, streams, where: str) -> str:
        return "spectral"

    def _pitch(self, wave: np.ndarray) -> torch.Tensor:
        """[len(PITCH_COLUMNS), T], in the order of PITCH_COLUMNS."""
        track = estimate_pitch(wave, self.sample_rate, self.hop_length, self.fmin, self.fmax)
        log_f0 = np.log(track.f0)
        delta = AF.compute_deltas(torch.from_numpy(log_f0)[None], win_length=DELTA_WIN)[0]
        columns = {
            "voicing": torch.from_numpy(track.voicing),
            "voiced": torch.from_numpy(track.voiced.astype(np.float32)),
            "log_f0": torch.from_numpy(log_f0),
            "log_f0_norm": torch.from_numpy(normalised_log_f0(log_f0, track.voiced)),
            "delta_log_f0": delta,
        }
        return torch.stack([columns[name] for name in PITCH_COLUMNS])

    def _checked(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"expected a mono waveform [samples], got shape {wave.shape}")
        # Centred frames reflect-pad n_fft // 2 samples at each edge, which needs that many more.
        if wave.size <= self.n_fft // 2:
            raise ValueError(f"waveform of {wave.size} samples is too short: spectral features "
                             f"need more than {self.n_fft // 2}")
        if not np.isfinite(wave).all():
            raise ValueError("waveform contains NaN or infinite samples")
        return np.ascontiguousarray(wave, dtype=np.float32)

    def _transform(self) -> torchaudio.transforms.MelSpectrogram:
        if self._mel is None:
            self._mel = mel_spectrogram(self.sample_rate, self.n_fft, self.win_length,
                                        self.hop_length, self.n_mels)
        return self._mel

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mel": None}


def mel_spectrogram(sample_rate: int, n_fft: int, win_length: int, hop_length: int,
                    n_mels: int) -> torchaudio.transforms.MelSpectrogram:
    """The power mel spectrogram behind the log-mel block (centred frames, Hann window)."""
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
        f_min=F_MIN_HZ, f_max=sample_rate / 2, n_mels=n_mels, power=2.0, center=True,
        pad_mode="reflect", mel_scale="htk")


def _samples(ms: float, sample_rate: int, key: str) -> int:
    samples = ms * sample_rate / 1000
    if samples < 1 or abs(samples - round(samples)) > 1e-6:
        raise ValueError(f"{key}={ms}: not a whole, positive number of samples at {sample_rate} Hz")
    return round(samples)


@contextmanager
def _single_thread():
    """Run torch on one thread, restoring the caller's setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
