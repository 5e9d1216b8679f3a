"""Audio loading and the per-clip checks behind the skipped report."""

from pathlib import Path

import numpy as np
import pytest

from crema_exp.data import AudioError, load_audio
from crema_exp.data.audio import inspect_clip
from _helpers_data import SAMPLES, tone, write_wav


@pytest.mark.parametrize("emotion", ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"])
def test_real_crema_d_clips_load_as_16k_mono_float32(emotion):
    path = SAMPLES / f"1001_DFA_{emotion}_XX.wav"
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == (path.stat().st_size - 44) // 2  # 16-bit mono at 16 kHz, 44-byte header
    assert 0.01 < np.abs(wave).max() <= 1.0


@pytest.mark.parametrize("rate,channels,subtype", [(44100, 2, "PCM_16"), (16000, 1, "PCM_U8"),
                                                   (22050, 1, "FLOAT"), (16000, 2, "PCM_24")])
def test_other_formats_are_converted_to_16k_mono(tmp_path, rate, channels, subtype):
    source = tone(seconds=1.0, rate=rate, channels=channels)
    path = write_wav(tmp_path / "clip.wav", source, rate=rate, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.shape == (16000,)
    reference = source if channels == 1 else source.mean(axis=1)
    # Same loudness after down-mixing/resampling (8-bit adds quantisation noise only).
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.05)
    assert inspect_clip(path).duration == pytest.approx(1.0, abs=1e-3)


def test_down_mix_averages_channels(tmp_path):
    left = tone(seconds=0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    wave = load_audio(write_wav(tmp_path / "s.wav", stereo, subtype="FLOAT"))
    np.testing.assert_allclose(wave, left / 2, atol=1e-6)


def _corrupt(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        good = write_wav(tmp_path / "good.wav").read_bytes()
        path.write_bytes(good[:20])
    elif kind == "text":
        path.write_text("this is not audio, just text saved as .wav\n" * 20)
    elif kind == "silent":
        write_wav(path, np.zeros(16000, dtype=np.float32))
    elif kind == "short":
        write_wav(path, tone(seconds=0.2))
    return path


@pytest.mark.parametrize("kind,reason", [("empty", "empty file"),
                                         ("truncated", "corrupt or truncated header"),
                                         ("text", "not an audio file"),
                                         ("silent", "silent"),
                                         ("short", "too short")])
def test_unusable_clips_are_rejected_with_a_reason_naming_the_file(tmp_path, kind, reason):
    path = _corrupt(tmp_path, kind)
    with pytest.raises(AudioError) as caught:
        inspect_clip(path, min_duration=0.5)
    assert caught.value.reason.startswith(reason)
    assert str(path) in str(caught.value)


def test_load_audio_raises_audio_error_for_unreadable_files(tmp_path):
    with pytest.raises(AudioError, match="empty file"):
        load_audio(_corrupt(tmp_path, "empty"))
    with pytest.raises(AudioError, match="cannot open"):
        load_audio(tmp_path / "missing.wav")


def test_audio_error_keeps_path_and_reason():
    error = AudioError("/x/a.wav", "silent")
    assert (error.path, error.reason, str(error)) == ("/x/a.wav", "silent", "/x/a.wav: silent")
