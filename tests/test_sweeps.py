"""Optuna sweeps: search spaces compose, studies resume without losing or overwriting runs, failed
and NaN trials are recorded as failed, parallel launchers work, the SSL model runs once per clip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

from _helpers_sweeps import REPO, TINY_TRAIN, load_study, read_json, run_app, run_hydra
from crema_exp.comparison.compare_runs import compare
from crema_exp.config import register_configs, validate
from crema_exp.sweeps.finite_objective import FiniteObjectiveLauncher
from crema_exp.sweeps.storage import absolute_storage_url, printable_storage_url

register_configs()


def _compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("search, kind", [("ssl_optuna", "ssl"),
                                          ("mel_prosody_optuna", "mel_prosody")])
def test_search_spaces_name_real_keys_and_store_the_study_under_multirun(search, kind):
    cfg = _compose_train(f"hparams_search={search}")
    sweeper = cfg.hydra.sweeper
    assert cfg.features.kind == kind
    assert sweeper._target_.endswith("ResumableOptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.sampler.seed == 0
    assert sweeper.storage == f"sqlite:///multirun/{search}/optuna.db"
    assert cfg.hydra.sweep.dir == f"multirun/{search}"
    for key in sweeper.params:  # every swept key exists in the train schema
        assert OmegaConf.select(cfg, key, throw_on_missing=False, default="absent") != "absent", key
    validate(cfg)


def test_ssl_search_covers_every_wavlm_base_plus_layer():
    cfg = _compose_train("hparams_search=ssl_optuna")
    assert cfg.hydra.sweeper.params["features.ssl_layer"] == "int(interval(0, 12))"


def test_slurm_launcher_keys_are_overridable():
    cfg = _compose_train("hparams_search=ssl_optuna", "hydra/launcher=slurm",
                         "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min) == ("gpu", 30)
    assert {"gpus_per_node", "mem_gb", "cpus_per_task"} <= set(launcher)


def test_relative_sqlite_storage_becomes_absolute_and_passwords_are_masked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = absolute_storage_url("sqlite:///multirun/s/optuna.db")
    assert url == f"sqlite:///{tmp_path}/multirun/s/optuna.db"
    assert (tmp_path / "multirun" / "s").is_dir()  # SQLite cannot create the folder itself
    assert absolute_storage_url("postgresql://u:secret@host/db") == "postgresql://u:secret@host/db"
    assert "secret" not in printable_storage_url("postgresql://u:secret@host/db")


def test_nan_objective_becomes_a_failed_job():
    class Fake:
        def launch(self, job_overrides, initial_job_idx):
            return [JobReturn(overrides=list(o), status=JobStatus.COMPLETED, _return_value=v)
                    for o, v in zip(job_overrides, [0.5, float("nan")])]

    good, bad = FiniteObjectiveLauncher(Fake()).launch([["a=1"], ["a=2"]], initial_job_idx=0)
    assert good.return_value == 0.5
    assert bad.status == JobStatus.FAILED
    with pytest.raises(ValueError, match="objective is nan"):
        bad.return_value


def test_failing_and_nan_trials_are_recorded_failed_and_the_sweep_goes_on(tmp_path):
    run_app(tmp_path, "-m", "hparams_search=ssl_optuna", "hydra.sweeper.n_trials=4",
            "app.fail_trials=[1]", "app.nan_trials=[2]")
    sweep = tmp_path / "multirun" / "ssl_optuna"
    states = [t.state for t in load_study(sweep, "ssl_optuna").trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert read_json(sweep / "trial_0001" / "status.json")["status"] == "failed"
    assert read_json(sweep / "trial_0003" / "optuna.json")["trial"] == 3


@pytest.mark.parametrize("launcher, launched", [
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], "n_jobs=2,backend=loky"),
    (["hydra/launcher=submitit_local"], "Submitit 'local' sweep output dir"),
])
def test_parallel_launchers_complete_a_two_trial_batch(tmp_path, launcher, launched):
    done = run_app(tmp_path, "-m", "hparams_search=ssl_optuna", "hydra.sweeper.n_trials=2",
                   "hydra.sweeper.n_jobs=2", *launcher)
    sweep = tmp_path / "multirun" / "ssl_optuna"
    study = load_study(sweep, "ssl_optuna")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for trial in study.trials:
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir == sweep / f"trial_{trial.number:04d}"
        assert read_json(run_dir / "status.json")["objective"] == pytest.approx(trial.value)
    assert launched in done.stdout


def _store_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "cache" / "features").glob("ssl-*") if p.is_dir())


def _reused_store(run_dir: Path) -> bool:
    return "Reusing complete feature store" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_real_train_sweep_resumes_and_computes_ssl_features_once(tmp_path):
    sweep_args = ["-m", "hparams_search=ssl_optuna", *TINY_TRAIN,
                  "features.ssl_layer=int(interval(0, 2))"]  # the tiny model stores 3 layers
    run_hydra(tmp_path, ["-m", "crema_exp.train"], *sweep_args, "hydra.sweeper.n_trials=4")
    sweep = tmp_path / "multirun" / "ssl_optuna"
    study = load_study(sweep, "ssl_optuna")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    for trial in study.trials:
        run_dir = sweep / f"trial_{trial.number:04d}"
        assert read_json(run_dir / "optuna.json")["study"] == "ssl_optuna"
        assert read_json(run_dir / "test_metrics.json")["val_uar"] == pytest.approx(trial.value)
        assert 0 <= trial.params["features.ssl_layer"] <= 2
    (store,) = _store_dirs(tmp_path)
    built_at = (store / "metadata.json").stat().st_mtime_ns
    assert [_reused_store(sweep / f"trial_{n:04d}") for n in range(4)] == [False, True, True, True]
    before = {p: p.read_bytes() for p in sweep.glob("trial_*/*.json")}

    run_hydra(tmp_path, ["-m", "crema_exp.train"], *sweep_args, "hydra.sweeper.n_trials=6")
    study = load_study(sweep, "ssl_optuna")
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sorted(p.name for p in sweep.glob("trial_*")) == [f"trial_{n:04d}" for n in range(6)]
    assert {p: p.read_bytes() for p in before} == before  # earlier runs untouched
    assert _store_dirs(tmp_path) == [store]
    assert (store / "metadata.json").stat().st_mtime_ns == built_at
    assert _reused_store(sweep / "trial_0004") and _reused_store(sweep / "trial_0005")

    board = compare([str(sweep)]).leaderboard  # the real runs' artefacts feed the comparison
    assert board["val_uar"].tolist() == sorted((t.value for t in study.trials), reverse=True)
    assert board["val_uar"].iloc[0] == pytest.approx(study.best_value)
    assert (sweep / "comparison" / "report.html").is_file()
