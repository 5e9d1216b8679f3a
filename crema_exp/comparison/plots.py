"""The comparison's figures (matplotlib, Agg). Each writes one PNG atomically and returns its path,
or None when there is nothing to draw (e.g. no swept parameter)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from crema_exp.comparison.leaderboard import lower_is_better  # noqa: E402
from crema_exp.comparison.runs import Run  # noqa: E402
from crema_exp.atomic import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def plot_param_effects(board: pd.DataFrame, path: Path) -> Path | None:
    """The objective against each swept parameter (numbers on an axis, other values as categories)."""
    metric, params = board.attrs["metric"], board.attrs["params"]
    scored = board[board[metric].notna()]
    # Only parameters that some scored run set (not e.g. a key only failed runs overrode).
    params = [param for param in params if (scored[param] != "").any()]
    if not params:
        return None
    cols = min(3, len(params))
    rows = math.ceil(len(params) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, param in zip(axes.flat, params):
        runs = scored[scored[param] != ""]  # runs of another sweep that did not set it
        numbers = pd.to_numeric(runs[param], errors="coerce")
        if numbers.notna().all():
            ax.scatter(numbers, runs[metric], alpha=0.8)
        else:
            labels = sorted(runs[param].astype(str).unique())
            positions = runs[param].astype(str).map({v: i for i, v in enumerate(labels)})
            ax.scatter(positions, runs[metric], alpha=0.8)
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_optimisation_history(board: pd.DataFrame, path: Path) -> Path | None:
    """Objective per trial in launch order, with the best so far, one line per study."""
    metric = board.attrs["metric"]
    if board[metric].notna().sum() == 0:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ordered = board.assign(order=board["trial"].fillna(-1)).sort_values(["study", "order", "run"])
    for study, trials in ordered.groupby("study", sort=False):
        x = range(len(trials))
        values = trials[metric].astype(float)
        best = values.cummin() if lower_is_better(metric) else values.cummax()
        label = study or "runs"
        ax.plot(x, values, "o", alpha=0.7, label=f"{label}: {metric}")
        ax.step(x, best.ffill(), where="post", label=f"{label}: best so far")
    ax.set_xlabel("trial (launch order)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_importances(importances: dict[str, float], path: Path) -> Path | None:
    if not importances:
        return None
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (mean decrease in impurity)")
    return _save(fig, path)


def plot_validation_curves(runs: list[Run], metric: str, path: Path) -> Path | None:
    """``metric`` per epoch for the given (top-ranked) runs, overlaid."""
    curves = [(run.name, [(row["epoch"], row[metric]) for row in run.history
                          if row.get(metric) is not None]) for run in runs]
    curves = [(name, points) for name, points in curves if points]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in curves:
        epochs, values = zip(*points)
        ax.plot(epochs, values, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
