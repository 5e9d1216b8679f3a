"""How many torch threads a train job uses: its cores shared among the trials running beside it.

Two OpenMP threads per process on two busy cores were measured ~10x slower per step than one, so a
joblib sweep with n_jobs trials at once must give each trial cores // n_jobs threads, not all cores.
"""

from __future__ import annotations

import logging
import os

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger(__name__)

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def threads_per_trial(cores: int, trials_at_once: int) -> int:
    """The cores this process may use, divided among the trials running at once; at least 1."""
    return max(1, cores // max(1, trials_at_once))


def joblib_workers(n_jobs: int | None, cores: int) -> int:
    """joblib's reading of n_jobs: None -> 1, -1 -> all cores, -2 -> all but one, ..."""
    if n_jobs is None:
        return 1
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def trials_at_once(hydra_cfg: DictConfig | None, cores: int) -> int:
    """Trials this machine runs at once: the joblib launcher's workers (no more than the sweeper's
    batch of trials, where it has one) when the job runs under hydra/launcher=joblib; 1 otherwise
    (a plain run, or a launcher that gives every trial its own allocation, such as SLURM)."""
    if hydra_cfg is None or hydra_cfg.launcher.get("_target_") != JOBLIB_LAUNCHER:
        return 1
    workers = joblib_workers(hydra_cfg.launcher.get("n_jobs"), cores)
    batch = hydra_cfg.sweeper.get("n_jobs")
    return min(workers, batch) if isinstance(batch, int) and batch > 0 else workers


def configure_threads(requested: int | None) -> int:
    """Set torch's intra-op threads: ``requested``, or (null) this machine's share; log it."""
    cores = len(os.sched_getaffinity(0))
    if requested is not None:
        threads, why = requested, "trainer.num_threads"
    else:
        hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
        trials = trials_at_once(hydra_cfg, cores)
        threads = threads_per_trial(cores, trials)
        why = f"{cores} cores / {trials} trial(s) at once"
    torch.set_num_threads(threads)
    log.info("torch threads: %d (%s)", threads, why)
    return threads
