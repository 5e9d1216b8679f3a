"""A small source-filter speech synthesiser for the demo corpus.

Speech-like rather than tonal, so that spectral and SSL features meet a realistic structure: a
glottal-pulse source (Rosenberg pulse shape on an integrated, time-varying F0 contour, with jitter,
shimmer, period-doubling creak and aspiration noise) goes through a cascade of formant resonators
whose targets move from vowel to vowel; syllables get loudness envelopes and consonant-like noise
bursts or stop closures; the utterance sits between short silences over background noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

# Peterson & Barney (1952) adult male formant averages F1, F2, F3 in Hz (F4 barely moves with vowels).
VOWEL_FORMANTS = {
    "i": (270, 2290, 3010),
    "ih": (390, 1990, 2550),
    "e": (530, 1840, 2480),
    "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440),
    "o": (570, 840, 2410),
    "oo": (440, 1020, 2240),
    "u": (300, 870, 2240),
    "uh": (640, 1190, 2390),
    "er": (490, 1350, 1690),
}
F4_HZ = 3500.0
FORMANT_BANDWIDTHS_HZ = np.array([80.0, 100.0, 140.0, 250.0])
FILTER_BLOCK_S = 0.01  # formant filters are updated every 10 ms (state carried across blocks)
SILENCE_S = (0.12, 0.35)  # lead and trail silence of a clip
CONSONANT_SHARE = (0.18, 0.35)  # part of a syllable taken by its onset consonant


@dataclass(frozen=True)
class VoiceParams:
    """Everything that decides how one utterance sounds (one value per clip)."""

    f0_hz: float  # median fundamental frequency
    f0_range_st: float  # std of the per-syllable pitch accents, in semitones
    declination_st: float  # pitch fall from start to end of the utterance, in semitones
    tremor_st: float  # depth of a ~5.5 Hz pitch tremor, in semitones
    jitter: float  # relative std of fast F0 perturbations
    shimmer: float  # relative std of per-period amplitude
    creak: float  # 0..1 depth of period-to-period amplitude alternation (vocal fry)
    open_quotient: float  # share of the glottal period with open glottis (high = lax/breathy)
    tilt: float  # 0..1 one-pole low-pass coefficient on the source (high = dark, soft voice)
    breathiness: float  # aspiration noise relative to the voiced source
    formant_scale: float  # vocal tract length factor (about 1.0 male, 1.15 female)
    f1_scale: float  # extra F1 factor (mouth opening)
    f2_scale: float  # extra F2 factor (lip spreading, e.g. smiling)
    bandwidth_scale: float  # formant bandwidth factor (lax voices have wider formants)
    consonant_db: float  # level of consonant noise relative to vowels
    loudness_dbfs: float  # RMS level of the speech part
    noise_dbfs: float  # RMS level of the background noise


@lru_cache(maxsize=8)
def _fricative_filters(sample_rate: int) -> tuple[np.ndarray, ...]:
    """Band-pass filters for three fricative colours: /s/-like, /sh/-like and /f, h/-like."""
    nyquist = sample_rate / 2
    bands = ((3800.0, 7500.0), (2000.0, 5000.0), (900.0, 7000.0))
    return tuple(
        signal.butter(4, [lo, min(hi, 0.95 * nyquist)], "bandpass", fs=sample_rate, output="sos")
        for lo, hi in bands
    )


def _syllable_layout(rng: np.random.Generator, num_syllables: int, start: int, stop: int):
    """Syllable boundaries in samples, shape [num_syllables, 2], with short pauses between words."""
    lengths = rng.gamma(9.0, size=num_syllables)
    gaps = num_syllables - 1
    pauses = np.where(rng.random(gaps) < 0.2, rng.gamma(4.0, size=gaps), 0.0)
    pauses = np.append(pauses, 0.0) * lengths.mean() * 0.15
    total = lengths.sum() + pauses.sum()
    ends = np.cumsum(lengths + pauses) / total
    starts = np.concatenate(([0.0], ends[:-1]))
    ends = ends - pauses / total
    span = stop - start
    return np.stack([start + starts * span, start + ends * span], axis=1).round().astype(int)


def _glottal_source(rng: np.random.Generator, f0: np.ndarray, voice: VoiceParams, sample_rate: int):
    """Glottal flow derivative (Rosenberg pulse) and the flow itself, both per sample."""
    phase = np.cumsum(f0 / sample_rate)
    period = phase.astype(np.int64)
    frac = phase - period
    opening = voice.open_quotient * 0.65
    closing = voice.open_quotient * 0.35
    flow = np.where(
        frac < opening,
        0.5 * (1.0 - np.cos(np.pi * frac / opening)),
        np.where(frac < opening + closing, np.cos(0.5 * np.pi * (frac - opening) / closing), 0.0),
    )
    amplitude = 1.0 + voice.shimmer * rng.standard_normal(period[-1] + 1)
    amplitude *= 1.0 - voice.creak * (np.arange(period[-1] + 1) % 2)
    flow *= np.clip(amplitude, 0.0, None)[period]
    derivative = np.diff(flow, prepend=0.0)
    tilted = signal.lfilter([1.0 - voice.tilt], [1.0, -voice.tilt], derivative)
    return tilted, flow


def _formant_cascade(formants: np.ndarray, bandwidths: np.ndarray, sample_rate: int):
    """Cascade of unit-DC-gain two-pole resonators (Klatt) as one transfer function per row.

    ``formants`` and ``bandwidths`` are [blocks, resonators] in Hz; returns gains [blocks] and
    denominators [blocks, 2 * resonators + 1]. One high-order ``lfilter`` call per block costs far
    less than a ``sosfilt`` call, and in float64 these well separated poles stay accurate.
    """
    radius = np.exp(-np.pi * bandwidths / sample_rate)
    a1 = -2.0 * radius * np.cos(2.0 * np.pi * formants / sample_rate)
    a2 = radius**2
    denominator = np.ones((formants.shape[0], 1))
    for k in range(formants.shape[1]):
        padded = np.pad(denominator, ((0, 0), (0, 2)))
        denominator = (
            padded
            + a1[:, k : k + 1] * np.roll(padded, 1, axis=1)
            + a2[:, k : k + 1] * np.roll(padded, 2, axis=1)
        )
    gain = np.prod(1.0 + a1 + a2, axis=1)
    return gain, denominator


def _vocal_tract(source: np.ndarray, track: np.ndarray, voice: VoiceParams, sample_rate: int):
    """Filter ``source`` through formants that follow ``track`` [samples, 4], block by block."""
    block = int(FILTER_BLOCK_S * sample_rate)
    num_blocks = -(-len(source) // block)
    centres = track[np.minimum(np.arange(num_blocks) * block + block // 2, len(source) - 1)]
    bandwidths = np.broadcast_to(FORMANT_BANDWIDTHS_HZ * voice.bandwidth_scale, centres.shape)
    gains, denominators = _formant_cascade(centres, bandwidths, sample_rate)
    out = np.empty_like(source)
    state = np.zeros(denominators.shape[1] - 1)
    for index, (gain, denominator) in enumerate(zip(gains, denominators)):
        part = slice(index * block, (index + 1) * block)
        out[part], state = signal.lfilter([gain], denominator, source[part], zi=state)
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2) + 1e-20))


def synthesize_utterance(
    rng: np.random.Generator,
    voice: VoiceParams,
    vowels: tuple[str, ...],
    duration_s: float,
    sample_rate: int = 16000,
) -> np.ndarray:
    """One spoken sentence (one syllable per vowel) as float32 in [-1, 1], ``duration_s`` long."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    lead, trail = rng.uniform(*SILENCE_S, size=2) * min(1.0, duration_s / 2.0)
    num = len(vowels)
    bounds = _syllable_layout(rng, num, int(lead * sample_rate), n - int(trail * sample_rate))
    starts, ends = bounds[:, 0], bounds[:, 1]
    consonant_end = starts + (rng.uniform(*CONSONANT_SHARE, size=num) * (ends - starts)).astype(int)
    if rng.random() < 0.5:  # half of the utterances start on a vowel
        consonant_end[0] = starts[0]
    onset_kind = rng.integers(0, 4, size=num)  # 0-2: fricative colours, 3: stop (closure + burst)

    # Pitch: smooth path through per-syllable accents, falling over the sentence; tremor, jitter.
    centres = (consonant_end + ends) / 2.0
    accents = voice.f0_range_st * rng.standard_normal(num)
    accents -= voice.declination_st * (centres - centres[0]) / max(centres[-1] - centres[0], 1.0)
    semitones = np.interp(np.arange(n), centres, accents)
    tremor_hz, tremor_phase = rng.uniform(4.5, 6.5), rng.uniform(0.0, 2.0 * np.pi)
    semitones += voice.tremor_st * np.sin(2.0 * np.pi * tremor_hz * t + tremor_phase)
    jitter_noise = signal.lfilter([1.0], [1.0, -0.7], rng.standard_normal(n))
    jitter_noise /= jitter_noise.std()
    f0 = voice.f0_hz * 2.0 ** (semitones / 12.0) * (1.0 + voice.jitter * jitter_noise)
    source, flow = _glottal_source(rng, np.clip(f0, 40.0, 600.0), voice, sample_rate)
    source = source / _rms(source)
    source += voice.breathiness * (0.4 + flow) * rng.standard_normal(n)

    # Formants glide between the vowels' targets, scaled for this speaker and expression.
    table = np.array([(*VOWEL_FORMANTS[v], F4_HZ) for v in vowels], dtype=float)
    table *= voice.formant_scale * rng.normal(1.0, 0.03, size=(num, 1))
    table[:, 0] *= voice.f1_scale
    table[:, 1] *= voice.f2_scale
    track = np.stack([np.interp(np.arange(n), centres, table[:, k]) for k in range(4)], axis=1)
    voiced = _vocal_tract(source, np.minimum(track, 0.45 * sample_rate), voice, sample_rate)

    # Envelopes: each vowel swells and fades; consonants are noise bursts or a closure + burst.
    stress = rng.lognormal(0.0, 0.35, size=num)
    vowel_env = np.zeros(n)
    consonant_env = np.zeros((3, n))
    for k in range(num):
        a, b, c = starts[k], consonant_end[k], ends[k]
        vowel_env[b:c] = stress[k] * np.sin(np.pi * np.linspace(0.0, 1.0, c - b)) ** 0.5
        if b > a:
            if onset_kind[k] == 3:
                burst = max(1, (b - a) // 4)
                consonant_env[0, b - burst : b] = 1.5 * np.hanning(burst)
            else:
                consonant_env[onset_kind[k], a:b] = np.hanning(b - a)
    speech = voiced * vowel_env
    speech /= _rms(speech[starts[0] : ends[-1]])
    fricative_noise = rng.standard_normal(n)
    consonant_gain = 10 ** (voice.consonant_db / 20)
    for colour, sos in enumerate(_fricative_filters(sample_rate)):
        burst_noise = signal.sosfilt(sos, fricative_noise)
        speech += consonant_gain * burst_noise / _rms(burst_noise) * consonant_env[colour]

    speech *= 10 ** (voice.loudness_dbfs / 20) / _rms(speech[starts[0] : ends[-1]])
    background = signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))
    speech += background * 10 ** (voice.noise_dbfs / 20) / _rms(background)
    return np.clip(speech, -1.0, 1.0).astype(np.float32)
