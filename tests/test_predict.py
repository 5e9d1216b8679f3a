"""Predict: a checkpoint plus audio files give one row per readable clip; bad files are listed."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from _helpers_training import tiny_train_config
from crema_exp.features.spectral import SpectralExtractor
from crema_exp.models import EmotionClassifier
from crema_exp.predict import predict
from crema_exp.training.checkpoint import save_checkpoint
from crema_exp.training.input_transform import InputTransform
from crema_exp.training.settings import resolve_settings


@pytest.fixture
def checkpoint(tmp_path):
    cfg = tiny_train_config(["regularization.per_utterance_cmvn=true"])
    resolve_settings(cfg, {})
    layout = SpectralExtractor(cfg.features).layout
    dim = layout["pitch"][1]
    torch.manual_seed(0)
    model = EmotionClassifier(dim, cfg.model)
    path = tmp_path / "best_model.pt"
    transform = InputTransform("spectral", np.full(dim, -3.0, np.float32),
                               np.full(dim, 4.0, np.float32), True, layout)
    save_checkpoint(path, model, cfg=cfg, transform=transform, weights={"random": False}, epoch=1,
                    validation={})
    return path


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, seconds in enumerate([0.9, 1.7, 1.2]):
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"10{i:02d}_DFA_ANG_XX.wav", wave.astype(np.float32), 16000)
    (folder / "1099_DFA_SAD_XX.wav").write_bytes(b"RIFF....garbage")
    return folder


def test_predicts_readable_clips_and_lists_unreadable_ones(checkpoint, clips):
    predictions, skipped = predict(checkpoint, clips, device="cpu", batch_size=2)
    assert predictions["clip"].tolist() == ["1000_DFA_ANG_XX", "1001_DFA_ANG_XX", "1002_DFA_ANG_XX"]
    probabilities = predictions[[c for c in predictions if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    labels = [c[2:] for c in predictions if c.startswith("p_")]
    assert predictions["predicted"].tolist() == [labels[i] for i in probabilities.argmax(1)]
    assert len(skipped) == 1 and skipped["path"].iloc[0].endswith("1099_DFA_SAD_XX.wav")
    assert skipped["reason"].iloc[0]


def test_batching_does_not_change_predictions(checkpoint, clips):
    one_by_one, _ = predict(checkpoint, clips, device="cpu", batch_size=1)
    together, _ = predict(checkpoint, clips, device="cpu", batch_size=16)
    columns = [c for c in one_by_one if c.startswith("p_")]
    np.testing.assert_allclose(one_by_one[columns], together[columns], atol=1e-5)


def test_bad_checkpoint_or_inputs_are_named_in_the_error(checkpoint, tmp_path, clips):
    bogus = tmp_path / "model.pt"
    torch.save({"weights": 1}, bogus)
    with pytest.raises(ValueError, match="model.pt"):
        predict(bogus, clips, device="cpu")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        predict(checkpoint, tmp_path / "nowhere", device="cpu")


def test_clip_shorter_than_the_training_minimum_is_skipped_with_that_reason(checkpoint, clips):
    t = np.arange(int(16000 * 0.3)) / 16000  # data.min_duration of the checkpoint: 0.5 s
    sf.write(clips / "1003_DFA_ANG_XX.wav", (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32),
             16000)
    predictions, skipped = predict(checkpoint, clips, device="cpu")
    assert "1003_DFA_ANG_XX" not in predictions["clip"].tolist() and len(predictions) == 3
    reason = skipped.set_index("path")["reason"][str(clips / "1003_DFA_ANG_XX.wav")]
    assert reason.startswith("too short (0.300 s < data.min_duration 0.5 s")


def test_cli_exits_non_zero_when_nothing_could_be_predicted(checkpoint, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "notes.wav").write_text("a text file named .wav")
    command = [sys.executable, "-m", "crema_exp.predict", f"checkpoint={checkpoint}",
               f"inputs={folder}", f"output={tmp_path / 'out.csv'}", "device=cpu"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "no input could be predicted" in result.stdout + result.stderr
    assert "notes.wav" in (tmp_path / "out_skipped.csv").read_text()


TINY_SSL = ["features.kind=ssl", "features.ssl.model=wavlm_base", "features.ssl.weights=random",
            "features.ssl.arch_overrides={encoder_num_layers: 2, encoder_embed_dim: 64, "
            "encoder_num_heads: 4, encoder_ff_interm_features: 128}"]


def _ssl_checkpoint(path, weights_overrides=()):
    """A checkpoint of a model trained on layer 2 of a tiny random-weights WavLM."""
    from crema_exp.features.ssl import SSLExtractor

    cfg = tiny_train_config(TINY_SSL + list(weights_overrides))
    resolve_settings(cfg, {})
    extractor = SSLExtractor(cfg.features)
    torch.manual_seed(0)
    model = EmotionClassifier(extractor.dim, cfg.model)
    transform = InputTransform("layer_02", np.zeros(extractor.dim, np.float32),
                               np.ones(extractor.dim, np.float32), False, None)
    save_checkpoint(path, model, cfg=cfg, transform=transform, weights=extractor.weights_identity,
                    epoch=1, validation={})
    return path


def test_ssl_checkpoint_predicts_with_the_same_weights_and_refuses_others(tmp_path, clips):
    checkpoint = _ssl_checkpoint(tmp_path / "ssl.pt")
    predictions, skipped = predict(checkpoint, clips, device="cpu", batch_size=2)
    assert len(predictions) == 3 and len(skipped) == 1

    other = _ssl_checkpoint(tmp_path / "other.pt", ["features.ssl.model=hubert_base"])
    saved = torch.load(other, weights_only=False)
    saved["features"]["ssl"]["model"] = "wavlm_base"  # features config says WavLM, weights HuBERT
    torch.save(saved, other)
    with pytest.raises(ValueError, match="weights differ"):
        predict(other, clips, device="cpu", batch_size=2)
