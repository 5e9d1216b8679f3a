"""NCCF pitch tracker in the spirit of Kaldi's pitch (torchaudio dropped compute_kaldi_pitch).

Per frame, the normalised cross-correlation function (NCCF) between a window and its lagged copy
is computed for every lag between 1/fmax and 1/fmin, on a signal low-passed at 1 kHz and
resampled to 8 kHz (pitch needs no high frequencies, and fewer samples make it fast). All frames
are handled at once with FFT correlations, no Python loop over frames. Each local NCCF peak is
refined by parabolic interpolation and becomes a candidate, after a small Praat-style octave cost
that prefers the shorter of equally good lags (a periodic signal is not read at half its pitch).

Voiced or not is decided along a whole utterance, as Praat's path finder (Boersma 1993) does: a
Viterbi path over every frame's candidates plus one "unvoiced" candidate, with a cost for octave
jumps between voiced frames and for each voiced/unvoiced switch. A per-frame threshold on the NCCF
does not hold on real voices: jitter, breathiness and creak keep the NCCF of plainly voiced
frames at 0.4-0.8, where a threshold high enough to reject noise drops most of the voice. On the
path, such frames stay voiced when their neighbours are, an isolated noise peak stays unvoiced, and
the octave-jump cost keeps the F0 track on one period instead of hopping to its multiples.
The "unvoiced" candidate grows stronger in quiet frames (Praat's silence threshold, and the
recording's room noise, whose NCCF on a quiet take is as high as a soft voice's); a frame's level
is measured on the input signal with the mel frame's taper and centre.

Outputs per frame: F0 along the path (log-F0 interpolated through unvoiced frames and held at the
ends, so the contour is continuous like Kaldi's; a clip with no voiced frame gets the geometric
centre of the search range), the voiced decision, and Kaldi's soft probability of voicing
(``NccfToPov``) of the frame's best candidate.

Frame ``t`` is centred on sample ``t * hop_length`` of the input, ``1 + len // hop_length`` frames:
the same grid as a ``center=True`` spectrogram; the NCCF's reference window is centred there too.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torchaudio.functional as AF

# Sample rate the correlation runs at; 8 kHz keeps 0.125 ms lag steps (5 % of a 400 Hz period
# before parabolic refinement) at a quarter of the 16 kHz cost of the correlations.
ANALYSIS_RATE = 8000
# Low-pass cut-off applied while resampling (as Kaldi's 1 kHz): higher frequencies carry formants
# rather than pitch and only sharpen spurious NCCF peaks.
LOWPASS_HZ = 1000.0
# Preference for shorter lags per octave of lag (Praat's "octave cost").
OCTAVE_COST = 0.02
# NCCF strength of the "unvoiced" candidate: a voiced candidate must beat it, before transition
# costs. Calibrated on the 35 real CREMA-D clips of ../shared/crema-d/samples with
# benchmarks/voicing_real_clips.py (Praat's 0.45 suits its own, differently normalised
# autocorrelation): at 0.35 every clip has >= 77 % of its speech frames voiced (Praat: 18-80 %),
# no frame of room noise nor of white noise is, and F0 differs from Praat's by > 20 % in under 5 %
# of the frames both call voiced.
VOICING_THRESHOLD = 0.35
# Frames whose RMS lies this far below the clip's loudest frame lean towards unvoiced (Praat's
# silence threshold, 0.03 of the peak amplitude: about -30 dB).
SILENCE_THRESHOLD = 0.03
# The clip's noise floor: the frame level this fraction of frames lies below, but at least
# NOISE_FLOOR_BELOW_PEAK_DB under the loudest frame (a clip that is voice throughout has no floor);
# frames less than NOISE_MARGIN_DB above it lean towards unvoiced.
NOISE_FLOOR_QUANTILE = 0.1
NOISE_FLOOR_BELOW_PEAK_DB = 20.0
NOISE_MARGIN_DB = 6.0
# Path costs per 10 ms step (Praat's defaults): each switch between voiced and unvoiced, and each
# octave of F0 change between consecutive voiced frames.
VOICED_UNVOICED_COST = 0.14
OCTAVE_JUMP_COST = 0.35
# Candidates per frame kept for the path (the strongest NCCF peaks).
MAX_CANDIDATES = 8


class PitchTrack(NamedTuple):
    """Per-frame pitch of one clip, each float32 (``voiced`` bool) [1 + len // hop_length]."""

    f0: np.ndarray  # Hz, continuous, within [fmin, fmax]
    voicing: np.ndarray  # Kaldi's probability of voicing of the frame's best NCCF peak, [0, 1]
    voiced: np.ndarray  # the voiced decision of the Viterbi path


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred analysis: the frame count of torchaudio's ``center=True`` spectrogram."""
    return 1 + num_samples // hop_length


def nccf_to_voicing(nccf: torch.Tensor) -> torch.Tensor:
    """Kaldi's probability of voicing (``NccfToPov`` in pitch-functions.cc), in [0, 1]."""
    n = nccf.abs().clamp(max=1.0)
    r = (-5.2 + 5.4 * torch.exp(7.5 * (n - 1.0)) + 4.8 * n - 2.0 * torch.exp(-10.0 * n)
         + 4.2 * torch.exp(20.0 * (n - 1.0)))
    return torch.sigmoid(r)


def normalised_log_f0(log_f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Log-F0 minus the clip's mean log-F0 over its voiced frames: the pitch movement alone.

    A speaker's register (and most of the gender difference) is a constant offset in log-F0;
    removing it per utterance leaves the intonation, which is what an emotion changes. (Kaldi
    subtracts a 1.5 s moving-window mean instead; a CREMA-D clip is a single 2-3 s sentence, where
    the two hardly differ.) A clip without voiced frames gets zeros.
    """
    log_f0 = np.asarray(log_f0, dtype=np.float32)
    if not voiced.any():
        return np.zeros_like(log_f0)
    return log_f0 - np.float32(log_f0[voiced].mean(dtype=np.float64))


def estimate_pitch(
    wave: np.ndarray,
    sample_rate: int,
    hop_length: int,
    fmin: float,
    fmax: float,
    *,
    window_ms: float = 25.0,
    octave_cost: float = OCTAVE_COST,
    voicing_threshold: float = VOICING_THRESHOLD,
) -> PitchTrack:
    """F0 (Hz), probability of voicing and voiced decision per frame of a centred analysis.

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
    lags, heights, strengths = _candidates(nccf, min_lag - 1, octave_cost)

    rms = _frame_rms(samples, hop_length, max(2, round(window_ms * sample_rate / 1000)))
    unvoiced = _unvoiced_strength(rms, voicing_threshold)
    step_correction = 0.01 * sample_rate / hop_length  # costs are per 10 ms
    log_f0 = torch.log(rate / lags).clamp(math.log(fmin), math.log(fmax))
    path = _viterbi(strengths.numpy(), unvoiced.numpy(), log_f0.numpy() / math.log(2.0),
                    VOICED_UNVOICED_COST * step_correction, OCTAVE_JUMP_COST * step_correction)
    voiced = path < lags.shape[1]
    chosen = log_f0.numpy()[np.arange(frames), np.minimum(path, lags.shape[1] - 1)]
    contour = _continuous_log_f0(chosen, voiced, math.log(math.sqrt(fmin * fmax)))
    voicing = nccf_to_voicing(heights[:, 0].clamp(0.0, 1.0))
    return PitchTrack(np.exp(contour).astype(np.float32), voicing.numpy().astype(np.float32),
                      voiced)


def _analysis_signal(samples: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The signal at ANALYSIS_RATE, through resample's windowed-sinc low-pass set to LOWPASS_HZ.

    (torchaudio returns a signal already at that rate untouched, so 8 kHz input is not low-passed.)
    """
    rolloff = 2 * LOWPASS_HZ / min(sample_rate, ANALYSIS_RATE)  # fraction of the lower Nyquist
    return AF.resample(samples, sample_rate, ANALYSIS_RATE, rolloff=rolloff)


def _nccf(signal: torch.Tensor, centres: torch.Tensor, window: int, first_lag: int,
          last_lag: int) -> torch.Tensor:
    """NCCF [frames, lags] for lags first_lag..last_lag.

    The reference window x[0:W] is centred on the frame centre (as the mel frame is); the segment
    runs on to W + last_lag samples, zero-padded at the clip edges. Each window has its own mean
    removed (a Pearson correlation per lag): with one mean for the whole segment, as Kaldi has,
    a silent window just before a loud onset takes on the onset's offset and correlates with it.
    nccf[l] = <a - mean(a), b - mean(b)> / (|a - mean(a)| |b - mean(b)|), a = x[0:W], b = x[l:l+W].
    """
    span = window + last_lag
    half = window // 2
    padded = torch.nn.functional.pad(signal, (half, span))
    segments = padded[centres[:, None] + torch.arange(span)[None, :]]
    segments = segments - segments.mean(dim=1, keepdim=True)  # conditioning only
    reference = segments[:, :window] - segments[:, :window].mean(dim=1, keepdim=True)

    n_fft = 1 << (span - 1).bit_length()  # >= span: the correlation never wraps around
    products = torch.fft.irfft(torch.fft.rfft(segments, n_fft)
                               * torch.fft.rfft(reference, n_fft).conj(), n_fft)
    lags = slice(first_lag, last_lag + 1)
    products = products[:, lags]  # <a - mean(a), b> = <a - mean(a), b - mean(b)>

    sums = torch.nn.functional.pad(torch.cumsum(segments, dim=1), (1, 0))
    squares = torch.nn.functional.pad(torch.cumsum(segments.square(), dim=1), (1, 0))
    ends = slice(window + first_lag, window + last_lag + 1)
    lagged_energy = (squares[:, ends] - squares[:, lags]
                     - (sums[:, ends] - sums[:, lags]).square() / window)
    reference_energy = reference.square().sum(dim=1, keepdim=True)
    norms = reference_energy * lagged_energy.clamp_min(0.0)
    # Ballast far below the clip's typical window energy: digital silence gets NCCF 0, not 0/0.
    floor = 1e-12 * reference_energy.mean().square() + torch.finfo(torch.float32).tiny
    return products / torch.sqrt(norms + floor)


def _frame_rms(samples: torch.Tensor, hop_length: int, window: int) -> torch.Tensor:
    """RMS [1 + len // hop] of Hann-tapered windows centred on the frames, at the input rate.

    Measured as the mel frame weighs its samples, on the full band: the 1 kHz low-pass of the
    NCCF signal rings for several ms before an onset, and would count the frame before it loud.
    """
    padded = torch.nn.functional.pad(samples, (window // 2, window - window // 2))
    frames = padded.unfold(0, window, hop_length)[: num_frames(samples.numel(), hop_length)]
    taper = torch.hann_window(window, periodic=False, dtype=samples.dtype)
    frames = frames - (frames @ taper / taper.sum())[:, None]  # a DC offset is not loudness
    return torch.sqrt((frames * taper).square().sum(dim=1) / taper.square().sum())


def _candidates(nccf: torch.Tensor, first_lag: int, octave_cost: float):
    """Per frame, the strongest local NCCF peaks, guard lags excluded: each [frames, candidates].

    Returns refined lags (samples), NCCF heights and strengths (height less the octave cost),
    strongest first; a frame with fewer peaks has -inf strengths (and height 0) in the spare slots.
    Every local maximum is refined by parabolic interpolation first, so candidates compete with
    their interpolated heights (a sharp peak between two integer lags is not undervalued).
    """
    left, mid, right = nccf[:, :-2], nccf[:, 1:-1], nccf[:, 2:]
    is_peak = (mid >= left) & (mid >= right) & (mid > 0)
    curvature = left - 2.0 * mid + right
    concave = curvature < 0
    offset = torch.where(concave, 0.5 * (left - right) / torch.where(concave, curvature, -1.0),
                         torch.zeros_like(mid)).clamp(-0.5, 0.5)
    height = mid - 0.25 * (left - right) * offset
    lags = torch.arange(first_lag + 1, first_lag + 1 + mid.shape[1], dtype=nccf.dtype)
    score = height - octave_cost * torch.log2(lags / lags[0])
    score = torch.where(is_peak, score, torch.full_like(score, -math.inf))
    strengths, best = score.topk(min(MAX_CANDIDATES, score.shape[1]), dim=1)
    found = torch.isfinite(strengths)
    heights = torch.where(found, height.gather(1, best), torch.zeros_like(strengths))
    return lags[best] + offset.gather(1, best), heights, strengths


def _unvoiced_strength(rms: torch.Tensor, voicing_threshold: float) -> torch.Tensor:
    """Strength of the "unvoiced" candidate per frame: the threshold, raised in quiet frames.

    Two raises, the larger applies. Praat's: frames far below the clip's loudest one (from about
    28 dB down) are ever more clearly unvoiced. And the room noise: a quiet CREMA-D take has its
    background only 20-25 dB below the voice, and that noise (mostly 150-300 Hz) reaches the same
    NCCF (about 0.5) as a breathy or creaky voice; frames within NOISE_MARGIN_DB of the clip's
    noise floor (its 10th-percentile frame level, at most 20 dB below the loudest) lean unvoiced.
    """
    level = 20.0 * torch.log10(rms.clamp_min(torch.finfo(rms.dtype).tiny))
    relative = rms / rms.max().clamp_min(torch.finfo(rms.dtype).tiny)
    silence = 2.0 - relative / (SILENCE_THRESHOLD / (1.0 + voicing_threshold))
    floor = torch.minimum(torch.quantile(level, NOISE_FLOOR_QUANTILE),
                          level.max() - NOISE_FLOOR_BELOW_PEAK_DB)
    noise = 2.0 * (1.0 - (level - floor) / NOISE_MARGIN_DB)
    return voicing_threshold + torch.maximum(silence, noise).clamp_min(0.0)


def _viterbi(strengths: np.ndarray, unvoiced: np.ndarray, log2_f0: np.ndarray,
             switch_cost: float, jump_cost: float) -> np.ndarray:
    """Best path through [frames, K] voiced candidates plus the unvoiced one (index K).

    Maximises the summed strengths less the transition costs: ``switch_cost`` for each change
    between voiced and unvoiced, ``jump_cost`` per octave between consecutive voiced candidates.
    Returns the chosen candidate index per frame (K = unvoiced).
    """
    frames, k = strengths.shape
    local = np.concatenate([strengths, unvoiced[:, None]], axis=1)
    transition = np.full((frames, k + 1, k + 1), switch_cost)
    transition[:, k, k] = 0.0
    transition[1:, :k, :k] = jump_cost * np.abs(log2_f0[:-1, :, None] - log2_f0[1:, None, :])
    score = local[0]
    back = np.zeros((frames, k + 1), dtype=np.int64)
    states = np.arange(k + 1)
    for t in range(1, frames):
        total = score[:, None] - transition[t]
        back[t] = total.argmax(axis=0)
        score = total[back[t], states] + local[t]
    path = np.empty(frames, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _continuous_log_f0(log_f0: np.ndarray, voiced: np.ndarray, fallback: float) -> np.ndarray:
    """Log-F0 of voiced frames, linearly interpolated through the rest and held at the ends."""
    if not voiced.any():
        return np.full_like(log_f0, fallback)
    frames = np.arange(log_f0.size)
    return np.interp(frames, frames[voiced], log_f0[voiced])
