"""Torch threads per train job: the machine's cores shared among the trials running at once."""

import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from crema_exp.config import register_configs
from crema_exp.training.threads import configure_threads, threads_per_trial, trials_at_once

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()


@pytest.mark.parametrize("cores, trials, threads", [
    (2, 1, 2), (2, 2, 1), (16, 4, 4), (16, 3, 5), (2, 4, 1), (8, 0, 8),
])
def test_threads_per_trial_divides_cores_among_trials(cores, trials, threads):
    assert threads_per_trial(cores, trials) == threads


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("overrides, trials", [
    ([], 1),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 2),
    (["hydra/launcher=joblib"], 16),  # the launcher's default n_jobs=-1: all cores
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-2"], 15),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "hparams_search=ssl_optuna",
      "hydra.sweeper.n_jobs=4"], 4),  # the sweeper asks for 4 trials per batch
    (["hydra/launcher=slurm"], 1),  # every SLURM trial has its own cpus_per_task
])
def test_trials_at_once_reads_the_composed_launcher(overrides, trials):
    assert trials_at_once(_compose(*overrides).hydra, cores=16) == trials


def test_null_num_threads_under_joblib_gives_each_trial_its_share(caplog, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(6)))
    before = torch.get_num_threads()
    HydraConfig.instance().set_config(_compose("hydra/launcher=joblib", "hydra.launcher.n_jobs=3"))
    try:
        with caplog.at_level(logging.INFO, logger="crema_exp.training.threads"):
            assert configure_threads(None) == 2
        assert torch.get_num_threads() == 2
        assert "torch threads: 2 (6 cores / 3 trial(s) at once)" in caplog.text
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        HydraConfig.instance().cfg = None
        torch.set_num_threads(before)
