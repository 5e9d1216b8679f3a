"""Sweeps that prune weak trials, survive signals and end clearly: per-epoch reports from the job
to its trial, status.json "pruned"/"interrupted", retries of interrupted trials in a new folder,
a non-zero exit with one line per distinct error when no trial completes, stale runs in compare."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import sqlalchemy
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState

from _helpers_sweeps import SWEEP_APP, TINY_TRAIN, load_study, read_json, run_app, run_hydra
from crema_exp.comparison.run_status import effective_status
from crema_exp.sweeps.healing import fail_stale_trials
from crema_exp.sweeps.study_access import rdb_storage
from crema_exp.sweeps.worker_seed import WorkerIdentity, worker_seed

SEARCH = ["-m", "hparams_search=ssl_optuna"]


def test_pruned_trials_stop_early_keep_their_folder_and_record_the_last_value(tmp_path):
    run_app(tmp_path, *SEARCH, "hydra.sweeper.n_trials=8", "app.epochs=5",
            "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=2")
    sweep = tmp_path / "multirun" / "ssl_optuna"
    trials = load_study(sweep, "ssl_optuna").trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete and len(pruned) + len(complete) == 8
    for trial in complete[:2]:  # the warm-up trials are never pruned
        assert trial.number < 2 and len(trial.intermediate_values) == 5
    for trial in pruned:
        steps = sorted(trial.intermediate_values)
        assert 2 <= steps[-1] < 5  # not before n_warmup_steps, and before the last epoch
        assert trial.value == trial.intermediate_values[steps[-1]]
        status = read_json(sweep / f"trial_{trial.number:04d}" / "status.json")
        assert status["status"] == "pruned" and status["objective"] is not None
        assert (sweep / f"trial_{trial.number:04d}" / "test_metrics.json").is_file()


@pytest.mark.slow
def test_real_train_job_reports_each_epoch_and_stops_when_pruned(tmp_path):
    # A threshold no model reaches, checked from epoch 2: the job must stop after epoch 2.
    run_hydra(tmp_path, ["-m", "crema_exp.train"], *SEARCH, *TINY_TRAIN,
              "features.ssl_layer=int(interval(0, 2))", "hydra.sweeper.n_trials=1",
              "trainer.epochs=4", "trainer.patience=10", "hydra/sweeper/pruner=none",
              "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
              "+hydra.sweeper.pruner.lower=1.5", "+hydra.sweeper.pruner.n_warmup_steps=2")
    sweep = tmp_path / "multirun" / "ssl_optuna"
    (trial,) = load_study(sweep, "ssl_optuna").trials
    run_dir = sweep / "trial_0000"
    history = read_json(run_dir / "history.json")
    assert trial.state == TrialState.PRUNED and [r["epoch"] for r in history] == [1, 2]
    best_so_far = max(r["val_uar"] for r in history)
    assert trial.intermediate_values[2] == pytest.approx(best_so_far)
    assert trial.value == pytest.approx(best_so_far)
    assert read_json(run_dir / "status.json")["status"] == "pruned"
    assert (run_dir / "best_model.pt").is_file() and (run_dir / "test_metrics.json").is_file()


def test_sigterm_records_interrupted_and_the_next_sweep_retries_the_trial(tmp_path):
    sweep = tmp_path / "multirun" / "ssl_optuna"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(SWEEP_APP), *SEARCH, "hydra.sweeper.n_trials=2",
                             "app.epochs=200", "app.epoch_s=0.2"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    status_file = sweep / "trial_0000" / "status.json"
    deadline = time.time() + 120
    while not (status_file.is_file() and read_json(status_file)["status"] == "running"):
        assert time.time() < deadline and proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "Traceback" not in out
    status = read_json(status_file)
    assert (status["status"], status["signal"]) == ("interrupted", "SIGTERM")
    (dead,) = load_study(sweep, "ssl_optuna").trials
    assert dead.state == TrialState.FAIL and dead.user_attrs["failure"] == "interrupted"

    run_app(tmp_path, *SEARCH, "hydra.sweeper.n_trials=2", "app.epochs=1")  # resume
    trials = load_study(sweep, "ssl_optuna").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    retry = trials[1]
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == 0
    assert read_json(sweep / "trial_0001" / "optuna.json")["retry_of"] == {
        "trial": 0, "run_dir": str(sweep / "trial_0000")}
    assert read_json(status_file)["status"] == "interrupted"  # the old folder is kept as it was


def test_a_sweep_without_a_completed_trial_exits_non_zero_with_one_line_per_error(tmp_path):
    done = run_app(tmp_path, *SEARCH, "hydra.sweeper.n_trials=3", "app.fail_trials=[0,2]",
                   "app.nan_trials=[1]", check=False)
    assert done.returncode != 0
    assert "no trial completed (3 trial(s) in the study)" in done.stderr
    assert "  2 x RuntimeError: injected failure" in done.stderr
    assert "  1 x NonFiniteObjectiveError: objective is nan" in done.stderr
    assert "Traceback" not in done.stderr and "Record does not exist" not in done.stderr
    # errors are not crashes: nothing was retried
    assert len(load_study(tmp_path / "multirun" / "ssl_optuna", "ssl_optuna").trials) == 3


def test_a_running_run_without_a_recent_heartbeat_is_stale():
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
    beat = (now - dt.timedelta(seconds=100)).isoformat()
    assert effective_status({"status": "running", "heartbeat": beat, "stale_after_s": 60}, now) == "stale"
    assert effective_status({"status": "running", "heartbeat": beat, "stale_after_s": 600}, now) == "running"
    assert effective_status({"status": "interrupted", "heartbeat": beat, "stale_after_s": 1}, now) == "interrupted"
    assert effective_status({"status": "running"}, now) == "running"  # older runs: no heartbeat


def test_heartbeat_check_fails_old_heartbeats_only_not_one_newer_than_its_clock(tmp_path):
    """Optuna 2.10's own check took a heartbeat recorded just after it read the database clock
    (a negative age) for a day old and failed a live trial: CI saw a worker fail another's trial
    30 ms after it started."""
    storage = rdb_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1,
                          grace_period=4)
    study = optuna.create_study(storage=storage)
    ages_s = (-30, 0, 3, 60)  # seconds since each trial's last heartbeat; -30: after the clock
    trials = [study.ask() for _ in ages_s]
    with _create_scoped_session(storage.scoped_session, True) as session:
        now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
        for trial, age in zip(trials, ages_s):
            session.add(models.TrialHeartbeatModel(trial_id=trial._trial_id,
                                                   heartbeat=now - dt.timedelta(seconds=age)))
    assert fail_stale_trials(study._storage, study._study_id) == [trials[-1]._trial_id]
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 3 + [TrialState.FAIL]


def test_only_the_study_creator_keeps_the_configured_seed():
    a = WorkerIdentity(host="n1", pid=10, started=1.0)
    b = WorkerIdentity(host="n1", pid=11, started=1.0)
    assert worker_seed(0, a, created_study=True) == 0
    assert worker_seed(0, a, created_study=False) == worker_seed(0, a, created_study=False)
    assert len({0, worker_seed(0, a, False), worker_seed(0, b, False), worker_seed(1, a, False)}) == 4
    assert worker_seed(None, a, created_study=False) is None
