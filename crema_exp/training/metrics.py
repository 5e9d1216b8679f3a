"""Classification metrics (scikit-learn): WA, UAR, macro-F1, confusion matrix, per-class report."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    recall_score,
)

from crema_exp.config import EMOTIONS

CLASS_IDS = list(range(len(EMOTIONS)))


def lower_is_better(metric: str) -> bool:
    """The one direction rule: losses are minimised, every score (wa, uar, macro_f1) maximised."""
    return metric.endswith("loss")


def summary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """WA = accuracy, UAR = mean recall over the classes present, macro-F1 over the six emotions.

    Classes absent from ``y_true`` are left out of UAR explicitly (as balanced accuracy does, but
    without its warning every epoch); result sanity warnings flag such splits instead.
    """
    present = np.unique(y_true)
    return {
        "wa": float(accuracy_score(y_true, y_pred)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=CLASS_IDS, average="macro", zero_division=0)
        ),
    }


def normalised_confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Rows = true class, each row sums to 1; NaN for a class absent from y_true (no clips)."""
    counts = confusion_matrix(y_true, y_pred, labels=CLASS_IDS).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    return classification_report(
        y_true,
        y_pred,
        labels=CLASS_IDS,
        target_names=list(EMOTIONS),
        output_dict=True,
        zero_division=0,
    )
