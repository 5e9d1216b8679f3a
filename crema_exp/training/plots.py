"""Training curves and the normalised confusion matrix as PNG files (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from crema_exp.atomic import atomic_write  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_training_curves(history: list[dict], path: Path) -> None:
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [r["train_loss"] for r in history], label="train loss")
    loss_ax.plot(epochs, [r["val_loss"] for r in history], label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.legend()
    for key in ("val_wa", "val_uar", "val_macro_f1"):
        metric_ax.plot(epochs, [r[key] for r in history], label=key)
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylim(0, 1)
    metric_ax.legend()
    _save(fig, path)


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    """Rows: true class (each row sums to 1); columns: predicted class.

    A NaN row is a class with no clips: drawn hatched and labelled, not as a row of zeros.
    """
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in np.flatnonzero(np.isnan(matrix).all(axis=1)):
        ax.add_patch(plt.Rectangle((-0.5, i - 0.5), matrix.shape[1], 1, fill=False,
                                   hatch="//", edgecolor="0.6", linewidth=0))
        ax.text((matrix.shape[1] - 1) / 2, i, "no clips of this class", ha="center",
                va="center", fontsize=8, color="0.3", backgroundcolor="white")
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                    color="white" if value > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax)
    _save(fig, path)


def plot_layer_weights(history: list[dict], layer_names: list[str], best_epoch: int,
                       path: Path) -> None:
    """The learned layer-mix weights: at the best epoch (bars) and over the epochs (lines)."""
    weights = np.array([row["layer_weights"] for row in history])  # [epochs, layers]
    epochs = [row["epoch"] for row in history]
    best = weights[epochs.index(best_epoch)]
    labels = [name.replace("layer_", "") for name in layer_names]
    fig, (bar_ax, line_ax) = plt.subplots(1, 2, figsize=(11, 4))
    bar_ax.bar(range(len(best)), best)
    bar_ax.axhline(1 / len(best), color="grey", linestyle=":", label="equal weights")
    bar_ax.set_xticks(range(len(best)), labels)
    bar_ax.set_xlabel("SSL layer")
    bar_ax.set_ylabel("softmax weight")
    bar_ax.set_title(f"learned layer weights, epoch {best_epoch} (best)")
    bar_ax.legend()
    for layer, label in enumerate(labels):
        line_ax.plot(epochs, weights[:, layer], label=label)
    line_ax.set_xlabel("epoch")
    line_ax.set_ylabel("softmax weight")
    line_ax.legend(title="layer", fontsize=7, ncol=2)
    _save(fig, path)
