"""python -m crema_exp.compare on real Hydra multirun folders written by tests/sweep_app: an Optuna
sweep with a failed trial and a basic sweep repeated over two seeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from _helpers_sweeps import load_study, read_json, run_app
from crema_exp.compare import main
from crema_exp.comparison import ComparisonError
from crema_exp.comparison.compare_runs import compare


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("compare")
    run_app(cwd, "-m", "hparams_search=ssl_optuna", "hydra/sweeper/pruner=none",
            "hydra.sweeper.n_trials=12", "app.fail_trials=[2]")
    run_app(cwd, "-m", "hydra.sweep.dir=multirun/seeds", "trainer.seed=0,1",
            "regularization.rdrop_alpha=0.1,0.5", "features.ssl_layer=6")
    run_app(cwd, "-m", "hydra.sweep.dir=cross_validation", "data.fold=0,1,2")  # not under multirun/
    return cwd / "multirun"


def test_leaderboard_ranks_by_stored_validation_values_and_lists_failed_runs(multirun, tmp_path):
    result = compare([str(multirun / "ssl_optuna")], out_dir=tmp_path)
    board = result.leaderboard
    study = load_study(multirun / "ssl_optuna", "ssl_optuna")
    completed = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)
    n = len(completed)
    assert board["trial"].tolist()[:n] == [t.number for t in completed]
    assert board["val_uar"].tolist()[:n] == pytest.approx([t.value for t in completed])
    assert board["rank"].tolist()[:n] == list(range(1, n + 1))
    failed = board.iloc[n]
    assert (failed["run"], failed["status"]) == ("trial_0002", "failed")
    assert pd.isna(failed["rank"]) and "injected failure" in failed["error"]
    assert {"features.ssl_layer", "regularization.rdrop_alpha",
            "regularization.ema_decay"} <= set(board.attrs["params"])
    assert result.importance_source.startswith("study 'ssl_optuna'")  # read from optuna.db
    assert set(result.importances) == set(study.best_params)


def test_writes_tables_plots_and_a_self_contained_report(multirun, tmp_path):
    result = compare([str(multirun / "*")], out_dir=tmp_path, top_k=3)
    for name in ("leaderboard.csv", "leaderboard.md", "report.html", "groups.csv",
                 "param_effects.png", "optimisation_history.png", "param_importances.png",
                 "validation_curves.png", "layer_profile.png"):
        assert (tmp_path / name).is_file(), name
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(csv) == 16 and csv["run"].iloc[0] == result.leaderboard["run"].iloc[0]
    assert "| rank | run | val_uar | val_wa |" in (tmp_path / "leaderboard.md").read_text()
    html = (tmp_path / "report.html").read_text()
    # 5 plots (with the per-layer profile: ssl_layer differs) + the best run's confusion matrix
    assert html.count("data:image/png;base64,") == 6
    assert "src=\"http" not in html and "failed" in html
    assert result.importance_source == "the compared runs"  # two sweeps: built from the folders


def test_runs_differing_only_in_seed_are_summarised_as_mean_and_std(multirun, tmp_path):
    groups = compare([str(multirun / "seeds")], out_dir=tmp_path).groups
    assert groups["runs"].tolist() == [2, 2]
    by_alpha: dict[str, list[float]] = {}
    for run in (multirun / "seeds").glob("[0-9]*"):
        alpha = _override(run, "regularization.rdrop_alpha")
        by_alpha.setdefault(alpha, []).append(read_json(run / "test_metrics.json")["val_uar"])
    best = pd.Series(by_alpha[groups["regularization.rdrop_alpha"].iloc[0]])
    assert groups["val_uar"].iloc[0] == f"{best.mean():.4f} ± {best.std():.4f}"


def test_runs_differing_only_in_fold_report_mean_and_sd_as_the_headline(multirun, tmp_path,
                                                                        capsys):
    folds = multirun.parent / "cross_validation"
    result = compare([str(folds)], out_dir=tmp_path)
    uar = pd.Series([read_json(run / "test_metrics.json")["uar"] for run in folds.glob("[0-9]*")])
    expected = f"3 runs (3 folds): test UAR {uar.mean():.4f} ± {uar.std():.4f}"
    assert result.headline.startswith(expected)
    assert f"result: {expected}" in (tmp_path / "report.html").read_text()
    assert (tmp_path / "leaderboard.md").read_text().startswith("## Repetitions")
    assert compare([str(multirun / "seeds")], out_dir=tmp_path).headline is None  # alpha differs
    assert main([str(folds), "--out", str(tmp_path)]) == 0
    assert f"result: {expected}" in capsys.readouterr().out


def _override(run: Path, key: str) -> str:
    lines = (run / ".hydra" / "overrides.yaml").read_text().splitlines()
    return next(line.split("=", 1)[1] for line in lines if f"{key}=" in line)


def test_running_run_without_final_metrics_is_ranked_by_its_history(multirun, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(multirun / "seeds", sweep)
    running = sweep / "0"
    (running / "test_metrics.json").unlink()
    status = read_json(running / "status.json")
    (running / "status.json").write_text(json.dumps({**status, "status": "running"}))
    board = compare([str(sweep)], out_dir=tmp_path / "out").leaderboard
    row = board[board["run"] == "0"].iloc[0]
    best_so_far = max(e["val_uar"] for e in read_json(running / "history.json"))
    assert row["status"] == "running" and row["val_uar"] == pytest.approx(best_so_far)
    assert pd.isna(row["test_uar"])


def test_val_loss_ranks_lowest_first(multirun, tmp_path):
    board = compare([str(multirun / "seeds")], out_dir=tmp_path, metric="val_loss").leaderboard
    assert board["val_loss"].is_monotonic_increasing


def test_cli_prints_the_leaderboard_and_names_the_output(multirun, tmp_path, capsys):
    assert main([str(multirun / "seeds"), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["rank", "run", "val_uar"]
    assert f"to {tmp_path}" in out


@pytest.mark.parametrize("content, message", [
    (None, "no such file or directory"),
    ([], "empty folder"),
    (["notes.txt"], "not a Hydra multirun folder"),
])
def test_bad_folders_are_explained(tmp_path, capsys, content, message):
    folder = tmp_path / "runs"
    if content is not None:
        folder.mkdir()
        for name in content:
            (folder / name).write_text("not a run")
    assert main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(folder) in err


def test_nothing_comparable_is_an_error_naming_the_statuses(multirun, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(multirun / "ssl_optuna" / "trial_0002", sweep / "trial_0002")  # the failed one
    with pytest.raises(ComparisonError, match=r"none of the 1 run\(s\) has val_uar.*failed"):
        compare([str(sweep)])


def test_importances_need_ten_completed_trials(multirun, tmp_path):
    result = compare([str(multirun / "seeds")], out_dir=tmp_path)  # 4 completed runs
    assert result.importances == {}
    assert result.importance_source == ("not shown: 4 completed trial(s), importances need at "
                                        "least 10")
    assert not (tmp_path / "param_importances.png").exists()
    assert "importances need at least 10" in (tmp_path / "report.html").read_text()


def test_console_table_fits_120_columns_and_the_report_table_scrolls_in_a_frame(multirun, tmp_path,
                                                                              capsys):
    assert main([str(multirun / "*"), "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.split("\nwrote ")[0].splitlines()  # the table, not the paths
    assert max(len(line) for line in lines) <= 120
    assert "more column(s) in leaderboard.csv and report.html" in "\n".join(lines)
    html = (tmp_path / "report.html").read_text()
    assert '<div class="table-frame"><table' in html and "overflow: auto" in html


def test_plots_use_trial_numbers_categories_and_a_readable_y_range(multirun, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from crema_exp.comparison import plots

    axes, save = {}, plots._save

    def keep_axes(fig, path):
        axes[path.name] = fig.axes
        return save(fig, path)
    monkeypatch.setattr(plots, "_save", keep_axes)
    result = compare([str(multirun / "ssl_optuna")], out_dir=tmp_path)
    history = axes["optimisation_history.png"][0]
    trials = history.lines[0].get_xdata()
    assert list(trials) == sorted(result.leaderboard["trial"].dropna().astype(int))
    assert all(float(t).is_integer() for t in history.get_xticks())
    effects = {ax.get_xlabel(): ax for ax in axes["param_effects.png"] if ax.get_visible()}
    ema = effects["regularization.ema_decay"]  # choice(...): categories, evenly spaced
    labels = [t.get_text() for t in ema.get_xticklabels()]
    assert labels == sorted(labels, key=float) and len(labels) <= 4
    assert list(ema.get_xticks()) == list(range(len(labels)))
    rdrop = effects["regularization.rdrop_alpha"].collections[0].get_offsets()[:, 0]
    assert not all(float(x).is_integer() for x in rdrop)  # interval(...): the values themselves
    curves = axes["validation_curves.png"][0]
    low, high = curves.get_ylim()
    assert high - low >= plots.MIN_Y_SPAN - 1e-9
    plt.close("all")


def test_a_one_epoch_curve_gets_a_readable_axis(tmp_path):
    import matplotlib.pyplot as plt

    from crema_exp.comparison import plots
    from crema_exp.comparison.runs import Run

    captured = {}
    original = plots._save
    plots._save = lambda fig, path: captured.setdefault("ax", fig.axes[0])
    try:
        run = Run(path=tmp_path, name="one", status="completed",
                  history=[{"epoch": 1, "val_uar": 1.0}])
        plots.plot_validation_curves([run], "val_uar", tmp_path / "curves.png")
    finally:
        plots._save = original
    low, high = captured["ax"].get_ylim()
    assert (low, high) == pytest.approx((0.95, 1.05))
    assert all(float(t).is_integer() for t in captured["ax"].get_xticks())
    plt.close("all")
