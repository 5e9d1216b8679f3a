"""Degenerate splits are flagged, metrics stay quiet about absent classes, compare ranks such runs last."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from crema_exp.config import EMOTIONS
from crema_exp.training.metrics import normalised_confusion, per_class_report, summary_metrics
from crema_exp.training.sanity import MIN_EVALUATION_CLIPS, split_warnings


def _index(emotions, actors):
    return pd.DataFrame({"emotion": emotions, "actor": actors})


def _sound(n_per_class: int, actor: str):
    emotions = [e for e in EMOTIONS for _ in range(n_per_class)]
    return _index(emotions, [actor] * len(emotions))


def test_sound_splits_give_no_warning():
    assert split_warnings({"train": _sound(20, "1001"), "validation": _sound(5, "1002"),
                           "test": _sound(5, "1003")}) == []


def test_the_35_clip_case_is_flagged_class_size_and_both_evaluation_splits():
    # what the 35 real sample clips give: validation and test hold anger only, 4 clips each
    found = split_warnings({"train": _sound(5, "1001"), "validation": _index(["anger"] * 4, ["1002"] * 4),
                            "test": _index(["anger"] * 4, ["1003"] * 4)})
    assert len(found) == 4
    assert any("validation split has no clip of disgust, fear, happy, neutral, sad" in w for w in found)
    assert any(f"test split has only 4 clips (fewer than {MIN_EVALUATION_CLIPS})" in w for w in found)


def test_shared_actors_are_named_and_unknown_actors_ignored():
    train = _sound(20, "1001")
    validation = _sound(5, "1001")
    test = _sound(5, "")  # a pre-split folder without an actor column
    found = split_warnings({"train": train, "validation": validation, "test": test})
    assert found == ["1 actor(s) appear in both train and validation (1001): the scores measure "
                     "seen speakers"]


def test_metrics_handle_absent_classes_without_warnings():
    y_true, y_pred = np.array([0, 0, 0, 1]), np.array([0, 2, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's UndefinedMetricWarning/UserWarning would raise
        metrics = summary_metrics(y_true, y_pred)
        per_class_report(y_true, y_pred)
        matrix = normalised_confusion(y_true, y_pred)
    assert metrics["uar"] == (2 / 3 + 1) / 2  # mean recall over the classes present
    assert np.isnan(matrix[2:]).all()  # classes without clips: not rows of zeros
    np.testing.assert_allclose(matrix[:2].sum(axis=1), 1.0)


def test_leaderboard_puts_warned_runs_after_sound_ones(tmp_path):
    from crema_exp.comparison.leaderboard import build_leaderboard
    from crema_exp.comparison.runs import Run

    def run(name, value, warned):
        return Run(path=tmp_path / name, name=name, status="completed",
                   test_metrics={"val_uar": value, "warnings": ["split lacks sad"] if warned else []})
    board = build_leaderboard([run("a", 0.5, False), run("b", 1.0, True), run("c", 0.6, False),
                               Run(path=tmp_path / "d", name="d", status="failed")], "val_uar")
    assert board["run"].tolist() == ["c", "a", "b", "d"]
    assert board["rank"].tolist()[:3] == [1, 2, 3] and pd.isna(board["rank"].iloc[3])
    assert board["warnings"].tolist() == ["", "", "split lacks sad", ""]
