"""SSLExtractor: streams, exactness against single-clip torchaudio runs, and every weights source.

Models are randomly initialised (no network); small architectures keep the tests fast, and one
test covers the real 12-layer WavLM Base architecture.
"""

import hashlib
import urllib.error

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from crema_exp.config import ConfigError, FeaturesConfig
from crema_exp.features.ssl import SSLExtractor
from crema_exp.features.ssl_weights import SSLWeightsError, build_architecture

TINY_ARCH = {
    "extractor_conv_layer_config": [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
    "encoder_embed_dim": 64,
    "encoder_num_layers": 2,
    "encoder_num_heads": 4,
    "encoder_ff_interm_features": 128,
}


def features_cfg(**ssl):
    cfg = OmegaConf.structured(FeaturesConfig)
    cfg.ssl.weights = "random"
    cfg.ssl.device = "cpu"
    for key, value in ssl.items():
        OmegaConf.update(cfg, f"ssl.{key}", value, merge=False)
    return cfg


def waves(*lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def reference_model(model_name, arch=None):
    """What "random weights, seed 0" means, built independently of the extractor."""
    torch.manual_seed(0)
    return build_architecture(model_name, arch).eval()


def reference_hidden_states(model, wave):
    """Single-clip torchaudio run: [transformer input, layer 1 ... layer L] as numpy arrays."""
    with torch.no_grad():
        x = torch.from_numpy(wave)[None]
        layers, _ = model.extract_features(x)
        features, _ = model.feature_extractor(x, None)
        projected = model.encoder.feature_projection(features)
        transformer = model.encoder.transformer
        # Post-norm (base) models: the input to layer 1 is layer_norm(x + positional conv(x)).
        transformer_input = transformer.layer_norm(projected + transformer.pos_conv_embed(projected))
    return [h[0].numpy() for h in [transformer_input, *layers]]


def assert_matches_reference(outputs, model, clips, streams):
    for result, wave in zip(outputs, clips):
        reference = reference_hidden_states(model, wave)
        assert list(result) == streams
        for stream in streams:
            expected = reference[int(stream.split("_")[1])]
            assert result[stream].dtype == np.float32
            np.testing.assert_allclose(result[stream], expected, rtol=1e-3, atol=1e-4, err_msg=stream)


@pytest.fixture(scope="module")
def tiny():
    return SSLExtractor(features_cfg(model="wavlm_base", arch_overrides=TINY_ARCH))


def test_tiny_streams_dim_and_frame_rate(tiny):
    assert tiny.streams == ["layer_00", "layer_01", "layer_02"]
    assert tiny.dim == 64 and tiny.frame_rate == 50.0
    (result,) = tiny.extract_many(waves(32000))
    for array in result.values():
        assert array.shape == (99, 64)  # 2 s at 50 frames/s, minus the 25 ms window


def test_mixed_and_equal_lengths_equal_single_clip_runs(tiny):
    clips = waves(16000, 24000, 16000, 20800, 16000, 24000)
    outputs = tiny.extract_many(clips)
    assert [r["layer_00"].shape[0] for r in outputs] == [49, 74, 49, 64, 49, 74]
    assert_matches_reference(outputs, reference_model("wavlm_base", TINY_ARCH), clips, tiny.streams)


def test_random_init_is_reproducible_and_flagged(tiny):
    again = SSLExtractor(features_cfg(model="wavlm_base", arch_overrides=TINY_ARCH))
    clip = waves(12000)
    first, second = tiny.extract_many(clip)[0], again.extract_many(clip)[0]
    for stream in tiny.streams:
        np.testing.assert_allclose(first[stream], second[stream], rtol=1e-5, atol=1e-6)
    identity = again.weights_identity
    assert identity == tiny.weights_identity
    assert identity["source"] == "random" and identity["random"] is True and identity["seed"] == 0
    assert identity["arch"]["encoder_num_layers"] == 2


def test_layer_selection_keeps_only_those_layers(tiny):
    picked = SSLExtractor(features_cfg(model="wavlm_base", arch_overrides=TINY_ARCH, layers=[2, 0]))
    assert picked.streams == ["layer_00", "layer_02"]
    clip = waves(16000)
    full, part = tiny.extract_many(clip)[0], picked.extract_many(clip)[0]
    for stream in picked.streams:
        np.testing.assert_allclose(part[stream], full[stream], rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="features.ssl.layers"):
        SSLExtractor(features_cfg(model="wavlm_base", arch_overrides=TINY_ARCH, layers=[3]))


def test_bad_waves_name_the_clip(tiny):
    good = waves(8000)[0]
    with pytest.raises(ValueError, match="clip 1: .*1-D"):
        tiny.extract_many([good, np.stack([good, good])])
    with pytest.raises(ValueError, match="clip 1: 399 samples"):
        tiny.extract_many([good, good[:399]])
    with pytest.raises(ValueError, match="clip 0: .*finite"):
        tiny.extract_many([np.full(8000, np.nan, dtype=np.float32)])


def test_hubert_base_builds_and_is_exact():
    extractor = SSLExtractor(features_cfg(model="hubert_base", arch_overrides=TINY_ARCH))
    clips = waves(16000, 16000, seed=1)
    assert_matches_reference(
        extractor.extract_many(clips), reference_model("hubert_base", TINY_ARCH), clips, extractor.streams
    )


def test_arch_overrides_rejected_for_real_weights(tmp_path):
    cfg = features_cfg(model="wavlm_base", arch_overrides=TINY_ARCH, weights="checkpoint")
    cfg.ssl.checkpoint = str(tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="arch_overrides=.*only allowed with features.ssl.weights=random"):
        SSLExtractor(cfg)


def test_unknown_arch_override_is_named():
    with pytest.raises(ConfigError, match="encoder_layers"):
        SSLExtractor(features_cfg(model="wavlm_base", arch_overrides={"encoder_layers": 2}))


def test_offline_bundle_fails_fast_with_the_alternatives(tmp_path, monkeypatch):
    attempts = []

    def offline_download(url, destination, *args, **kwargs):
        attempts.append(destination)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline_download)
    previous_hub_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty_hub"))
    try:
        extractor = SSLExtractor(features_cfg(model="wavlm_base", weights="bundle"))
        # Identifying the weights (the store key) needs no download: a cached store is usable offline.
        assert extractor.weights_identity == {"source": "bundle", "bundle": "WAVLM_BASE",
                                              "model": "wavlm_base", "random": False}
        assert not attempts
        with pytest.raises(SSLWeightsError) as error:
            extractor.extract_many(waves(16000))
    finally:
        torch.hub.set_dir(previous_hub_dir)
    assert attempts and attempts[0].startswith(str(tmp_path / "empty_hub"))
    message = str(error.value)
    assert "WAVLM_BASE" in message
    assert "features.ssl.weights=checkpoint features.ssl.checkpoint=/path/model.pt" in message
    assert "features.ssl.weights=huggingface features.ssl.huggingface_dir=/path" in message
    assert "features.ssl.weights=random" in message


def test_huggingface_without_transformers_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)  # import fails
    extractor = SSLExtractor(
        features_cfg(model="wavlm_base", weights="huggingface", huggingface_dir=str(tmp_path))
    )
    with pytest.raises(SSLWeightsError, match="pip install transformers"):
        extractor.extract_many(waves(16000))


