"""NCCF pitch tracker in the spirit of Kaldi's pitch (torchaudio dropped compute_kaldi_pitch).

Per frame, the normalised cross-correlation function (NCCF) between a window and its lagged copy
is computed for every lag between 1/fmax and 1/fmin, on a signal low-passed at 1 kHz and
resampled to 8 kHz (pitch needs no high frequencies, and fewer samples make it fast). All frames
are handled at once with FFT correlations, no Python loop over frames. Each local NCCF peak is
refined by parabolic interpolation; the best one wins, after a small Praat-style octave cost that
prefers the shorter of equally good lags (a periodic signal is not read at half its pitch).
Voicing is Kaldi's probability-of-voicing function of the winning peak's NCCF. The log-F0 contour
is interpolated through unvoiced frames and median-smoothed, so it is continuous like Kaldi's;
clips with no voiced frame get the geometric centre of the search range.

Frame ``t`` is centred on sample ``t * hop_length`` of the input, ``1 + len // hop_length`` frames:
the same grid as a ``center=True`` spectrogram.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio.functional as AF
from scipy.ndimage import median_filter

# Sample rate the correlation runs at; 8 kHz keeps 0.125 ms lag steps (5 % of a 400 Hz period
# before parabolic refinement) at a quarter of the 16 kHz cost of the correlations.
ANALYSIS_RATE = 8000
# Low-pass cut-off applied while resampling (as Kaldi's 1 kHz): higher frequencies carry formants
# rather than pitch and only sharpen spurious NCCF peaks.
LOWPASS_HZ = 1000.0
# Preference for shorter lags per octave of lag (Praat's "octave cost").
OCTAVE_COST = 0.02
# Voicing (probability of voicing) at which a frame counts as voiced for the log-F0 contour.
VOICED_THRESHOLD = 0.5
# Width in frames of the median filter on the log-F0 contour (removes isolated octave jumps).
MEDIAN_FRAMES = 5


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred analysis: the frame count of torchaudio's ``center=True`` spectrogram."""
    return 1 + num_samples // hop_length


def nccf_to_voicing(nccf: torch.Tensor) -> torch.Tensor:
    """Kaldi's probability of voicing (``NccfToPov`` in pitch-functions.cc), in [0, 1]."""
    n = nccf.abs().clamp(max=1.0)
    r = (-5.2 + 5.4 * torch.exp(7.5 * (n - 1.0)) + 4.8 * n - 2.0 * torch.exp(-10.0 * n)
         + 4.2 * torch.exp(20.0 * (n - 1.0)))
    return torch.sigmoid(r)


