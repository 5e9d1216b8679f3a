"""One job from start to end: status.json with a heartbeat, SIGTERM/SIGINT, and its Optuna trial.

Used by the train job (and by the tests' stand-in app) so that every run folder ends with an honest
status: completed, pruned, failed, interrupted, or (seen by compare) stale when the job died silently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from crema_exp.sweeps.job_trial import SweepTrial
from crema_exp.training.artefacts import RunStatus
from crema_exp.training.heartbeat import beating
from crema_exp.training.signals import JobInterrupted, signals_raise

log = logging.getLogger(__name__)

HEARTBEAT_S = 30  # outside a sweep (a sweep's optuna.json gives its own)
EpochCallback = Callable[[dict], bool]


def run_tracked(run_dir: Path, optimized_metric: str,
                work: Callable[[EpochCallback | None], float],
                storage_url: str | None = None) -> float:
    """Run ``work(on_epoch_end)`` and record how it ended; returns its objective.

    A signal ends the process with exit code 128 + signal number after recording it (no traceback).
    ``storage_url``: the sweep's storage, used when optuna.json masks a password.
    """
    status = RunStatus(run_dir, optimized_metric, stale_after_s=3 * HEARTBEAT_S)
    trial = None
    try:
        with signals_raise():
            trial = SweepTrial.find(run_dir, storage_url)
            interval = (trial and trial.heartbeat_interval_s) or HEARTBEAT_S
            status.record["stale_after_s"] = (trial and trial.grace_period_s) or 3 * interval
            status.beat()

            def beat() -> None:
                status.beat()
                if trial is not None:
                    trial.heartbeat()

            with beating(beat, interval):
                objective = work(trial.epoch_callback(optimized_metric) if trial else None)
    except JobInterrupted as exc:
        log.error("%s: stopping; run folder %s", exc, run_dir)
        status.finish("interrupted", error=str(exc), signal=exc.signal_name)
        trial = trial or SweepTrial.find(run_dir, storage_url)  # the signal came during find
        if trial is not None:
            trial.finish_interrupted(exc.signal_name)
        raise SystemExit(128 + exc.signum) from None
    except BaseException as exc:
        status.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if trial is not None and trial.pruned:
        status.finish("pruned", objective=objective)
        trial.finish_pruned()
    else:
        status.finish("completed", objective=objective)
    return objective
