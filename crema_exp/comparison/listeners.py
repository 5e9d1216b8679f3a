"""The report's table of each run next to the human listeners (runs with human_comparison.json)."""

from __future__ import annotations

import pandas as pd

from crema_exp.comparison.runs import Run


def listeners_table(runs: list[Run], board: pd.DataFrame) -> pd.DataFrame:
    """One row per rated run, in leaderboard order; empty when no run was rated."""
    by_name = {run.name: run for run in runs}
    rows = []
    for name in board["run"]:
        human = by_name[name].human
        if not human:
            continue
        listeners, model = human.get("listeners", {}), human.get("model", {})
        rows.append({
            "run": name,
            "test clips rated": human.get("clips"),
            "listeners accuracy": listeners.get("majority_accuracy"),
            "listeners UAR": listeners.get("uar"),
            "model WA": model.get("wa"),
            "model UAR": model.get("uar"),
            "kappa model-crowd": human.get("kappa_model_crowd"),
            f"model acc, agreement >= {human.get('agreement_threshold', 0.8):g}":
                human.get("model_accuracy_high_agreement"),
            "model acc, lower agreement": human.get("model_accuracy_low_agreement"),
        })
    return pd.DataFrame(rows)
