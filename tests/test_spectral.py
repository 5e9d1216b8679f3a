"""SpectralExtractor: frame grid, layout, values against torchaudio, pickling, store identity."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
import torchaudio.functional as AF
from omegaconf import OmegaConf

from crema_exp.config import FeaturesConfig
from crema_exp.features.pitch import estimate_pitch
from crema_exp.features.spectral import PITCH_COLUMNS, SpectralExtractor

CONF = Path(__file__).resolve().parents[1] / "conf" / "features"
SR = 16000


def features_cfg(name="mel_prosody", **overrides):
    """The conf/features/<name>.yaml node on the schema, with dotted overrides."""
    recipe = OmegaConf.load(CONF / f"{name}.yaml")
    cfg = OmegaConf.merge(OmegaConf.structured(FeaturesConfig), recipe)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def speechy_wave(samples=SR, seed=0):
    """A 140 Hz harmonic tone with a loudness envelope and a little noise."""
    t = np.arange(samples) / SR
    tone = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 15))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    noise = 0.01 * np.random.default_rng(seed).standard_normal(samples)
    return (0.1 * tone * envelope + noise).astype(np.float32)


@pytest.fixture(scope="module")
def prosody():
    return SpectralExtractor(features_cfg("mel_prosody"))


@pytest.mark.parametrize("samples", [4000, 16001, 24159, 40000])
def test_mel_prosody_shape_and_layout(prosody, samples):
    frames = prosody.extract(speechy_wave(samples))["spectral"]
    assert frames.dtype == np.float32 and np.isfinite(frames).all()
    assert frames.shape == (1 + samples // 160, 80 * 3 + 5)
    assert prosody.layout == {"logmel": [0, 80], "delta": [80, 160], "delta_delta": [160, 240],
                              "pitch": [240, 245]}
    assert prosody.streams == ["spectral"] and prosody.frame_rate == 100.0


def test_mel_kind_is_log_mel_only():
    extractor = SpectralExtractor(features_cfg("mel"))
    frames = extractor.extract(speechy_wave(16000))["spectral"]
    assert frames.shape == (101, 80)
    assert extractor.layout == {"logmel": [0, 80]}


def test_layout_follows_enabled_blocks():
    extractor = SpectralExtractor(features_cfg("mel_prosody", n_mels=40, delta_delta=False))
    assert extractor.layout == {"logmel": [0, 40], "delta": [40, 80], "pitch": [80, 85]}
    assert extractor.extract(speechy_wave(8000))["spectral"].shape == (51, 85)


def test_blocks_equal_torchaudio_reference(prosody):
    wave = speechy_wave(24000)
    frames = prosody.extract(wave)["spectral"]
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=512, win_length=400, hop_length=160, f_min=20.0, f_max=8000.0,
        n_mels=80, power=2.0, center=True, mel_scale="htk")(torch.from_numpy(wave))
    logmel = torch.log(mel + 1e-6)
    delta = AF.compute_deltas(logmel, win_length=5)
    delta_delta = AF.compute_deltas(delta, win_length=5)
    for block, reference in (("logmel", logmel), ("delta", delta), ("delta_delta", delta_delta)):
        start, end = prosody.layout[block]
        np.testing.assert_allclose(frames[:, start:end], reference.T.numpy(), rtol=1e-4, atol=1e-4)

    track = estimate_pitch(wave, SR, 160, 50.0, 400.0)
    pitch = dict(zip(PITCH_COLUMNS, frames[:, slice(*prosody.layout["pitch"])].T))
    np.testing.assert_allclose(pitch["voicing"], track.voicing, atol=1e-6)
    np.testing.assert_array_equal(pitch["voiced"], track.voiced.astype(np.float32))
    log_f0 = np.log(track.f0)
    np.testing.assert_allclose(pitch["log_f0"], log_f0, atol=1e-5)
    np.testing.assert_allclose(pitch["log_f0_norm"], log_f0 - log_f0[track.voiced].mean(),
                               atol=1e-5)
    expected_delta = AF.compute_deltas(torch.from_numpy(log_f0)[None], win_length=5)[0]
    np.testing.assert_allclose(pitch["delta_log_f0"], expected_delta.numpy(), atol=1e-5)
    assert np.median(track.f0[track.voiced]) == pytest.approx(140.0, rel=0.01)


def test_extractor_survives_pickling_with_identical_output(prosody):
    wave = speechy_wave(16000)
    before = prosody.extract(wave)["spectral"]  # the torch transform now exists in this process
    clone = pickle.loads(pickle.dumps(prosody))
    np.testing.assert_array_equal(clone.extract(wave)["spectral"], before)
    assert clone.identity() == prosody.identity()


def test_identity_tracks_every_output_parameter(prosody):
    identity = prosody.identity()
    assert json.loads(json.dumps(identity)) == identity  # plain values for the store key
    assert SpectralExtractor(features_cfg("mel_prosody")).identity() == identity
    for overrides in ({"n_mels": 64}, {"hop_ms": 20.0}, {"win_ms": 20.0}, {"deltas": False},
                      {"pitch.fmax": 500.0}, {"pitch.enabled": False}):
        assert SpectralExtractor(features_cfg("mel_prosody", **overrides)).identity() != identity
    # num_workers only changes how the work is spread.
    assert SpectralExtractor(features_cfg("mel_prosody", num_workers=3)).identity() == identity


def test_extract_restores_torch_threads(prosody):
    threads = torch.get_num_threads()
    prosody.extract(speechy_wave(4000))
    assert torch.get_num_threads() == threads


def test_silence_gives_finite_floor(prosody):
    frames = prosody.extract(np.zeros(8000, np.float32))["spectral"]
    assert np.isfinite(frames).all()
    np.testing.assert_allclose(frames[:, :80], np.log(1e-6), rtol=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [({"kind": "ssl"}, "SpectralExtractor handles"),
     ({"win_ms": 25.03}, "features.win_ms"),
     ({"hop_ms": 30.0}, "exceeds"),
     ({"pitch.fmax": 1200.0}, "features.pitch")],
)
def test_bad_config_is_rejected_naming_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        SpectralExtractor(features_cfg("mel_prosody", **overrides))


@pytest.mark.parametrize(
    "wave, message",
    [(np.zeros((2, 8000), np.float32), "mono"),
     (np.zeros(200, np.float32), "too short"),
     (np.array([0.0, np.nan] * 4000, np.float32), "NaN")],
)
def test_bad_wave_is_rejected_with_a_reason(prosody, wave, message):
    with pytest.raises(ValueError, match=message):
        prosody.extract(wave)
