"""The pitch tracker on real CREMA-D voices: speech voiced, room noise not, F0 as Praat finds it."""

from pathlib import Path

import numpy as np
import pytest

from crema_exp.data.audio import load_audio
from crema_exp.features.pitch import estimate_pitch

SR, HOP, WIN = 16000, 160, 400
DATA = Path(__file__).parent / "data"
# Clip -> (sex, median F0 in Hz of Praat's "To Pitch (ac)": time step 0.01 s, floor 50 Hz,
# ceiling 400 Hz, other settings default; praat-parselmouth 0.4.7), an independent reference.
CLIPS = {
    "crema_d_samples/1001_DFA_ANG_XX": ("male", 151),
    "crema_d_samples/1001_DFA_DIS_XX": ("male", 113),
    "crema_d_samples/1001_DFA_FEA_XX": ("male", 205),
    "crema_d_samples/1001_DFA_HAP_XX": ("male", 168),
    "crema_d_samples/1001_DFA_NEU_XX": ("male", 123),
    "crema_d_samples/1001_DFA_SAD_XX": ("male", 106),
    "crema_d_voices/1002_DFA_ANG_XX": ("female", 275),
    "crema_d_voices/1017_DFA_ANG_XX": ("male", 110),
    "crema_d_voices/1019_DFA_ANG_XX": ("male", 172),
    "crema_d_voices/1024_DFA_ANG_XX": ("female", 219),
}
# Wide adult speaking ranges (emotional speech, anger and fear included, runs high).
ADULT_F0 = {"male": (75.0, 260.0), "female": (140.0, 400.0)}


def frame_levels(wave):
    """dB level of the 25 ms frames centred on the pitch frame grid."""
    padded = np.pad(wave, WIN // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][: 1 + wave.size // HOP]
    return 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-20)


@pytest.fixture(scope="module", params=sorted(CLIPS), ids=lambda c: c.split("/")[-1])
def clip(request):
    wave = load_audio(DATA / f"{request.param}.wav", SR)
    sex, praat_median = CLIPS[request.param]
    return wave, estimate_pitch(wave, SR, HOP, 50.0, 400.0), sex, praat_median


def test_speech_frames_are_mostly_voiced_and_room_noise_is_not(clip):
    wave, track, _, _ = clip
    level = frame_levels(wave)
    floor = np.percentile(level, 10)  # every take starts and ends in the room's noise
    # Speech: within 30 dB of the clip's loudest frame and clear of the room noise. (In the quiet
    # takes, 1001_DFA_DIS_XX or 1024_DFA_ANG_XX, that noise lies only 20-25 dB below the voice.)
    speech = (level >= level.max() - 30) & (level >= floor + 10)
    assert track.voiced[speech].mean() >= 0.6
    noise = level <= np.percentile(level, 25)
    assert track.voiced[noise].mean() <= 0.05


def test_median_f0_is_an_adult_voice_and_agrees_with_praat(clip):
    _, track, sex, praat_median = clip
    median = np.median(track.f0[track.voiced])
    low, high = ADULT_F0[sex]
    assert low <= median <= high
    assert median == pytest.approx(praat_median, rel=0.1)
