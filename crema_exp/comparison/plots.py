"""The comparison's figures (matplotlib, Agg). Each writes one PNG atomically and returns its path,
or None when there is nothing to draw (e.g. no swept parameter)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from crema_exp.comparison.leaderboard import lower_is_better  # noqa: E402
from crema_exp.comparison.runs import Run  # noqa: E402
from crema_exp.atomic import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


# A y axis narrower than this (e.g. one run, or a one-epoch curve) is widened around the data, so
# that matplotlib does not blow rounding noise up into an axis from 0.96 to 1.04.
MIN_Y_SPAN = 0.1


def _readable_y(ax, values) -> None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if values and max(values) - min(values) < MIN_Y_SPAN:
        middle = (max(values) + min(values)) / 2
        ax.set_ylim(middle - MIN_Y_SPAN / 2, middle + MIN_Y_SPAN / 2)


def plot_param_effects(board: pd.DataFrame, path: Path, continuous: set[str] = frozenset()
                       ) -> Path | None:
    """The objective against each swept parameter: parameters sampled from a range (``continuous``)
    on a numeric axis, choices (e.g. ema_decay 0 / 0.99 / 0.995 / 0.999) as evenly spaced categories.
    """
    metric, params = board.attrs["metric"], board.attrs["params"]
    scored = board[board[metric].notna()]
    # Only parameters with two or more values among the scored runs that set them: not a key only
    # failed runs overrode, nor one that is constant within each compared folder.
    params = [param for param in params if scored.loc[scored[param] != "", param].nunique() > 1]
    if not params:
        return None
    cols = min(3, len(params))
    rows = math.ceil(len(params) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, param in zip(axes.flat, params):
        runs = scored[scored[param] != ""]  # runs of another sweep that did not set it
        numbers = pd.to_numeric(runs[param], errors="coerce")
        if param in continuous and numbers.notna().all():
            ax.scatter(numbers, runs[metric], alpha=0.8)
        else:
            values = runs[param].astype(str).unique()
            labels = (sorted(values, key=float) if pd.to_numeric(pd.Series(values), errors="coerce")
                      .notna().all() else sorted(values))
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
        numbered = trials["trial"].notna().all()
        x = trials["trial"].astype(int).tolist() if numbered else list(range(len(trials)))
        values = trials[metric].astype(float)
        best = values.cummin() if lower_is_better(metric) else values.cummax()
        label = study or "runs"
        ax.plot(x, values, "o", alpha=0.7, label=f"{label}: {metric}")
        ax.step(x, best.ffill(), where="post", label=f"{label}: best so far")
    ax.set_xlabel("trial number (launch order)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    _readable_y(ax, board[metric].tolist())
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
        ax.plot(epochs, values, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(e for _, points in curves for e, _ in points) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    _readable_y(ax, [v for _, points in curves for _, v in points])
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