def estimate_pitch(
    wave: np.ndarray,
    sample_rate: int,
    hop_length: int,
    fmin: float,
    fmax: float,
    *,
    window_ms: float = 25.0,
    octave_cost: float = OCTAVE_COST,
    voiced_threshold: float = VOICED_THRESHOLD,
    median_frames: int = MEDIAN_FRAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 contour in Hz and voicing in [0, 1], both float32 [1 + len(wave) // hop_length].

    The F0 contour is continuous: through unvoiced frames it is interpolated (in log-F0) between
    the neighbouring voiced frames, and held at the ends; a clip without any voiced frame gets
    sqrt(fmin * fmax) everywhere. Every value lies in [fmin, fmax].
    """
    if not 0 < fmin < fmax:
        raise ValueError(f"pitch range must satisfy 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if fmax >= LOWPASS_HZ:
        raise ValueError(f"fmax={fmax} Hz: pitch is analysed below {LOWPASS_HZ:g} Hz")
    samples = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    if samples.ndim != 1 or samples.numel() == 0:
        raise ValueError(f"pitch needs a non-empty mono waveform, got shape {tuple(samples.shape)}")

    rate = ANALYSIS_RATE
    signal = _analysis_signal(samples, sample_rate)
    frames = num_frames(samples.numel(), hop_length)
    centres = torch.round(torch.arange(frames, dtype=torch.float64) * hop_length * rate
                          / sample_rate).long()
    window = max(2, round(window_ms * rate / 1000))
    min_lag = max(2, math.floor(rate / fmax))
    max_lag = math.ceil(rate / fmin)
    nccf = _nccf(signal, centres, window, min_lag - 1, max_lag + 1)  # one guard lag each side
    lag, peak = _pick_lags(nccf, min_lag - 1, octave_cost)

    f0 = (rate / lag).clamp(fmin, fmax)
    voicing = nccf_to_voicing(peak.clamp(0.0, 1.0))
    log_f0 = _continuous_log_f0(f0.log().numpy(), voicing.numpy() >= voiced_threshold,
                                math.log(math.sqrt(fmin * fmax)), median_frames)
    return np.exp(log_f0).astype(np.float32), voicing.numpy().astype(np.float32)


def _analysis_signal(samples: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The signal at ANALYSIS_RATE, through resample's windowed-sinc low-pass set to LOWPASS_HZ.

    (torchaudio returns a signal already at that rate untouched, so 8 kHz input is not low-passed.)
    """
    rolloff = 2 * LOWPASS_HZ / min(sample_rate, ANALYSIS_RATE)  # fraction of the lower Nyquist
    return AF.resample(samples, sample_rate, ANALYSIS_RATE, rolloff=rolloff)


def _nccf(signal: torch.Tensor, centres: torch.Tensor, window: int, first_lag: int,
          last_lag: int) -> torch.Tensor:
    """NCCF [frames, lags] for lags first_lag..last_lag, each frame's segment centred on its centre.

    Segment = window + last_lag samples (zero-padded at the clip edges), mean removed as in Kaldi;
    nccf[l] = <x[0:W], x[l:l+W]> / sqrt(|x[0:W]|^2 |x[l:l+W]|^2).
    """
    span = window + last_lag
    half = span // 2
    padded = torch.nn.functional.pad(signal, (half, span))
    segments = padded[centres[:, None] + torch.arange(span)[None, :]]
    segments = segments - segments.mean(dim=1, keepdim=True)

    n_fft = 1 << (span - 1).bit_length()  # >= span: the correlation never wraps around
    spectrum = torch.fft.rfft(segments, n_fft)
    reference = torch.fft.rfft(segments[:, :window], n_fft)
    lags = slice(first_lag, last_lag + 1)
    products = torch.fft.irfft(spectrum * reference.conj(), n_fft)[:, lags]

    energy = torch.nn.functional.pad(torch.cumsum(segments.square(), dim=1), (1, 0))
    lagged_energy = energy[:, window + first_lag: window + last_lag + 1] - energy[:, lags]
    norms = energy[:, window:window + 1] * lagged_energy
    # Ballast far below the clip's typical segment energy: digital silence gets NCCF 0, not 0/0.
    floor = 1e-12 * energy[:, -1].mean().square() + torch.finfo(torch.float32).tiny
    return products / torch.sqrt(norms.clamp_min(0.0) + floor)


def _pick_lags(nccf: torch.Tensor, first_lag: int, octave_cost: float):
    """Per frame: refined lag (samples) and NCCF at the best local peak, guard lags excluded.

    Every local maximum is refined by parabolic interpolation first, so candidates compete with
    their interpolated heights (a sharp peak between two integer lags is not undervalued).
    """
    left, mid, right = nccf[:, :-2], nccf[:, 1:-1], nccf[:, 2:]
    is_peak = (mid >= left) & (mid >= right)
    curvature = left - 2.0 * mid + right
    concave = curvature < 0
    offset = torch.where(concave, 0.5 * (left - right) / torch.where(concave, curvature, -1.0),
                         torch.zeros_like(mid)).clamp(-0.5, 0.5)
    height = mid - 0.25 * (left - right) * offset
    lags = torch.arange(first_lag + 1, first_lag + 1 + mid.shape[1], dtype=nccf.dtype)
    score = height - octave_cost * torch.log2(lags / lags[0])
    score = torch.where(is_peak, score, torch.full_like(score, -math.inf))
    best = torch.where(is_peak.any(dim=1), score.argmax(dim=1), mid.argmax(dim=1))
    rows = torch.arange(nccf.shape[0])
    return lags[best] + offset[rows, best], height[rows, best]


def _continuous_log_f0(log_f0: np.ndarray, voiced: np.ndarray, fallback: float,
                       median_frames: int) -> np.ndarray:
    """Log-F0 of voiced frames, linearly interpolated through the rest, then median-smoothed."""
    if not voiced.any():
        return np.full_like(log_f0, fallback)
    frames = np.arange(log_f0.size)
    contour = np.interp(frames, frames[voiced], log_f0[voiced])
    if median_frames > 1:
        contour = median_filter(contour, size=median_frames, mode="nearest")
    return contour
