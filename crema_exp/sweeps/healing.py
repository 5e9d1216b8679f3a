"""Trial accounting across workers: failed-trial retries, stale trials, how many trials are left.

A *chain* is a trial and its retries (Optuna's RetryFailedTrialCallback marks a retry with the
system attribute ``failed_trial``: the number of the first trial of the chain); the last trial of
a chain stands for it. ``n_trials`` counts chains, so a retried crash does not use up a trial.

Why a trial failed is stored in its user attribute ``failure``: "error" (the job raised or returned
NaN: retrying would fail again), "interrupted" (SIGTERM/SIGINT) or "lost" (the worker died). Lost
and interrupted trials, and trials that the heartbeat check failed, are retried up to
``max_retry`` times with the same parameters.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RetryFailedTrialCallback
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)

FAILURE_ATTR = "failure"
ERROR_ATTR = "error"
RETRYABLE = ("interrupted", "lost", None)  # None: failed by the heartbeat check
DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def retried_from(trial: FrozenTrial) -> int | None:
    """The first trial of ``trial``'s chain if it is a retry (RetryFailedTrialCallback's mark)."""
    return trial.system_attrs.get("failed_trial")


def chain_of(trial: FrozenTrial) -> int:
    first = retried_from(trial)
    return trial.number if first is None else first


def chain_ends(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The last trial of each chain."""
    last: dict[int, FrozenTrial] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        last[chain_of(trial)] = trial
    return list(last.values())


@dataclass(frozen=True)
class Tally:
    done: int  # chains that ended (complete, pruned, or failed for good)
    running: int
    waiting: int  # queued retries

    def to_ask(self, n_trials: int) -> int:
        """Trials this worker may start now: queued retries first, then new settings."""
        return self.waiting + max(0, n_trials - self.done - self.running - self.waiting)


def tally(study: optuna.Study) -> Tally:
    states = Counter(t.state for t in chain_ends(study.get_trials(deepcopy=False)))
    return Tally(done=sum(states[s] for s in DONE_STATES), running=states[TrialState.RUNNING],
                 waiting=states[TrialState.WAITING])


def fail_stale_trials(storage: BaseStorage, study_id: int) -> list[int]:
    """Optuna's RDBStorage.fail_stale_trials, without its clock bug; returns the failed trials' ids.

    Optuna 2.10 measures a heartbeat's age as ``(now - heartbeat).seconds``, the seconds field of
    a timedelta, so a heartbeat recorded just after the checking worker read the database clock
    (age -0.03 s) counts as 86,399 s old and a live trial is failed. CI saw it: a worker failed
    another's trial 30 ms after it started, and the killed trial's retry then went to that trial
    instead. Here the age is ``total_seconds()``: a heartbeat newer than the clock reading is 0 s
    old. The query, the grace period and the state change are Optuna's own.
    """
    rdb = getattr(storage, "_backend", storage)  # the database under Optuna's cache, if any
    grace_s = rdb.grace_period or 2 * rdb.heartbeat_interval
    with _create_scoped_session(rdb.scoped_session, True) as session:
        now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)  # as Optuna
        beats = (session.query(models.TrialModel.trial_id, models.TrialHeartbeatModel.heartbeat)
                 .join(models.TrialHeartbeatModel,
                       models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                 .filter(models.TrialModel.study_id == study_id,
                         models.TrialModel.state == TrialState.RUNNING)
                 .all())
    stale = [trial_id for trial_id, beat in beats if (now - beat).total_seconds() > grace_s]
    return [trial_id for trial_id in stale if storage.set_trial_state(trial_id, TrialState.FAIL)]


def heal(study: optuna.Study, max_retry: int) -> None:
    """Fail the running trials of dead workers (heartbeat check), then queue retries of crashes.

    Call it while holding the claim lock, so that two workers do not retry one trial twice.
    """
    storage = study._storage
    if storage.is_heartbeat_enabled():
        for trial_id in fail_stale_trials(storage, study._study_id):
            log.warning("trial %d: its worker stopped sending heartbeats; marked failed",
                        storage.get_trial(trial_id).number)
    with warnings.catch_warnings():  # "experimental" in Optuna 2.10, still there in 4.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryFailedTrialCallback(max_retry=max_retry)
    for trial in chain_ends(study.get_trials(deepcopy=False)):
        if trial.state == TrialState.FAIL and trial.user_attrs.get(FAILURE_ATTR) in RETRYABLE:
            before = len(study.get_trials(deepcopy=False))
            retry(study, copy.deepcopy(trial))
            if len(study.get_trials(deepcopy=False)) > before:
                log.warning("trial %d (%s) will be retried with the same parameters", trial.number,
                            trial.user_attrs.get(FAILURE_ATTR) or "heartbeat lost")


def failure_summary(study: optuna.Study) -> list[str]:
    """One line per distinct error of the failed chains, with its count."""
    failed = [t for t in chain_ends(study.get_trials(deepcopy=False)) if t.state == TrialState.FAIL]
    errors = Counter(t.user_attrs.get(ERROR_ATTR) or t.user_attrs.get(FAILURE_ATTR) or "worker lost"
                     for t in failed)
    return [f"  {n} x {error}" for error, n in errors.most_common()]
