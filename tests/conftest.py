"""Shared fixtures: the Hydra config tree composed the way the jobs compose it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from crema_exp.config import register_configs

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# A train config small enough for tests: tiny model, CPU, one thread.
TINY_TRAIN = ["features=mel_prosody", "model.hidden_size=16", "model.attention_heads=2",
              "model.attention_hidden=16", "model.transformer_heads=2", "model.transformer_ffn=32",
              "trainer.device=cpu", "trainer.num_threads=1", "optimizer.lr=0.005"]

register_configs()


def compose_job(name: str = "train", overrides=(), hydra: bool = False):
    """``name`` (train | precompute | predict) composed from conf/ with ``overrides``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture
def compose_config():
    """compose_job as a fixture: ``compose_config("train", ["features=ssl"])``."""
    return compose_job


@pytest.fixture
def cfg_train():
    """The tiny train config (TINY_TRAIN), composed."""
    return compose_job("train", TINY_TRAIN)
