"""The Optuna sweeper of hydra-optuna-sweeper 1.3.0, made resumable, prunable and safe for many workers.

Differences from the plugin (everything else, including its config keys, is unchanged):

* ``n_trials`` is the size the study should reach, counted over every worker on the study: trials
  finished earlier or by concurrent sweeps count, a retried crash counts once, so re-running a
  stopped sweep's command finishes it and raising ``n_trials`` adds trials. A worker asks for new
  trials under a lock (:mod:`.claim_lock`) and, once all are taken, waits for the others' running
  trials, healing them if their worker dies (:mod:`.healing`).
* Each trial runs in ``<sweep dir>/trial_<number>`` (the Optuna trial number, unique in the study);
  the folder gets ``optuna.json`` (study, trial, storage, pruner, heartbeat, worker identity and
  seed, the trial it retries) before the trial starts, and the trial the user attribute
  ``run_dir``. The train job reads it to report per-epoch values for pruning
  (:mod:`.job_trial`).
* Distinct sampler seeds per worker (:mod:`.worker_seed`), TPE's ``constant_liar``, race-free study
  creation and Optuna's heartbeat for RDB storages (:mod:`.study_access`).
* A NaN/inf objective fails the trial instead of crashing the sweep; a sweep without a single
  completed trial exits non-zero with one line per distinct error.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution
from optuna.trial import Trial, TrialState

from crema_exp.sweeps.claim_lock import claim_lock
from crema_exp.sweeps.finite_objective import FiniteObjectiveLauncher
from crema_exp.sweeps.healing import (ERROR_ATTR, FAILURE_ATTR, failure_summary, heal,
                                      retried_from, tally)
from crema_exp.sweeps.job_trial import read_job_status
from crema_exp.sweeps.storage import absolute_storage_url, printable_storage_url
from crema_exp.sweeps.study_access import create_or_load_study, rdb_storage
from crema_exp.sweeps.trial_record import trial_subdir, write_trial_record
from crema_exp.sweeps.worker_seed import WorkerIdentity, worker_seed
from crema_exp.training.heartbeat import beating

log = logging.getLogger(__name__)

WAIT_POLL_S = 2.0  # how often a worker with nothing to ask looks at the others' running trials


class SweepFailed(SystemExit):
    """Ends the sweep process non-zero with a summary and no traceback (SystemExit's message)."""


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    def __init__(self, *, storage: Any, pruner: Any = None, max_retry: int = 1,
                 heartbeat_interval: int = 60, grace_period: int = 180,
                 constant_liar: bool = True, **kwargs: Any) -> None:
        super().__init__(storage=absolute_storage_url(storage), **kwargs)
        self.pruner = pruner
        self.max_retry = max_retry
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.constant_liar = constant_liar
        self.identity = WorkerIdentity.current()
        self.seed: int | None = None
        self.record_extra: dict[str, Any] = {}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = FiniteObjectiveLauncher(self.launcher)
        self.sweeper_cfg = config.hydra.sweeper

    # -- study and sampler ---------------------------------------------------------------------

    def _open_study(self, directions: List[str]) -> optuna.Study:
        storage = None
        if self.storage is not None:
            storage = rdb_storage(self.storage, heartbeat_interval=self.heartbeat_interval,
                                  grace_period=self.grace_period)
        sampler = self._make_sampler(self.sweeper_cfg.sampler.get("seed"))
        study, created = create_or_load_study(study_name=self.study_name, storage=storage,
                                              sampler=sampler, pruner=self.pruner,
                                              directions=directions)
        self.seed = worker_seed(self.sweeper_cfg.sampler.get("seed"), self.identity, created)
        if not created:
            study.sampler = self._make_sampler(self.seed)
        pruner_cfg = self.sweeper_cfg.get("pruner")
        self.record_extra = {
            "pruner": OmegaConf.to_container(pruner_cfg, resolve=True) if pruner_cfg else None,
            "heartbeat": {"interval_s": self.heartbeat_interval, "grace_s": self.grace_period},
            "worker": self.identity.as_dict(), "sampler_seed": self.seed,
        }
        log.info("Study %r %s; this worker's sampler seed: %s", study.study_name,
                 "created" if created else "joined", self.seed)
        return study

    def _make_sampler(self, seed: int | None) -> Any:
        """The configured sampler with ``seed`` (and constant_liar for TPE); unseeded ones as given."""
        if "seed" not in self.sweeper_cfg.sampler:  # GridSampler
            return self.sampler
        extra: dict[str, Any] = {"seed": seed}
        if isinstance(self.sampler, optuna.samplers.TPESampler):
            extra["constant_liar"] = self.constant_liar
        with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna 2.10
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return instantiate(self.sweeper_cfg.sampler, **extra)

    # -- the sweep -----------------------------------------------------------------------------

    def sweep(self, arguments: List[str]) -> None:
        assert self.config is not None and self.launcher is not None
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config() + list(arguments)
        distributions, fixed_params = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            distributions = {**self.search_space_distributions, **distributions}
        if isinstance(self.sampler, functools.partial):  # GridSampler needs the choices first
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        for name in fixed_params:
            distributions.pop(name, None)
        directions = self._get_directions()

        study = self._open_study(directions)
        log.info("Storage: %s; sampler %s; pruner %s; n_trials %d (for the whole study)",
                 printable_storage_url(self.storage), type(study.sampler).__name__,
                 type(study.pruner).__name__, self.n_trials)
        while True:
            with self._claim(study):
                heal(study, self.max_retry)
                counts = tally(study)
                trials = [study.ask() for _ in range(min(self.n_jobs, counts.to_ask(self.n_trials)))]
            if trials:
                self._run_batch(study, trials, distributions, fixed_params, directions)
            elif counts.running:
                time.sleep(WAIT_POLL_S)  # the others' trials may still fail and need a retry
            else:
                break
        self._finish(study, directions)

    @contextmanager
    def _claim(self, study: optuna.Study) -> Iterator[None]:
        storage = study._storage
        if isinstance(storage, optuna.storages.RDBStorage):
            with claim_lock(storage, study.study_name):
                yield
        else:
            yield

    def _run_batch(self, study: optuna.Study, trials: List[Trial],
                   distributions: Dict[str, BaseDistribution], fixed_params: Dict[str, Any],
                   directions: List[str]) -> None:
        overrides = self._configure_trials(trials, distributions, fixed_params)
        with _heartbeats(study, trials, self.heartbeat_interval):
            try:
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            except Exception as exc:  # e.g. a joblib worker killed by the OOM killer
                log.error("launcher failed: %s: %s", type(exc).__name__, exc)
                returns = [JobReturn(status=JobStatus.FAILED, _return_value=exc) for _ in trials]
        self.job_idx += len(returns)
        failures = sum(self._record(study, trial, ret, directions) for trial, ret in zip(trials, returns))
        if failures / len(returns) > self.max_failure_rate:
            raise SweepFailed(f"{failures} of {len(returns)} trials of a batch failed "
                              f"(max_failure_rate={self.max_failure_rate}):\n"
                              + "\n".join(failure_summary(study)))

    def _record(self, study: optuna.Study, trial: Trial, ret: JobReturn, directions: List[str]) -> bool:
        """Tell the study how the job ended, unless the job did it itself (pruned, interrupted)."""
        if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
            return study._storage.get_trial(trial._trial_id).state == TrialState.FAIL
        if ret.status == JobStatus.COMPLETED:
            try:
                values = _values(ret.return_value, len(directions))
            except (TypeError, ValueError) as exc:
                return _fail(study, trial, "error", f"{type(exc).__name__}: {exc}")
            study.tell(trial, values)
            return False
        job_status = read_job_status(Path(trial.user_attrs["run_dir"]))
        error = ret._return_value
        message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        kind = ("interrupted" if job_status == "interrupted"
                else "lost" if job_status in (None, "running") else "error")
        return _fail(study, trial, kind, message.splitlines()[0] if message else kind)

    def _finish(self, study: optuna.Study, directions: List[str]) -> None:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        log.info("Study %r: %s", study.study_name,
                 ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states))))
        if not complete and TrialState.PRUNED.name in states:
            log.warning("no trial of study %r ran to the end: all were pruned or failed; "
                        "no best parameters to report", study.study_name)
            return
        if not complete:
            raise SweepFailed(f"sweep {study.study_name!r}: no trial completed "
                              f"({len(states)} trial(s) in the study); failures:\n"
                              + "\n".join(failure_summary(study)))
        if len(directions) < 2:
            best = study.best_trial
            results: Dict[str, Any] = {"name": "optuna", "best_params": best.params,
                                       "best_value": best.value}
            log.info("Best parameters: %s", best.params)
            log.info("Best value: %s (trial %d)", best.value, best.number)
        else:
            results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values}
                                                       for t in study.best_trials]}
        OmegaConf.save(OmegaConf.create(results), f"{self.sweep_dir}/optimization_results.yaml")

    def _configure_trials(self, trials: List[Trial],
                          search_space_distributions: Dict[str, BaseDistribution],
                          fixed_params: Dict[str, Any]) -> Sequence[Sequence[str]]:
        overrides = super()._configure_trials(trials, search_space_distributions, fixed_params)
        placed = []
        for trial, trial_overrides in zip(trials, overrides):
            subdir = trial_subdir(trial.number)
            run_dir = Path(self.sweep_dir, subdir).absolute()
            retry_of = retried_from(trial)
            previous = None
            if retry_of is not None:  # the last attempt of the chain, whose folder this one follows
                previous = max((t for t in trial.study.get_trials(deepcopy=False)
                                if t.number < trial.number and t.state == TrialState.FAIL
                                and retry_of in (t.number, t.system_attrs.get("failed_trial"))),
                               key=lambda t: t.number, default=None)
                for attr in (FAILURE_ATTR, ERROR_ATTR):  # copied from the failed attempt
                    if attr in trial.user_attrs:
                        trial.set_user_attr(attr, None)
            write_trial_record(run_dir, study=trial.study.study_name, trial=trial.number,
                               storage=printable_storage_url(self.storage), **self.record_extra,
                               retry_of=None if previous is None else {
                                   "trial": previous.number,
                                   "run_dir": previous.user_attrs.get("run_dir")})
            trial.set_user_attr("run_dir", str(run_dir))
            placed.append((*trial_overrides, f"hydra.sweep.subdir={subdir}"))
        return placed


def _values(value: Any, n: int) -> List[float]:
    values = [float(v) for v in value] if n > 1 else [float(value)]
    if len(values) != n:
        raise ValueError(f"expected {n} objective values, got {len(values)}")
    return values


def _fail(study: optuna.Study, trial: Trial, kind: str, error: str) -> bool:
    trial.set_user_attr(FAILURE_ATTR, kind)
    trial.set_user_attr(ERROR_ATTR, error)
    study.tell(trial, state=TrialState.FAIL)
    log.warning("trial %d failed (%s): %s", trial.number, kind, error)
    return True


@contextmanager
def _heartbeats(study: optuna.Study, trials: List[Trial], interval: int) -> Iterator[None]:
    """Optuna's heartbeat for the batch's trials while they run (the train job sends its own too)."""
    storage = study._storage
    if not storage.is_heartbeat_enabled():
        yield
        return
    def beat() -> None:
        for trial in trials:
            try:
                storage.record_heartbeat(trial._trial_id)
            except Exception as exc:  # a lost connection must not kill the sweep
                log.debug("heartbeat of trial %d: %s", trial.number, exc)

    beat()
    with beating(beat, interval):
        yield
