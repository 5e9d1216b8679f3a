"""The Optuna trial seen from the job that runs it, in whatever process or machine that is.

The job finds its trial through the ``optuna.json`` that the sweeper wrote into its run folder
(storage, study, trial number, pruner config), so reporting works the same under the basic, joblib
and submitit launchers. The job reports its objective so far after each epoch, asks the study's
pruner whether to stop, and records the end itself when it is pruned or interrupted: the sweeper
process may be gone by then (SLURM time limit, preemption).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable

import optuna
from hydra.utils import instantiate
from optuna.trial import TrialState

from crema_exp.sweeps.healing import ERROR_ATTR, FAILURE_ATTR
from crema_exp.sweeps.study_access import rdb_storage, uncached
from crema_exp.sweeps.trial_record import read_trial_record
from crema_exp.training.signals import signals_deferred

log = logging.getLogger(__name__)


def read_job_status(run_dir: Path) -> str | None:
    """``status`` of the run's status.json, or None when there is none (yet)."""
    try:
        return json.loads((run_dir / "status.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


class SweepTrial:
    def __init__(self, study: optuna.Study, number: int, record: dict[str, Any]):
        self.study = study
        self.number = number
        self.record = record
        self.trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        self.pruned = False

    @classmethod
    def find(cls, run_dir: Path, storage_url: str | None = None) -> "SweepTrial | None":
        """The run's trial, or None outside an Optuna sweep with a database.

        ``storage_url`` replaces the record's URL when that one has a masked password.
        """
        record = read_trial_record(run_dir)
        if not record or not record.get("storage"):
            return None
        url = record["storage"]
        if "***" in url and storage_url:
            url = storage_url
        pruner = instantiate(record["pruner"]) if record.get("pruner") else optuna.pruners.NopPruner()
        study = optuna.load_study(study_name=record["study"], storage=rdb_storage(url), pruner=pruner)
        return cls(uncached(study), int(record["trial"]), record)

    @property
    def heartbeat_interval_s(self) -> float | None:
        return (self.record.get("heartbeat") or {}).get("interval_s")

    @property
    def grace_period_s(self) -> float | None:
        return (self.record.get("heartbeat") or {}).get("grace_s")

    def epoch_callback(self, metric: str) -> Callable[[dict], bool]:
        """``on_epoch_end(row) -> stop``: reports the best ``metric`` so far (the value the trial
        would return if it ended now) and says whether the pruner stops the trial."""
        higher_is_better = self.study.direction == optuna.study.StudyDirection.MAXIMIZE
        best: list[float] = []

        def on_epoch_end(row: dict) -> bool:
            value = float(row[metric])
            if math.isfinite(value):
                best.append(value if not best else (max if higher_is_better else min)(best[-1], value))
            if not best:
                return False
            trial = optuna.trial.Trial(self.study, self.trial_id)
            try:
                with signals_deferred():  # never cut a database write in half
                    trial.report(best[-1], step=int(row["epoch"]))
                    self.pruned = trial.should_prune()
            except RuntimeError as exc:  # the trial was finished elsewhere (e.g. failed as stale)
                log.warning("trial %d: cannot report to the study: %s", self.number, exc)
                return False
            if self.pruned:
                log.info("trial %d pruned after epoch %d (%s so far %.4f)", self.number,
                         row["epoch"], metric, best[-1])
            return self.pruned

        return on_epoch_end

    def heartbeat(self) -> None:
        self.study._storage.record_heartbeat(self.trial_id)

    def finish_pruned(self) -> None:
        """Record PRUNED (Optuna stores the last reported value as the trial's value)."""
        self._finish(TrialState.PRUNED)

    def finish_interrupted(self, signal_name: str) -> None:
        """Record FAIL at once, marked for a retry by the next worker that looks."""
        storage = self.study._storage
        storage.set_trial_user_attr(self.trial_id, FAILURE_ATTR, "interrupted")
        storage.set_trial_user_attr(self.trial_id, ERROR_ATTR, f"interrupted by {signal_name}")
        self._finish(TrialState.FAIL)

    def _finish(self, state: TrialState) -> None:
        if self.study._storage.get_trial(self.trial_id).state == TrialState.RUNNING:
            self.study.tell(self.number, state=state)