def test_real_wavlm_base_architecture_and_checkpoint_round_trip(tmp_path):
    """Full 12-layer WavLM Base (random weights); its state dict reloads through weights=checkpoint."""
    extractor = SSLExtractor(features_cfg(model="wavlm_base"))
    assert extractor.streams == [f"layer_{k:02d}" for k in range(13)]
    assert extractor.dim == 768
    clips = waves(16000, 9600, seed=2)
    outputs = extractor.extract_many(clips)
    assert outputs[0]["layer_12"].shape == (49, 768)
    model = reference_model("wavlm_base")
    assert_matches_reference(outputs, model, clips, extractor.streams)

    path = tmp_path / "wavlm_base.pt"
    torch.save(model.state_dict(), path)
    del model
    loaded = SSLExtractor(features_cfg(model="wavlm_base", weights="checkpoint", checkpoint=str(path)))
    assert loaded.weights_identity == {
        "source": "checkpoint",
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "model": "wavlm_base",
        "random": False,
    }
    for ours, theirs in zip(loaded.extract_many(clips), outputs):
        for stream in extractor.streams:
            np.testing.assert_allclose(ours[stream], theirs[stream], rtol=1e-5, atol=1e-5)


def test_checkpoint_of_another_architecture_names_the_file(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(reference_model("wavlm_base", TINY_ARCH).state_dict(), path)
    extractor = SSLExtractor(features_cfg(model="wavlm_base", weights="checkpoint", checkpoint=str(path)))
    with pytest.raises(SSLWeightsError, match=r"tiny\.pt: state dict does not match .*WAVLM_BASE"):
        extractor.extract_many(waves(16000))


def test_missing_checkpoint_fails_at_construction_naming_the_key(tmp_path):
    with pytest.raises(SSLWeightsError, match=r"missing\.pt: not found \(features\.ssl\.checkpoint\)"):
        SSLExtractor(features_cfg(model="wavlm_base", weights="checkpoint",
                                  checkpoint=str(tmp_path / "missing.pt")))


@pytest.mark.parametrize("model_name", ["wavlm_base_plus", "wavlm_large", "hubert_large"])
def test_last_layer_is_the_encoders_output(model_name):
    """Pre-norm (Large) models end with a LayerNorm; extract_features alone leaves it out."""
    extractor = SSLExtractor(features_cfg(model=model_name, arch_overrides=TINY_ARCH))
    clip = waves(16000, seed=2)
    (result,) = extractor.extract_many(clip)
    model = reference_model(model_name, TINY_ARCH)
    with torch.no_grad():
        x = torch.from_numpy(clip[0])[None]
        if extractor._spec.normalize_waveform:
            x = torch.nn.functional.layer_norm(x, x.shape[-1:])
        features, _ = model.feature_extractor(x, None)
        encoder_output = model.encoder.transformer(model.encoder.feature_projection(features))[0]
        intermediate, _ = model.extract_features(x)
    np.testing.assert_allclose(result["layer_02"], encoder_output.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(result["layer_01"], intermediate[0][0].numpy(), rtol=1e-3, atol=1e-4)
    pre_norm = model_name.endswith("_large")
    assert np.allclose(intermediate[-1][0].numpy(), encoder_output.numpy(), atol=1e-4) != pre_norm
