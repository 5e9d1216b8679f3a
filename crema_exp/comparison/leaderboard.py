"""The leaderboard: one row per run, ranked by a validation metric (test is reported, never ranked)."""

from __future__ import annotations

import math

import pandas as pd

from crema_exp.comparison.runs import Run

VALIDATION_METRICS = ("val_uar", "val_wa", "val_macro_f1", "val_loss")
SCORES = ("wa", "uar", "macro_f1")
# Runs that differ only in these keys are repetitions of one configuration.
REPETITION_KEYS = ("trainer.seed", "data.fold")


def lower_is_better(metric: str) -> bool:
    return metric.endswith("loss")


def swept_params(runs: list[Run]) -> list[str]:
    """Override keys whose value is not the same in every run, in first-seen order."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides))
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


def validation_value(run: Run, metric: str) -> float:
    """``metric`` at the best epoch (test_metrics.json), else the best so far (history.json)."""
    value = run.test_metrics.get(metric)
    if value is None:
        values = [row[metric] for row in run.history if row.get(metric) is not None]
        value = (min if lower_is_better(metric) else max)(values) if values else None
    return math.nan if value is None else float(value)


def build_leaderboard(runs: list[Run], metric: str) -> pd.DataFrame:
    """Rows ranked by ``metric``; runs without it (failed early, running) come last, unranked."""
    params = swept_params(runs)
    rated = any(run.human for run in runs)
    rows = []
    for run in runs:
        test = run.test_metrics
        row = {"run": run.name, "status": run.status}
        row.update({p: run.overrides.get(p, "") for p in params})
        row[metric] = validation_value(run, metric)
        for score in SCORES:
            row.setdefault(f"val_{score}", _number(test.get(f"val_{score}")))
        for score in SCORES:
            row[f"test_{score}"] = _number(test.get(score))
        if rated:  # Cohen's kappa between the model and the listeners' majority (test clips)
            row["kappa_listeners"] = _number(run.human.get("kappa_model_crowd"))
        row["epochs"] = f"{test.get('best_epoch', '?')}/{len(run.history)}" if run.history else ""
        row["time_s"] = _number(run.duration_s)
        row["study"] = run.optuna.get("study", "")
        row["trial"] = run.optuna.get("trial", pd.NA)
        row["error"] = run.error or "; ".join(run.problems)
        rows.append(row)
    board = pd.DataFrame(rows).sort_values(
        metric, ascending=lower_is_better(metric), na_position="last", kind="stable")
    ranked = board[metric].notna()
    board.insert(0, "rank", pd.array([i + 1 if r else pd.NA for i, r in enumerate(ranked)],
                                     dtype="Int64"))
    board.attrs.update(metric=metric, params=params)
    return board.reset_index(drop=True)


def repetition_groups(board: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std per configuration repeated over trainer.seed / data.fold (2+ scored runs).

    Empty when no configuration was repeated.
    """
    metric, params = board.attrs["metric"], board.attrs["params"]
    if not any(k in params for k in REPETITION_KEYS):
        return pd.DataFrame()
    keys = [p for p in params if p not in REPETITION_KEYS] or ["study"]
    scored = board[board[metric].notna()]
    columns = list(dict.fromkeys([metric, *(f"val_{s}" for s in SCORES),
                                  *(f"test_{s}" for s in SCORES)]))
    grouped = scored.groupby(keys, dropna=False, sort=False)[columns]
    mean, std = grouped.mean(), grouped.std()
    summary = pd.DataFrame({"runs": grouped.size()})
    for column in columns:
        summary[column] = [_mean_std(m, s) for m, s in zip(mean[column], std[column])]
    summary["_order"] = mean[metric]
    summary = summary[summary["runs"] > 1]
    summary = summary.sort_values("_order", ascending=lower_is_better(metric)).drop(columns="_order")
    return summary.reset_index()


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _number(value) -> float:
    return math.nan if value is None else float(value)
