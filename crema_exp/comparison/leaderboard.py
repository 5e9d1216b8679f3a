"""The leaderboard: one row per run, ranked by a validation metric (test is reported, never ranked)."""

from __future__ import annotations

import math

import pandas as pd

from crema_exp.comparison.runs import Run
from crema_exp.training.metrics import lower_is_better

VALIDATION_METRICS = ("val_uar", "val_wa", "val_macro_f1", "val_loss")
SCORES = ("wa", "uar", "macro_f1")
# Runs that differ only in these keys are repetitions of one configuration.
REPETITION_KEYS = ("trainer.seed", "data.fold")
# Cohen's kappa between the model and the listeners' majority (test clips; rated runs only)
KAPPA_LISTENERS = "kappa_listeners"


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
    """Rows ranked by ``metric``; runs without it (failed early, running) come last, unranked.

    Runs whose test_metrics.json carries result warnings (a split without some emotion, too few
    validation/test clips, shared actors, random SSL weights) rank after every sound run: their
    scores are not comparable. The ``warnings`` column says why.
    """
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
        if rated:
            row[KAPPA_LISTENERS] = _number(run.human.get("kappa_model_crowd"))
        row["epochs"] = f"{test.get('best_epoch', '?')}/{len(run.history)}" if run.history else ""
        row["time_s"] = _number(run.duration_s)
        row["study"] = run.optuna.get("study", "")
        row["trial"] = run.optuna.get("trial", pd.NA)
        row["error"] = run.error or "; ".join(run.problems)
        row["warnings"] = "; ".join(test.get("warnings") or [])
        rows.append(row)
    board = pd.DataFrame(rows).sort_values(
        metric, ascending=lower_is_better(metric), na_position="last", kind="stable")
    unscored, warned = board[metric].isna(), board["warnings"] != ""
    board = board.iloc[(2 * unscored + warned).argsort(kind="stable")]
    # the scores first after the run's name, then how the run went, then what it swept
    scores = [metric, *(c for c in board if c.startswith(("val_", "test_")) and c != metric),
              *(c for c in [KAPPA_LISTENERS] if c in board)]
    board = board[["run", *scores, "status", "warnings", *params,
                   *(c for c in board if c not in {"run", "status", "warnings", *scores, *params})]]
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


def cross_validation_headline(board: pd.DataFrame, groups: pd.DataFrame) -> str | None:
    """The result to report when every run is one configuration repeated over folds (and seeds).

    Test scores as mean ± sd over the repetitions (5-fold actor cross-validation tests every
    actor once); None when the runs also differ in anything else.
    """
    params = board.attrs["params"]
    if len(groups) != 1 or not params or any(p not in REPETITION_KEYS for p in params):
        return None
    row = groups.iloc[0]
    over = " x ".join(f"{board[p].nunique()} {p.split('.')[-1]}s" for p in params)
    scores = ", ".join(f"test {s.upper()} {row[f'test_{s}']}" for s in ("uar", "wa"))
    return f"{row['runs']} runs ({over}): {scores} (mean ± sd)"


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _number(value) -> float:
    return math.nan if value is None else float(value)
