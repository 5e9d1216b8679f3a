"""Per-layer view of runs that differ in features.ssl_layer: the validation objective for each
single layer (mean +- sd over the runs that read it: seeds, folds, other swept values) and each
learned mix (``weighted`` or a list of layers) as a horizontal line with its own band."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from crema_exp.atomic import atomic_write  # noqa: E402

LAYER_KEY = "features.ssl_layer"


def layer_profile(board: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(single layers: layer, mean, sd, runs; mixes: choice, mean, sd, runs) of the objective."""
    metric = board.attrs["metric"]
    scored = board[board[metric].notna() & (board[LAYER_KEY] != "")]
    summary = scored.groupby(LAYER_KEY)[metric].agg(["mean", "std", "size"]).reset_index()
    summary.columns = ["choice", "mean", "sd", "runs"]
    numeric = pd.to_numeric(summary["choice"], errors="coerce")
    single = summary[numeric.notna()].assign(layer=numeric.dropna().astype(int)).sort_values("layer")
    return single, summary[numeric.isna()]


def plot_layer_profile(board: pd.DataFrame, path: Path) -> Path | None:
    """None unless the runs differ in features.ssl_layer and at least one read a single layer."""
    if LAYER_KEY not in board.attrs["params"]:
        return None
    single, mixes = layer_profile(board)
    if single.empty:
        return None
    metric = board.attrs["metric"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(single["layer"], single["mean"], yerr=single["sd"].fillna(0), marker="o",
                capsize=3, label="single layer (mean ± sd)")
    for (_, mix), colour in zip(mixes.iterrows(), ["C1", "C2", "C3", "C4"]):
        ax.axhline(mix["mean"], color=colour, label=f"{mix['choice']} (n={mix['runs']})")
        if pd.notna(mix["sd"]):
            ax.axhspan(mix["mean"] - mix["sd"], mix["mean"] + mix["sd"], color=colour, alpha=0.15)
    ax.set_xticks(single["layer"])
    ax.set_xlabel("SSL layer (features.ssl_layer)")
    ax.set_ylabel(f"{metric} (validation)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
