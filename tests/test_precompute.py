"""End to end: `python -m crema_exp.precompute` on a tiny generated corpus, real extractors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from crema_exp.features.store import FeatureStore

TINY_CORPUS = ["data=synthetic", "data.synthetic.num_actors=6", "data.synthetic.sentences=[DFA]",
               "data.synthetic.max_duration=1.6"]
TINY_SSL = ("++features.ssl.arch_overrides={encoder_embed_dim:64,encoder_num_layers:2,"
            "encoder_num_heads:4,encoder_ff_interm_features:128,extractor_conv_layer_config:"
            "[[32,10,5],[32,3,2],[32,3,2],[32,3,2],[32,3,2],[32,2,2],[32,2,2]]}")


def run_precompute(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CREMA_EXP_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "crema_exp.precompute", *TINY_CORPUS, *overrides,
               f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def printed_store(done: subprocess.CompletedProcess) -> FeatureStore:
    line = next(l for l in done.stdout.splitlines() if l.startswith("feature store: "))
    return FeatureStore(line.removeprefix("feature store: "))


def test_mel_prosody_precompute_then_reuse(tmp_path):
    first = run_precompute(tmp_path, "features=mel_prosody", "features.num_workers=2")
    store = printed_store(first)
    assert store.root.parent == tmp_path / "cache" / "features"
    meta = store.metadata
    assert meta["kind"] == "mel_prosody" and store.streams == ["spectral"]
    assert meta["streams"]["spectral"]["frame_rate"] == 100.0
    assert meta["corpus"]["total"]["clips"] == 36 and meta["skipped"] == []
    # for the record only: the train job reads conf/features/<kind>.yaml
    assert meta["recommended"]["regularization"]["per_utterance_cmvn"] is True
    assert meta["config"]["features"]["num_workers"] == 2
    features, index = store.read("spectral"), store.index()
    assert len(index) == 36 and len(features) == index["length"].sum()
    assert features.shape[1] == meta["streams"]["spectral"]["dim"]

    again = run_precompute(tmp_path, "features=mel_prosody", "features.num_workers=1")
    assert printed_store(again).root == store.root  # num_workers is not part of the key
    assert "Reusing complete feature store" in again.stderr + (tmp_path / "run").joinpath(
        "precompute.log").read_text()


def test_random_ssl_precompute_stores_every_layer(tmp_path):
    done = run_precompute(tmp_path, "features=ssl", "features.ssl.weights=random",
                          "features.ssl.model=wavlm_base", TINY_SSL)
    store = printed_store(done)
    assert store.streams == ["layer_00", "layer_01", "layer_02"]
    assert store.metadata["weights"]["random"] is True
    layer, index = store.read("layer_02"), store.index()
    assert layer.shape == (index["length"].sum(), 64)
    assert len(index) == len(pd.read_csv(store.root / "manifest.csv"))


def test_bad_config_fails_before_any_work(tmp_path):
    env = {**os.environ, "CREMA_EXP_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "crema_exp.precompute", *TINY_CORPUS, "features=mel",
         "features.num_workers=0", f"hydra.run.dir={tmp_path / 'run'}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "features.num_workers=0" in done.stderr
    assert not (tmp_path / "cache" / "features").exists()
