"""The Optuna sweeper of hydra-optuna-sweeper 1.3.0, made safe to stop and start again.

Differences from the plugin (everything else, including the config keys, is unchanged):

* ``n_trials`` is the size the study should reach: trials already finished in the study (completed,
  pruned or failed, from earlier or concurrent sweeps) count, so re-running a stopped sweep's
  command finishes it and raising ``n_trials`` adds trials.
* Each trial runs in ``<sweep dir>/trial_<number>`` (the Optuna trial number, unique in the study)
  instead of Hydra's job number, which restarts at 0 and would overwrite earlier runs on resume.
  The folder gets ``optuna.json`` (study, trial, storage) before the trial starts, and the trial the
  user attribute ``run_dir``.
* A NaN/inf objective fails the trial instead of crashing the sweep.
* A relative SQLite path is made absolute and its folder created; a resumed sweep re-seeds the
  sampler so that a seeded sampler does not repeat the first trials' parameters.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence

import optuna
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from omegaconf import DictConfig
from optuna.distributions import BaseDistribution
from optuna.trial import Trial, TrialState

from crema_exp.sweeps.finite_objective import FiniteObjectiveLauncher
from crema_exp.sweeps.storage import absolute_storage_url, printable_storage_url
from crema_exp.sweeps.trial_record import trial_subdir, write_trial_record

log = logging.getLogger(__name__)

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    def __init__(self, *, storage: Any, **kwargs: Any) -> None:
        super().__init__(storage=absolute_storage_url(storage), **kwargs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = FiniteObjectiveLauncher(self.launcher)

    def sweep(self, arguments: List[str]) -> None:
        finished = self._finished_trials()
        if finished:
            log.info("Resuming study %r: %d trial(s) finished, target n_trials=%d",
                     self.study_name, finished, self.n_trials)
            if isinstance(self.sampler, optuna.samplers.BaseSampler):
                self.sampler.reseed_rng()
        self.n_trials = max(0, self.n_trials - finished)
        super().sweep(arguments)

    def _finished_trials(self) -> int:
        if self.storage is None or self.study_name is None:
            return 0
        try:
            study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        except KeyError:  # no such study yet
            return 0
        return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))

    def _configure_trials(self, trials: List[Trial],
                          search_space_distributions: Dict[str, BaseDistribution],
                          fixed_params: Dict[str, Any]) -> Sequence[Sequence[str]]:
        overrides = super()._configure_trials(trials, search_space_distributions, fixed_params)
        placed = []
        for trial, trial_overrides in zip(trials, overrides):
            subdir = trial_subdir(trial.number)
            run_dir = Path(self.sweep_dir, subdir).absolute()
            write_trial_record(run_dir, study=trial.study.study_name, trial=trial.number,
                               storage=printable_storage_url(self.storage))
            trial.set_user_attr("run_dir", str(run_dir))
            placed.append((*trial_overrides, f"hydra.sweep.subdir={subdir}"))
        return placed
