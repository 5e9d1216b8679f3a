"""Parameter importances with Optuna's own evaluator, from the study database or from the runs.

MeanDecreaseImpurity (a random forest) is used because optuna 2.10's default fANOVA evaluator
fails with scikit-learn 1.9.
"""

from __future__ import annotations

import logging
import warnings

import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntUniformDistribution,
    UniformDistribution,
)
from optuna.importance import MeanDecreaseImpurityImportanceEvaluator

from crema_exp.comparison.leaderboard import lower_is_better
from crema_exp.comparison.runs import Run

log = logging.getLogger(__name__)

# A random forest fitted to fewer completed trials than this ranks noise: with a handful of points
# any parameter can split them perfectly, and the ranking changes with the forest's seed. Ten is
# also TPE's default number of random start-up trials, after which the sampler itself starts
# modelling the objective.
MIN_COMPLETED_TRIALS = 10


def param_importances(runs: list[Run], board: pd.DataFrame) -> tuple[dict[str, float], str]:
    """Importances (summing to 1) and where they come from, or ({}, why there are none)."""
    study, source = stored_study(runs)
    if study is None:
        study, source = study_from_leaderboard(board), "the compared runs"
    completed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if completed < MIN_COMPLETED_TRIALS:
        return {}, (f"not shown: {completed} completed trial(s), importances need at least "
                    f"{MIN_COMPLETED_TRIALS}")
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as exc:
        return {}, f"not available ({exc})"
    if not importances:
        return {}, "not shown: no swept parameter was set in every completed run"
    return dict(importances), source


def stored_study(runs: list[Run]) -> tuple[optuna.Study | None, str]:
    """The Optuna study all compared runs belong to, when its database can be opened."""
    records = {(r.optuna.get("study"), r.optuna.get("storage")) for r in runs}
    if len(records) != 1:
        return None, ""
    name, storage = records.pop()
    if not name or not storage or "***" in storage:  # masked password: cannot reconnect
        return None, ""
    try:
        return optuna.load_study(study_name=name, storage=storage), f"study {name!r} ({storage})"
    except Exception as exc:  # moved or unreachable database: fall back to the run folders
        log.warning("cannot open study %r in %s (%s); using the run folders", name, storage, exc)
        return None, ""


def study_from_leaderboard(board: pd.DataFrame) -> optuna.Study:
    """An in-memory study with one completed trial per run that has the metric."""
    metric, params = board.attrs["metric"], board.attrs["params"]
    scored = board[board[metric].notna()]
    # Like Optuna's intersection search space: only parameters every scored run set (a conditional
    # one, or one a single compared folder set, has no value to fit in the other runs).
    distributions = {p: d for p in params
                     if (scored[p] != "").all() and (d := infer_distribution(scored[p])) is not None}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if lower_is_better(metric) else "maximize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for _, row in scored.iterrows():
            values = {p: _typed(row[p], d) for p, d in distributions.items()}
            study.add_trial(optuna.trial.create_trial(
                params=values, distributions=distributions, value=float(row[metric])))
    return study


def infer_distribution(values: pd.Series) -> BaseDistribution | None:
    """Uniform int/float over the observed range, else categorical; None for a constant."""
    if values.nunique() < 2:
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        return CategoricalDistribution(sorted(values.astype(str).unique()))
    if (numbers == numbers.round()).all() and not values.astype(str).str.contains(r"[.eE]").any():
        return IntUniformDistribution(int(numbers.min()), int(numbers.max()))
    return UniformDistribution(float(numbers.min()), float(numbers.max()))


def _typed(value, distribution: BaseDistribution):
    if isinstance(distribution, IntUniformDistribution):
        return int(value)
    if isinstance(distribution, UniformDistribution):
        return float(value)
    return str(value)
