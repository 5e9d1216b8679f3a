"""5-fold cross-validation over one extraction: a tiny random-weights WavLM runs once per clip."""

from __future__ import annotations

import threading

import numpy as np
import torch
from omegaconf import OmegaConf

from crema_exp.config import TrainConfig
from crema_exp.features.ssl import SSLExtractor
from crema_exp.features.views import prepare_features

from _helpers_store import write_corpus

TINY_ARCH = {
    "extractor_conv_layer_config": [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
    "encoder_embed_dim": 64,
    "encoder_num_layers": 2,
    "encoder_num_heads": 4,
    "encoder_ff_interm_features": 128,
}


class CountingSSLExtractor(SSLExtractor):
    """The real extractor, counting the clips that go through the model's forward pass."""

    clips_forwarded = 0
    _lock = threading.Lock()  # forward passes run on a thread pool

    def _forward(self, batch: torch.Tensor):
        with CountingSSLExtractor._lock:
            CountingSSLExtractor.clips_forwarded += batch.shape[0]
        return super()._forward(batch)


def fold_cfg(tmp_path, fold: int):
    cfg = OmegaConf.structured(TrainConfig)
    cfg.paths.cache_dir = str(tmp_path / "cache")
    cfg.paths.feature_dir = str(tmp_path / "features")
    cfg.data.name, cfg.data.root, cfg.data.layout = "crema_d", str(tmp_path / "corpus"), "official"
    cfg.data.min_duration, cfg.data.fold = 0.1, fold
    cfg.features.kind = "ssl"
    cfg.features.ssl.model, cfg.features.ssl.weights = "wavlm_base", "random"
    cfg.features.ssl.arch_overrides = TINY_ARCH
    cfg.features.ssl.device = "cpu"
    return cfg


def test_five_folds_share_one_extraction_and_each_has_its_own_train_statistics(tmp_path):
    corpus = write_corpus(tmp_path / "corpus" / "AudioWAV")
    CountingSSLExtractor.clips_forwarded = 0
    views = []
    for fold in range(5):
        cfg = fold_cfg(tmp_path, fold)
        views.append(prepare_features(cfg, CountingSSLExtractor(cfg.features)))

    assert CountingSSLExtractor.clips_forwarded == len(corpus.manifest)  # once per clip, 5 folds
    assert len({v.store.root for v in views}) == 1 and len({v.key for v in views}) == 5
    tested = [set(v.split("test")["actor"]) for v in views]
    assert sorted(a for actors in tested for a in actors) == sorted(corpus.manifest["actor"].unique())

    frames = views[0].store.read("layer_02")
    by_clip = {row.clip_id: np.asarray(frames[row.offset:row.offset + row.length])
               for row in views[0].store.index().itertuples()}
    for view in views:
        train = view.split("train")
        assert not set(train["actor"]) & set(view.split("test")["actor"])
        direct = np.concatenate([by_clip[c] for c in train["clip_id"]]).astype(np.float64)
        mean, var = view.normalisation("layer_02")
        np.testing.assert_allclose(mean, direct.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var, direct.var(0), rtol=1e-4, atol=1e-6)
        assert view.record()["split"]["fold"] in range(5)
    assert not np.allclose(views[0].normalisation("layer_02")[0],
                           views[1].normalisation("layer_02")[0])
