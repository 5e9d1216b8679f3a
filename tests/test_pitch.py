"""The NCCF pitch tracker finds known F0s, separates voiced from noise and keeps the frame grid."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from crema_exp.features.pitch import estimate_pitch, nccf_to_voicing, normalised_log_f0, num_frames

SR = 16000
HOP = 160
EDGE = 3  # frames at each clip edge, where the analysis window reaches past the signal


def harmonic_tone(f0, seconds=1.5, snr_db=20.0, seed=0):
    """Sum of 20 harmonics (1/k amplitudes) along an F0 contour (Hz, constant or per sample)."""
    n = int(seconds * SR)
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    harmonics = np.arange(1, 21)[:, None]
    tone = np.sum(np.sin(harmonics * phase) / harmonics * (harmonics * f0 < SR / 2), axis=0)
    return _with_noise(tone, snr_db, seed)


def vowel_like(f0_contour, snr_db=20.0, seed=0):
    """Glottal pulse train through two formant resonators (700 Hz, 1200 Hz), like a sung /a/."""
    phase = np.cumsum(f0_contour) / SR
    pulses = np.diff(np.floor(phase), prepend=0.0)
    signal = pulses
    for formant, bandwidth in ((700.0, 130.0), (1200.0, 70.0)):
        r = math.exp(-math.pi * bandwidth / SR)
        signal = lfilter([1.0], [1.0, -2 * r * math.cos(2 * math.pi * formant / SR), r * r], signal)
    return _with_noise(signal, snr_db, seed)


def _with_noise(signal, snr_db, seed):
    signal = 0.3 * signal / np.abs(signal).max()
    noise = np.random.default_rng(seed).standard_normal(signal.size)
    noise *= np.sqrt(np.mean(signal**2) / 10 ** (snr_db / 10)) / noise.std()
    return (signal + noise).astype(np.float32)


def white_noise(seconds=1.5, seed=1):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def track(wave, fmin=50.0, fmax=400.0):
    """(F0, voiced decision) per frame."""
    result = estimate_pitch(wave, SR, HOP, fmin, fmax)
    return result.f0, result.voiced


def relative_errors(f0, truth):
    return (np.abs(f0 - truth) / truth)[EDGE:-EDGE]


@pytest.mark.parametrize("f0", [80.0, 120.0, 200.0, 300.0])
def test_constant_f0_is_found_and_voiced(f0):
    estimate, voiced = track(harmonic_tone(f0))
    # Sub-lag (parabolic) refinement: the 8 kHz lag grid alone is 1.2 % off at 300 Hz.
    assert np.median(relative_errors(estimate, f0)) < 0.005
    assert np.mean(relative_errors(estimate, f0) < 0.02) > 0.95
    assert np.mean(voiced[EDGE:-EDGE]) > 0.95


def test_gliding_f0_is_followed():
    seconds = 2.0
    times = np.arange(int(seconds * SR)) / SR
    contour = 100.0 * 2.8 ** (times / seconds)  # 100 Hz -> 280 Hz, exponential glide
    estimate, voiced = track(vowel_like(contour))
    truth = contour[np.minimum(np.arange(estimate.size) * HOP, contour.size - 1)]
    errors = relative_errors(estimate, truth)
    assert np.median(errors) < 0.01
    assert np.percentile(errors, 90) < 0.01
    assert np.mean(voiced[EDGE:-EDGE]) > 0.9


def test_noise_is_unvoiced_and_clearly_separated_from_voice():
    noise = estimate_pitch(white_noise(), SR, HOP, 50.0, 400.0)
    voice = estimate_pitch(harmonic_tone(150.0), SR, HOP, 50.0, 400.0)
    assert not noise.voiced.any()
    assert noise.voicing.max() < 0.2  # Kaldi's probability of voicing: well below even odds
    assert np.median(noise.voicing) < 0.05
    assert np.percentile(voice.voicing[EDGE:-EDGE], 5) > 0.9


def test_unvoiced_stretch_is_interpolated_in_log_f0():
    wave = np.concatenate([harmonic_tone(150.0, 0.5), white_noise(0.4), harmonic_tone(250.0, 0.5)])
    f0, voiced = track(wave)
    gap = slice(60, 80)  # well inside the noise (frames 50..90)
    assert not voiced[gap].any()
    assert np.all((f0[gap] > 150.0 * 0.98) & (f0[gap] < 250.0 * 1.02))
    assert np.all(np.diff(np.log(f0[gap])) >= 0)  # a straight line from one voice to the next
    assert np.allclose(np.diff(np.log(f0[gap])), np.log(250 / 150) / 40, rtol=0.3)


def test_clip_without_voice_gets_centre_of_range():
    f0, voiced = track(white_noise(), fmin=60.0, fmax=240.0)
    np.testing.assert_allclose(f0, 120.0, rtol=1e-5)
    assert not voiced.any()


def test_silence_is_unvoiced_and_finite():
    result = estimate_pitch(np.zeros(SR, dtype=np.float32), SR, HOP, 50.0, 400.0)
    assert np.all(np.isfinite(result.f0)) and np.all(result.voicing < 0.01)
    assert not result.voiced.any()


def test_search_range_is_respected():
    # A 300 Hz voice searched up to 250 Hz is read at its in-range period multiple, 150 Hz.
    f0, voiced = track(harmonic_tone(300.0), fmin=60.0, fmax=250.0)
    assert np.median(relative_errors(f0, 150.0)) < 0.02
    assert np.mean(voiced) > 0.9
    # And every value lies in the range, voiced or not.
    for wave in (harmonic_tone(80.0), white_noise()):
        f0, _ = track(wave, fmin=100.0, fmax=300.0)
        assert f0.min() >= 100.0 and f0.max() <= 300.0


@pytest.mark.parametrize("samples", [4000, 4001, 4159, 4160, 24321])
def test_frames_match_centred_spectrogram_grid(samples):
    result = estimate_pitch(harmonic_tone(120.0, samples / SR), SR, HOP, 50.0, 400.0)
    assert (result.f0.shape == result.voicing.shape == result.voiced.shape
            == (num_frames(samples, HOP),) == (1 + samples // HOP,))
    assert result.f0.dtype == result.voicing.dtype == np.float32
    assert result.voiced.dtype == bool


def test_voicing_is_kaldis_increasing_probability():
    nccf = torch.linspace(0.0, 1.0, 101)
    voicing = nccf_to_voicing(nccf)
    assert torch.all(torch.diff(voicing) > 0)
    assert voicing[0] < 0.01 and voicing[-1] > 0.99
    # Kaldi's NccfToPov at 0.8 is close to even odds.
    assert abs(nccf_to_voicing(torch.tensor(0.8)).item() - 0.48) < 0.02


@pytest.mark.parametrize(
    "wave, fmin, fmax, message",
    [
        (np.zeros((2, 1600), np.float32), 50.0, 400.0, "mono"),
        (np.zeros(0, np.float32), 50.0, 400.0, "non-empty"),
        (np.zeros(1600, np.float32), 400.0, 50.0, "fmin < fmax"),
        (np.zeros(1600, np.float32), 50.0, 1500.0, "fmax"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(wave, fmin, fmax, message):
    with pytest.raises(ValueError, match=message):
        estimate_pitch(wave, SR, HOP, fmin, fmax)


def half_power_span(power):
    """Fractional frames where the power rises through, and falls back through, half its plateau."""
    half = np.median(power[power > 0.5 * power.max()]) / 2
    above = np.flatnonzero(power >= half)
    i, j = above[0], above[-1]
    start = i - (power[i] - half) / (power[i] - power[i - 1])
    end = j + (power[j] - half) / (power[j] - power[j + 1])
    return start, end


@pytest.mark.parametrize("onset_s", [0.4, 0.4031, 0.4077])  # on, and between, frame centres
def test_voiced_frames_line_up_with_the_mel_energy_of_a_tone_burst(onset_s):
    from crema_exp.features.spectral import mel_spectrogram

    def silence(seconds):
        return np.zeros(int(seconds * SR), np.float32)

    wave = np.concatenate([silence(onset_s), harmonic_tone(150.0, 0.5, snr_db=60.0), silence(0.4)])
    wave += 1e-4 * np.random.default_rng(2).standard_normal(wave.size).astype(np.float32)
    power = mel_spectrogram(SR, 512, 400, HOP, 80)(torch.from_numpy(wave)).sum(dim=0).numpy()
    start, end = half_power_span(power)
    assert abs(start - onset_s * 100) < 0.5 and abs(end - (onset_s + 0.5) * 100) < 0.5
    voiced = np.flatnonzero(estimate_pitch(wave, SR, HOP, 50.0, 400.0).voiced)
    assert abs(voiced[0] - start) <= 1 and abs(voiced[-1] - end) <= 1
    assert voiced.size == voiced[-1] - voiced[0] + 1  # one voiced stretch, no gaps


def test_a_voice_in_noise_stays_voiced_along_the_path():
    # At 0 dB SNR the NCCF of a 120 Hz voice sits near 0.6 (Kaldi's voicing about even odds);
    # the path keeps it voiced, on the right F0, while noise alone stays unvoiced.
    result = estimate_pitch(vowel_like(np.full(int(1.5 * SR), 120.0), snr_db=0.0, seed=3),
                            SR, HOP, 50.0, 400.0)
    assert np.mean(result.voiced[EDGE:-EDGE]) > 0.95
    assert np.median(relative_errors(result.f0, 120.0)) < 0.01
    assert np.percentile(relative_errors(result.f0, 120.0), 95) < 0.05


def test_normalised_log_f0_keeps_the_melody_and_drops_the_register():
    times = np.arange(int(1.5 * SR)) / SR
    melody = 1.0 + 0.3 * np.sin(2 * np.pi * 1.2 * times)  # the same rise and fall, twice
    low = estimate_pitch(vowel_like(100.0 * melody), SR, HOP, 50.0, 400.0)
    high = estimate_pitch(vowel_like(190.0 * melody), SR, HOP, 50.0, 400.0)
    low_norm = normalised_log_f0(np.log(low.f0), low.voiced)
    high_norm = normalised_log_f0(np.log(high.f0), high.voiced)
    inner = slice(EDGE, -EDGE)
    assert np.mean(np.log(high.f0[inner]) - np.log(low.f0[inner])) == pytest.approx(
        np.log(1.9), abs=0.01)
    difference = np.abs(high_norm[inner] - low_norm[inner])  # tracking error of each voice only
    assert np.median(difference) < 0.015 and difference.max() < 0.04  # vs a shift of 0.64
    assert abs(np.mean(low_norm[low.voiced])) < 1e-6


def test_normalised_log_f0_of_a_clip_without_voice_is_zero():
    log_f0 = np.log(np.full(50, 120.0, np.float32))
    np.testing.assert_array_equal(normalised_log_f0(log_f0, np.zeros(50, bool)), 0.0)
