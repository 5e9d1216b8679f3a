"""The offline-weights check runs before the corpus is generated, says the alternatives first,
and does not stand in the way of a store already built from those weights."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

import crema_exp.train as train_job
from crema_exp.features.ssl_weights import SSLWeightsError, describe_ssl_weights
from crema_exp.features.weights_check import require_ssl_weights

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"paths.cache_dir={tmp_path / 'cache'}"])


def test_default_job_offline_fails_before_generating_the_corpus(offline, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(SSLWeightsError) as raised:
        train_job.run_job(offline, run_dir)
    message = str(raised.value)
    assert message.startswith("features.ssl.model=wavlm_base_plus needs its weights")
    assert message.index("features=mel_prosody") < message.index("download error")
    assert len(message.splitlines()) <= 8
    assert not (tmp_path / "cache").exists()  # no demo corpus, no feature store


def test_a_store_built_with_the_same_weights_needs_no_download(offline, tmp_path):
    identity = describe_ssl_weights(offline.features.ssl).identity
    store = Path(offline.paths.feature_dir) / "ssl-0123456789abcdef"
    store.mkdir(parents=True)
    (store / "metadata.json").write_text(json.dumps({"weights": {**identity, "random": False}}))
    require_ssl_weights(offline)  # no error: ensure_store will reuse that store
