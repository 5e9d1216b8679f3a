"""The files of a run directory (names in crema_exp/run_files.py), each written atomically."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pandas as pd

from crema_exp import run_files
from crema_exp.config import EMOTIONS
from crema_exp.atomic import write_csv_atomic, write_json_atomic
from crema_exp.training.loop import TrainingResult
from crema_exp.training.metrics import normalised_confusion, per_class_report
from crema_exp.training.plots import plot_confusion, plot_layer_weights, plot_training_curves


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class RunStatus:
    """status.json: running at start (with a heartbeat refreshed by ``beat``), then completed (with
    objective), pruned (with the objective so far), failed (with error) or interrupted (with signal).

    A "running" run whose heartbeat is older than ``stale_after_s`` has died without a word (SIGKILL,
    out of memory, lost node); compare shows it as stale.
    """

    def __init__(self, run_dir: Path, optimized_metric: str, stale_after_s: float = 600):
        self.path = Path(run_dir) / run_files.STATUS
        self.started_at = time.monotonic()
        self.record = {
            "status": "running", "error": None, "started": _now(), "finished": None,
            "objective": None, "optimized_metric": optimized_metric, "duration_s": None,
            "heartbeat": _now(), "stale_after_s": stale_after_s,
        }
        write_json_atomic(self.path, self.record)

    def beat(self) -> None:
        self.record["heartbeat"] = _now()
        write_json_atomic(self.path, self.record)

    def finish(self, status: str, objective: float | None = None, error: str | None = None,
               **extra: Any) -> None:
        self.record.update(
            status=status, objective=objective, error=error, finished=_now(), heartbeat=_now(),
            duration_s=round(time.monotonic() - self.started_at, 3), **extra,
        )
        write_json_atomic(self.path, self.record)


def write_run_artefacts(
    run_dir: Path, result: TrainingResult, test_clip_ids: list[str], extra: dict[str, Any]
) -> None:
    """history.json, metrics.csv, curves, test metrics and predictions, report, confusion matrix.

    ``extra`` is merged into test_metrics.json (e.g. warnings about random SSL weights).
    """
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / run_files.HISTORY, result.history)
    write_csv_atomic(run_dir / run_files.METRICS, pd.DataFrame(result.history))
    plot_training_curves(result.history, run_dir / run_files.TRAINING_CURVES)
    if "layer_weights" in result.history[0]:  # a learned layer mix: extra["stream"] names them
        plot_layer_weights(result.history, extra["stream"], result.best_epoch,
                           run_dir / run_files.LAYER_WEIGHTS)

    test, val = result.test, result.best_validation
    write_json_atomic(
        run_dir / run_files.TEST_METRICS,
        {
            **test.metrics,
            "num_clips": int(len(test.labels)),
            "best_epoch": result.best_epoch,
            **{f"val_{k}": v for k, v in val.metrics.items()},
            "val_loss": val.loss,
            **extra,
        },
    )
    predictions = pd.DataFrame(
        {
            "clip_id": test_clip_ids,
            "emotion": [EMOTIONS[i] for i in test.labels],
            "predicted": [EMOTIONS[i] for i in test.predictions],
            **{f"p_{name}": test.probabilities[:, i] for i, name in enumerate(EMOTIONS)},
        }
    )
    write_csv_atomic(run_dir / run_files.TEST_PREDICTIONS, predictions)
    write_json_atomic(
        run_dir / run_files.CLASSIFICATION_REPORT, per_class_report(test.labels, test.predictions)
    )
    plot_confusion(
        normalised_confusion(test.labels, test.predictions), list(EMOTIONS),
        run_dir / run_files.CONFUSION_MATRIX,
        title=f"test (epoch {result.best_epoch}), rows normalised by true class",
    )
