"""The learned SSL layer mix: weights, gradients, disk-backed batches, training, checkpoint, predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import crema_exp.train as train_job
from omegaconf import OmegaConf

from crema_exp.config import EMOTIONS, ConfigError, DataConfig, validate
from crema_exp.features.store import FeatureStore, StoreError
from crema_exp.features.views import FeatureView, ensure_view
from crema_exp.models.layer_mix import LayerMix
from crema_exp.predict import classify, predict
from crema_exp.training.checkpoint import load_checkpoint
from crema_exp.training.input_transform import InputTransform
from crema_exp.training.layer_reader import LayerFrames, load_mixed_training_data, mixed_streams
from test_predict import TINY_SSL, clips  # noqa: F401  (fixture)
from test_train_job import composed

LAYERS, DIM = 4, 12
SIZES = {"train": 96, "validation": 36, "test": 36}


def write_layer_store(root, informative: int = 2, seed: int = 0) -> FeatureView:
    """An SSL-like v2 store of LAYERS layer streams (whole corpus, one .npy per layer at the root)
    and its view; only layer ``informative`` carries the class, and layers differ in scale."""
    rng = np.random.default_rng(seed)
    class_means = rng.normal(0.0, 0.8, size=(len(EMOTIONS), DIM))
    rows = []
    for split, size in SIZES.items():
        for c, n in zip(np.arange(size) % len(EMOTIONS), rng.integers(8, 30, size=size)):
            actor = 1001 + len(rows)
            rows.append({"clip_id": f"{actor}_DFA_{EMOTIONS[c][:3].upper()}_XX", "actor": actor,
                         "emotion": EMOTIONS[c], "split": split, "label": c, "length": n})
    manifest = pd.DataFrame(rows)
    root.mkdir(parents=True)
    for layer in range(LAYERS):
        centre = class_means if layer == informative else np.zeros_like(class_means)
        frames = [rng.normal(centre[c], 1.0 + layer, (n, DIM)) + 3 * layer
                  for c, n in zip(manifest["label"], manifest["length"])]
        np.save(root / f"layer_{layer:02d}.npy", np.concatenate(frames).astype(np.float16))
    lengths = manifest["length"].to_numpy()
    manifest[["clip_id"]].assign(offset=np.cumsum(lengths) - lengths, length=lengths).to_csv(
        root / "index.csv", index=False)
    (root / "metadata.json").write_text(json.dumps({
        "format_version": 2, "key": f"layers{seed}", "kind": "ssl", "weights": {},
        "streams": {f"layer_{layer:02d}": {"dim": DIM, "frame_rate": 50.0, "layout": None}
                    for layer in range(LAYERS)},
    }))
    return ensure_view(FeatureStore(root), manifest, OmegaConf.structured(DataConfig))


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
    view = write_layer_store(tmp_path / "store")
    store = view.store
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

    frames = LayerFrames([tmp_path / "store" / f"layer_{i:02d}.npy" for i in (0, 2)])
    rows = torch.tensor([5, 6, 7, 40, 41])
    expected = np.stack([np.load(tmp_path / "store" / f"layer_{i:02d}.npy")[rows.numpy()]
                         for i in (0, 2)], axis=1)
    assert frames.shape[1:] == (2, DIM) and np.array_equal(frames[rows].numpy(), expected)


def test_mixed_splits_follow_the_view_and_normalise_each_layer_on_its_own(tmp_path):
    view = write_layer_store(tmp_path / "store")
    streams = ["layer_03", "layer_00"]
    data = load_mixed_training_data(view, streams)
    test = view.split("test")
    assert data.test.clip_ids == test["clip_id"].tolist()
    assert np.array_equal(data.test.offsets, test["offset"])  # offsets into the whole-corpus files
    clip = 4
    o, n = int(data.test.offsets[clip]), int(data.test.lengths[clip])
    expected = np.stack([np.asarray(view.store.read(s))[o:o + n] for s in streams], axis=1)
    assert np.array_equal(data.test.frames[torch.arange(o, o + n)].numpy(), expected)
    # per-layer statistics of the view's train split: layer 3 is centred near 9, layer 0 near 0
    assert data.mean.shape == data.var.shape == (2, DIM)
    assert np.allclose(data.mean[0], view.normalisation("layer_03")[0])
    assert data.mean[0].mean() == pytest.approx(9, abs=0.5) and abs(data.mean[1].mean()) < 0.5
    transform = InputTransform(streams, data.mean, data.var, True, None)
    lengths = torch.tensor(data.train.lengths[:3])
    flat = data.train.frames[torch.cat([torch.arange(o, o + n) for o, n in
                                        zip(data.train.offsets[:3], data.train.lengths[:3])])]
    prepared = transform.batch(flat, lengths)
    assert prepared.shape == (3, int(lengths.max()), 2, DIM)
    first = prepared[0, :int(lengths[0])]  # per-utterance CMVN: every layer of a clip on its own
    assert torch.allclose(first.mean(dim=0), torch.zeros(2, DIM), atol=1e-4)


@pytest.fixture
def weighted_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix")
    view = write_layer_store(tmp / "store")
    run_dir = tmp / "run"
    run_dir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_job, "prepare_features", lambda cfg: view)
        train_job.run_job(composed(["features=ssl", "features.ssl.weights=random",
                                    "features.ssl_layer=weighted", "trainer.epochs=3",
                                    "model.layer_mix_norm=true", "optimizer.lr=0.02",
                                    "regularization.per_utterance_cmvn=true"]), run_dir)
    return view, run_dir


def test_weighted_run_records_weights_and_its_checkpoint_reproduces_the_test(weighted_run):
    view, run_dir = weighted_run
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
    assert predictor.transform.stream == [f"layer_{i:02d}" for i in range(LAYERS)]
    assert predictor.transform.per_utterance_cmvn and predictor.transform.mean.shape == (LAYERS, DIM)
    index = view.split("test")
    layers = [np.asarray(view.store.read(f"layer_{i:02d}")) for i in range(LAYERS)]
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
    transform = InputTransform(streams, np.zeros((3, extractor.dim), np.float32),
                               np.ones((3, extractor.dim), np.float32), True, None)
    save_checkpoint(path, model, cfg=cfg, transform=transform,
                    weights={**extractor.weights_identity, "random": True}, epoch=1, validation={})
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
