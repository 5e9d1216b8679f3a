"""The learned SSL layer mix: weights, gradients, disk-backed batches, training, checkpoint, predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import crema_exp.train as train_job
from crema_exp.config import EMOTIONS, ConfigError, validate
from crema_exp.features.store import FeatureStore, StoreError
from crema_exp.models.layer_mix import LayerMix
from crema_exp.predict import classify, predict
from crema_exp.training.checkpoint import load_checkpoint
from crema_exp.training.layer_reader import LayerFrames, mixed_streams
from test_predict import TINY_SSL, clips  # noqa: F401  (fixture)
from test_train_job import composed

LAYERS, DIM = 4, 12
SIZES = {"train": 96, "validation": 36, "test": 36}


def write_layer_store(root, informative: int = 2, seed: int = 0) -> FeatureStore:
    """An SSL-like store of LAYERS layer streams; only layer ``informative`` carries the class."""
    rng = np.random.default_rng(seed)
    class_means = rng.normal(0.0, 0.8, size=(len(EMOTIONS), DIM))
    stats = {}
    for split, size in SIZES.items():
        labels = np.arange(size) % len(EMOTIONS)
        lengths = rng.integers(8, 30, size=size)
        (root / split).mkdir(parents=True)
        for layer in range(LAYERS):
            centre = class_means if layer == informative else np.zeros_like(class_means)
            frames = np.concatenate([rng.normal(centre[c], 1.0, (n, DIM)) for c, n in
                                     zip(labels, lengths)]).astype(np.float16)
            np.save(root / split / f"layer_{layer:02d}.npy", frames)
            if split == "train":
                stats.update({f"layer_{layer:02d}.mean": frames.mean(0, dtype=np.float64).astype(np.float32),
                              f"layer_{layer:02d}.var": frames.var(0, dtype=np.float64).astype(np.float32),
                              f"layer_{layer:02d}.count": np.int64(len(frames))})
        pd.DataFrame({"clip_id": [f"{1001 + i}_DFA_{EMOTIONS[c][:3].upper()}_XX" for i, c in enumerate(labels)],
                      "offset": np.concatenate([[0], np.cumsum(lengths)[:-1]]), "length": lengths,
                      "emotion": [EMOTIONS[c] for c in labels], "actor": 1001 + np.arange(size)},
                     ).to_csv(root / split / "index.csv", index=False)
    np.savez(root / "normalisation.npz", **stats)
    (root / "metadata.json").write_text(json.dumps({
        "kind": "ssl", "corpus": {"splits": list(SIZES)}, "recommended": {}, "weights": {},
        "streams": {f"layer_{layer:02d}": {"dim": DIM, "frame_rate": 50.0} for layer in range(LAYERS)},
    }))
    return FeatureStore(root)


def test_mix_weights_start_equal_sum_to_one_and_receive_gradients():
    mix = LayerMix(5, layer_norm=True)
    assert torch.allclose(mix.weights(), torch.full((5,), 0.2))
    frames = torch.randn(2, 7, 5, 3) * torch.arange(1, 6.0)[:, None]
    frames[1, 4:] = 0  # padding
    out = mix(frames)
    assert out.shape == (2, 7, 3) and torch.all(out[1, 4:] == 0)
    out[:, :, 0].sum().backward()
    assert mix.logits.grad is not None and mix.logits.grad.abs().sum() > 0
    mix.logits.data = torch.tensor([3.0, -1.0, 0.5, 0.0, 2.0])
    assert float(mix.weights().detach().sum()) == pytest.approx(1.0)


def test_layer_selection_and_disk_backed_frames(tmp_path):
    store = write_layer_store(tmp_path / "store")
    cfg = composed(["features=ssl"]).features
    cfg.ssl_layer = "weighted"
    assert mixed_streams(store, cfg) == [f"layer_{i:02d}" for i in range(LAYERS)]
    cfg.ssl_layer = [3, 1]
    assert mixed_streams(store, cfg) == ["layer_03", "layer_01"]
    cfg.ssl_layer = 2
    assert mixed_streams(store, cfg) is None
    cfg.ssl_layer = [1, 7]
    with pytest.raises(StoreError, match="layer_07"):
        mixed_streams(store, cfg)
    for bad in ("weighed", "[]", "[2,2]"):
        with pytest.raises(ConfigError, match="features.ssl_layer"):
            validate(composed([f"features.ssl_layer={bad}"]))

    frames = LayerFrames([tmp_path / "store" / "test" / f"layer_{i:02d}.npy" for i in (0, 2)])
    rows = torch.tensor([5, 6, 7, 40, 41])
    expected = np.stack([np.load(tmp_path / "store" / "test" / f"layer_{i:02d}.npy")[rows.numpy()]
                         for i in (0, 2)], axis=1)
    assert frames.shape[1:] == (2, DIM) and np.array_equal(frames[rows].numpy(), expected)


@pytest.fixture
def weighted_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix")
    store = write_layer_store(tmp / "store")
    run_dir = tmp / "run"
    run_dir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_job, "ensure_store", lambda cfg: store)
        train_job.run_job(composed(["features=ssl", "features.ssl_layer=weighted", "trainer.epochs=3",
                                    "model.layer_mix_norm=true", "optimizer.lr=0.02"]), run_dir)
    return store, run_dir


def test_weighted_run_records_weights_and_its_checkpoint_reproduces_the_test(weighted_run):
    store, run_dir = weighted_run
    history = json.loads((run_dir / "history.json").read_text())
    weights = np.array([row["layer_weights"] for row in history])
    assert weights.shape == (3, LAYERS)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert np.ptp(weights[-1]) > 1e-4  # trained away from the equal start
    assert (run_dir / "layer_weights.png").stat().st_size > 0
    assert json.loads((run_dir / "test_metrics.json").read_text())["stream"] == \
        [f"layer_{i:02d}" for i in range(LAYERS)]

    predictor = load_checkpoint(run_dir / "best_model.pt")
    assert predictor.model.layer_mix is not None
    np.testing.assert_allclose(predictor.model.layer_mix.weights().detach().numpy(),
                               weights[json.loads((run_dir / "test_metrics.json").read_text())["best_epoch"] - 1],
                               atol=1e-6)
    index = store.read("test", "layer_00")[1]
    layers = [np.asarray(store.read("test", f"layer_{i:02d}")[0], np.float32) for i in range(LAYERS)]
    clips_ = [np.stack([a[o:o + n] for a in layers], axis=1) for o, n in zip(index.offset, index.length)]
    probabilities = classify(predictor, clips_, torch.device("cpu"))
    expected = pd.read_csv(run_dir / "test_predictions.csv")
    np.testing.assert_allclose(probabilities, expected[[f"p_{e}" for e in EMOTIONS]].to_numpy(), atol=1e-4)


def test_predict_runs_a_weighted_checkpoint_on_audio(tmp_path, clips):  # noqa: F811
    from crema_exp.features.ssl import SSLExtractor
    from crema_exp.models import EmotionClassifier
    from crema_exp.training.checkpoint import save_checkpoint
    from crema_exp.training.settings import resolve_settings
    from _helpers_training import tiny_train_config

    cfg = tiny_train_config(TINY_SSL + ["features.ssl_layer=weighted"])
    resolve_settings(cfg, {})
    extractor = SSLExtractor(cfg.features)
    streams = ["layer_00", "layer_01", "layer_02"]
    model = EmotionClassifier(extractor.dim, cfg.model, mixed_layers=len(streams))
    path = tmp_path / "mix.pt"
    save_checkpoint(path, model, cfg=cfg, stream=streams, mean=np.zeros((3, extractor.dim), np.float32),
                    var=np.ones((3, extractor.dim), np.float32),
                    weights={**extractor.weights_identity, "random": True}, layout=None, epoch=1,
                    validation={})
    predictions, skipped = predict(path, clips, device="cpu", batch_size=2)
    assert len(predictions) == 3 and len(skipped) == 1
    np.testing.assert_allclose(predictions.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)


def test_layer_profile_averages_single_layers_and_keeps_mixes_apart(tmp_path):
    from crema_exp.comparison.layer_profile import layer_profile, plot_layer_profile

    board = pd.DataFrame({"features.ssl_layer": ["3", "3", "5", "weighted", "weighted", "[3,5]", ""],
                          "val_uar": [0.4, 0.6, 0.5, 0.55, 0.65, 0.7, 0.9]})
    board.attrs.update(metric="val_uar", params=["features.ssl_layer"])
    single, mixes = layer_profile(board)
    assert single["layer"].tolist() == [3, 5]
    assert single["mean"].tolist() == pytest.approx([0.5, 0.5])
    assert single["sd"].iloc[0] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert dict(zip(mixes["choice"], mixes["mean"])) == pytest.approx({"weighted": 0.6, "[3,5]": 0.7})
    assert plot_layer_profile(board, tmp_path / "layers.png").stat().st_size > 0
    board.attrs["params"] = []
    assert plot_layer_profile(board, tmp_path / "none.png") is None
