"""Classification metrics (scikit-learn): WA, UAR, macro-F1, confusion matrix, per-class report."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
)

from crema_exp.config import EMOTIONS

CLASS_IDS = list(range(len(EMOTIONS)))


def lower_is_better(metric: str) -> bool:
    """The one direction rule: losses are minimised, every score (wa, uar, macro_f1) maximised."""
    return metric.endswith("loss")


def summary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """WA = accuracy, UAR = mean per-class recall, macro-F1 over the six emotions."""
    return {
        "wa": float(accuracy_score(y_true, y_pred)),
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=CLASS_IDS, average="macro", zero_division=0)
        ),
    }


def normalised_confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Rows = true class, each row sums to 1 (0 for a class absent from y_true)."""
    return confusion_matrix(y_true, y_pred, labels=CLASS_IDS, normalize="true")


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    return classification_report(
        y_true,
        y_pred,
        labels=CLASS_IDS,
        target_names=list(EMOTIONS),
        output_dict=True,
        zero_division=0,
    )
