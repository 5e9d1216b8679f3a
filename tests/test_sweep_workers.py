"""Many sweep processes on one study, one of them SIGKILLed mid-trial (a preempted node, the OOM
killer): the study still ends with exactly n_trials finished settings, none twice, every trial in
its own folder, and the killed trial failed (by the heartbeat check) and retried with its params.
PostgreSQL (a real server started here) with three workers; SQLite with two."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from _helpers_postgres import postgres_server, why_no_postgres
from _helpers_sweeps import SWEEP_APP, read_json

N_TRIALS = 6
WORKER_ARGS = ["-m", "hparams_search=ssl_optuna", f"hydra.sweeper.n_trials={N_TRIALS}",
               "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=4",
               "app.epochs=4", "app.epoch_s=0.5"]


def _start_worker(cwd: Path, sweep_dir: Path, storage: str | None, log: Path) -> subprocess.Popen:
    args = [sys.executable, str(SWEEP_APP), *WORKER_ARGS, f"hydra.sweep.dir={sweep_dir}"]
    if storage:
        args.append(f"hydra.sweeper.storage='{storage}'")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _kill_mid_trial(victim: subprocess.Popen, sweep_dir: Path, timeout: float = 240) -> int:
    """SIGKILL ``victim`` while one of its trials runs; returns that trial's number."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for record in sweep_dir.glob("trial_*/optuna.json"):
            status = record.parent / "status.json"
            try:
                mine = json.loads(record.read_text())["worker"]["pid"] == victim.pid
                running = mine and json.loads(status.read_text())["status"] == "running"
            except (OSError, ValueError, KeyError):
                continue
            if running:
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                return json.loads(record.read_text())["trial"]
        assert victim.poll() is None, "the victim ended before it ran a trial"
        time.sleep(0.1)
    raise AssertionError("the victim never started a trial")


def _run_workers(tmp_path: Path, storage: str | None, n_workers: int) -> tuple[optuna.Study, int]:
    sweep_dir = tmp_path / "multirun" / "shared"
    workers = [_start_worker(tmp_path, sweep_dir, storage, tmp_path / f"worker{i}.log")
               for i in range(n_workers)]
    killed = _kill_mid_trial(workers[0], sweep_dir)
    for i, worker in enumerate(workers[1:], start=1):
        assert worker.wait(timeout=400) == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]
    url = storage or f"sqlite:///{sweep_dir / 'optuna.db'}"
    return optuna.load_study(study_name="ssl_optuna", storage=url), killed


def _check_study(study: optuna.Study, killed: int, sweep_dir: Path) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    by_state = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == N_TRIALS, by_state  # the shipped median pruner may prune some
    assert by_state["RUNNING"] == by_state["WAITING"] == 0, by_state
    settings = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(settings)) == N_TRIALS, settings  # distinct seeds + constant liar: no repeats

    dead = trials[killed]
    assert dead.state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry in finished and retry.params == dead.params
    assert read_json(sweep_dir / f"trial_{retry.number:04d}" / "optuna.json")["retry_of"] == {
        "trial": killed, "run_dir": str(sweep_dir / f"trial_{killed:04d}")}
    assert [t for t in trials if t.state == TrialState.FAIL] == [dead]

    folders = sorted(p.name for p in sweep_dir.glob("trial_*"))
    assert folders == [f"trial_{t.number:04d}" for t in trials]  # no lost and no extra folder
    assert read_json(sweep_dir / f"trial_{killed:04d}" / "status.json")["status"] == "running"
    seeds = {read_json(sweep_dir / f"trial_{t.number:04d}" / "optuna.json")["sampler_seed"]
             for t in trials}
    assert len(seeds) >= 2  # the workers sampled with different seeds
    return by_state


@pytest.mark.slow
def test_three_workers_on_postgresql_one_killed(tmp_path):
    reason = why_no_postgres()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        study, killed = _run_workers(tmp_path, url, n_workers=3)
        counts = _check_study(study, killed, tmp_path / "multirun" / "shared")
    print("PostgreSQL, 3 workers:", counts)


@pytest.mark.slow
def test_two_workers_on_sqlite_one_killed(tmp_path):
    study, killed = _run_workers(tmp_path, None, n_workers=2)
    counts = _check_study(study, killed, tmp_path / "multirun" / "shared")
    print("SQLite, 2 workers:", counts)
