"""From multirun folders to the written comparison: runs -> leaderboard -> plots -> report."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crema_exp import run_files
from crema_exp.comparison.importance import param_importances
from crema_exp.comparison.layer_profile import plot_layer_profile
from crema_exp.comparison.leaderboard import (
    build_leaderboard,
    cross_validation_headline,
    repetition_groups,
)
from crema_exp.comparison.listeners import listeners_table
from crema_exp.comparison.plots import (
    plot_importances,
    plot_optimisation_history,
    plot_param_effects,
    plot_validation_curves,
)
from crema_exp.comparison.report import write_csv, write_html, write_markdown
from crema_exp.comparison.runs import (
    ComparisonError,
    Run,
    continuous_params,
    discover_runs,
    load_runs,
)


@dataclass
class Comparison:
    runs: list[Run]
    leaderboard: pd.DataFrame
    groups: pd.DataFrame
    headline: str | None  # mean ± sd over folds/seeds when the runs differ in nothing else
    importances: dict[str, float]
    importance_source: str
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def default_out_dir(patterns: list[str]) -> Path:
    """<common parent of the given folders (globs expanded)>/comparison."""
    folders = [os.path.abspath(f) for p in patterns for f in (glob.glob(p) or [p])]
    return Path(os.path.commonpath(folders)) / "comparison"


def compare(patterns: list[str], out_dir: Path | None = None, metric: str = "val_uar",
            top_k: int = 5) -> Comparison:
    runs = load_runs(discover_runs(patterns))
    board = build_leaderboard(runs, metric)
    if board[metric].notna().sum() == 0:
        statuses = board["status"].value_counts().to_dict()
        raise ComparisonError(
            f"nothing to compare under {', '.join(patterns)}: none of the {len(runs)} run(s) has "
            f"{metric} yet (status: {statuses})")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(patterns)
    out_dir.mkdir(parents=True, exist_ok=True)
    importances, source = param_importances(runs, board)
    groups = repetition_groups(board)
    result = Comparison(runs, board, groups, cross_validation_headline(board, groups),
                        importances, source, out_dir)
    _write(result, top_k)
    return result


def _write(result: Comparison, top_k: int) -> None:
    board, out = result.leaderboard, result.out_dir
    metric = board.attrs["metric"]
    by_name = {run.name: run for run in result.runs}
    top_runs = [by_name[name] for name in board.dropna(subset=[metric])["run"].head(top_k)]
    best = top_runs[0]
    figures = {
        f"{metric} vs each swept parameter": plot_param_effects(
            board, out / "param_effects.png", continuous_params(result.runs)),
        "Optimisation history": plot_optimisation_history(board, out / "optimisation_history.png"),
        f"Parameter importances ({result.importance_source})":
            plot_importances(result.importances, out / "param_importances.png"),
        f"{metric} per SSL layer, learned mixes as lines":
            plot_layer_profile(board, out / "layer_profile.png"),
        f"Validation curves of the top {len(top_runs)}":
            plot_validation_curves(top_runs, metric, out / "validation_curves.png"),
        f"Confusion matrix (test) of the best run, {best.name}":
            _existing(best.path / run_files.CONFUSION_MATRIX),
        f"Per-class recall of the best run vs human listeners, {best.name}":
            _existing(best.path / run_files.HUMAN_COMPARISON_FIGURE),
    }
    repetitions = {"Repetitions (mean ± std over trainer.seed / data.fold)": result.groups}
    leaderboard = {f"Leaderboard (ranked by {metric})": board}
    listeners = {"Model vs human listeners (voice only, test clips; listeners by majority vote)":
                 listeners_table(result.runs, board)}
    # a cross-validation's result is its mean over folds: that table comes first
    tables = {**repetitions, **leaderboard} if result.headline else {**leaderboard, **repetitions}
    tables.update(listeners)
    result.files["leaderboard.csv"] = out / "leaderboard.csv"
    write_csv(board, result.files["leaderboard.csv"])
    result.files["leaderboard.md"] = out / "leaderboard.md"
    write_markdown(tables, result.files["leaderboard.md"])
    if not result.groups.empty:
        result.files["groups.csv"] = out / "groups.csv"
        write_csv(result.groups, result.files["groups.csv"])
    result.files["report.html"] = out / "report.html"
    write_html(result.files["report.html"], title=f"crema-exp comparison: {metric}",
               summary=_summary(result, best), tables=tables, figures=figures)
    result.files.update({p.name: p for p in figures.values() if p is not None and p.parent == out})


def _summary(result: Comparison, best: Run) -> list[str]:
    board = result.leaderboard
    metric = board.attrs["metric"]
    counts = ", ".join(f"{n} {status}" for status, n in board["status"].value_counts().items())
    lines = [f"result: {result.headline}"] if result.headline else []
    lines += [f"{len(board)} runs ({counts}); ranked by {metric} (validation)",
             f"best: {best.name} with {metric} = {board[metric].iloc[0]:.4f}",
             f"swept parameters: {', '.join(board.attrs['params']) or 'none'}"]
    if result.importances:
        top = ", ".join(f"{k} {v:.2f}" for k, v in result.importances.items())
        lines.append(f"parameter importances ({result.importance_source}): {top}")
    else:
        lines.append(f"parameter importances: {result.importance_source}")
    return lines


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None
