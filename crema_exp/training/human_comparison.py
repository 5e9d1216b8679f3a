"""The model next to CREMA-D's human listeners (voice-only ratings) on the same test clips.

Figures (all on the test clips that have ratings, against the intended emotion):
- listeners' majority-vote accuracy: a clip counts 1 when the intended emotion is the only majority
  vote, 1/k when it is one of k tied majority votes (a fair coin among the ties), 0 otherwise;
  their per-class recall and UAR the same way; also the share of single responses that are right;
- the model's WA, UAR and per-class recall on those clips;
- Cohen's kappa (scikit-learn) between the model's prediction and the crowd's majority, on the
  clips whose majority is a single emotion;
- the model's accuracy on clips the crowd agrees on (agreement = share of the most chosen emotion
  >= 0.8) and on the others.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import cohen_kappa_score, recall_score  # noqa: E402

from crema_exp import run_files  # noqa: E402
from crema_exp.atomic import atomic_write, write_json_atomic  # noqa: E402
from crema_exp.config import EMOTIONS  # noqa: E402
from crema_exp.data.listener_votes import VOTE_COLUMNS  # noqa: E402
from crema_exp.training.metrics import CLASS_IDS, summary_metrics  # noqa: E402

HIGH_AGREEMENT = 0.8
REPORT_FILE = run_files.HUMAN_COMPARISON
FIGURE_FILE = run_files.HUMAN_COMPARISON_FIGURE


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def compare_with_listeners(
    clip_ids: list[str], labels: np.ndarray, predictions: np.ndarray, votes: pd.DataFrame
) -> dict | None:
    """The figures above as a JSON-ready dict; None when no clip has ratings."""
    rated = np.array([c in votes.index for c in clip_ids], dtype=bool)
    if not rated.any():
        return None
    labels, predictions = np.asarray(labels)[rated], np.asarray(predictions)[rated]
    counts = votes.loc[[c for c, r in zip(clip_ids, rated) if r], VOTE_COLUMNS].to_numpy(np.float64)
    top = counts.max(axis=1, keepdims=True)
    is_majority = counts == top
    ties = is_majority.sum(axis=1)
    intended = np.arange(len(labels)), labels
    credit = is_majority[intended] / ties  # listeners' majority "accuracy" per clip
    listener_recall = {EMOTIONS[c]: _mean(credit[labels == c]) for c in CLASS_IDS}
    present = [v for v in listener_recall.values() if v is not None]
    model_recall = recall_score(labels, predictions, labels=CLASS_IDS, average=None, zero_division=0)
    agreement = top[:, 0] / counts.sum(axis=1)
    high = agreement >= HIGH_AGREEMENT
    single = ties == 1
    correct = predictions == labels
    kappa = (float(cohen_kappa_score(predictions[single], counts[single].argmax(axis=1)))
             if single.sum() > 1 else None)
    return {
        "clips": int(len(labels)),
        "clips_without_ratings": int((~rated).sum()),
        "listeners": {
            "majority_accuracy": float(credit.mean()),
            "uar": float(np.mean(present)),
            "response_accuracy": float(counts[intended].sum() / counts.sum()),
            "responses_per_clip": float(counts.sum(axis=1).mean()),
            "per_class_recall": listener_recall,
        },
        "model": {
            **summary_metrics(labels, predictions),
            "per_class_recall": {EMOTIONS[c]: (float(model_recall[c]) if (labels == c).any() else None)
                                 for c in CLASS_IDS},
        },
        "kappa_model_crowd": kappa,
        "kappa_clips": int(single.sum()),
        "agreement_threshold": HIGH_AGREEMENT,
        "model_accuracy_high_agreement": _mean(correct[high]),
        "clips_high_agreement": int(high.sum()),
        "model_accuracy_low_agreement": _mean(correct[~high]),
        "clips_low_agreement": int((~high).sum()),
    }


def summary_line(report: dict) -> str:
    """One line for the end-of-run log."""
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    listeners, model = report["listeners"], report["model"]
    return (f"human listeners (voice only) on {report['clips']} test clips: majority vote "
            f"accuracy {fmt(listeners['majority_accuracy'])} (UAR {fmt(listeners['uar'])}) vs model "
            f"WA {fmt(model['wa'])} UAR {fmt(model['uar'])}; kappa(model, crowd) "
            f"{fmt(report['kappa_model_crowd'])}; model accuracy on clips with agreement >= "
            f"{report['agreement_threshold']:g}: {fmt(report['model_accuracy_high_agreement'])} "
            f"(n={report['clips_high_agreement']}), below: "
            f"{fmt(report['model_accuracy_low_agreement'])} (n={report['clips_low_agreement']})")


def plot_per_class_recall(report: dict, path: Path) -> None:
    """Grouped bars: per-class recall of the model and of the listeners' majority vote."""
    x = np.arange(len(EMOTIONS))
    value = lambda d: [np.nan if d[e] is None else d[e] for e in EMOTIONS]  # noqa: E731
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, value(report["model"]["per_class_recall"]), 0.4,
           label=f"model (UAR {report['model']['uar']:.3f})")
    ax.bar(x + 0.2, value(report["listeners"]["per_class_recall"]), 0.4,
           label=f"listeners, voice only (UAR {report['listeners']['uar']:.3f})")
    ax.set_xticks(x, list(EMOTIONS))
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall of the intended emotion")
    ax.set_title(f"test clips with ratings (n={report['clips']})")
    ax.legend()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_human_comparison(run_dir: Path, report: dict) -> None:
    write_json_atomic(Path(run_dir) / REPORT_FILE, report)
    plot_per_class_recall(report, Path(run_dir) / FIGURE_FILE)


def report_against_listeners(run_dir: Path, clip_ids: list[str], test, votes: pd.DataFrame | None,
                             source: str, log) -> dict | None:
    """Write the comparison for the test Evaluation ``test`` and log its line, or log why not."""
    report = None if votes is None else compare_with_listeners(
        clip_ids, test.labels, test.predictions, votes)
    if report is None:
        log.info("human-listener comparison skipped: %s",
                 source if votes is None else f"no test clip has ratings in {source}")
        return None
    report["ratings"] = source
    write_human_comparison(run_dir, report)
    log.info(summary_line(report))
    return report
