"""The train job: run directory artefacts, status, recommendations, checkpoint self-sufficiency.

The first tests run the job's body on a toy feature store; the end-to-end test runs
`python -m crema_exp.train` then `python -m crema_exp.predict` on the generated demo corpus.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import crema_exp.train as train_job
from crema_exp import run_files
from conftest import TINY_TRAIN, compose_job
from _helpers_training import write_toy_store
from crema_exp.predict import classify
from crema_exp.training.checkpoint import load_checkpoint

TINY = TINY_TRAIN
RUN_FILES = [run_files.STATUS, run_files.RESOLVED_SETTINGS, run_files.RESOLVED_CONFIG,
             run_files.HISTORY, run_files.METRICS, run_files.TEST_METRICS,
             run_files.TEST_PREDICTIONS, run_files.CLASSIFICATION_REPORT,
             run_files.CONFUSION_MATRIX, run_files.TRAINING_CURVES, run_files.BEST_MODEL]


def composed(overrides):
    return compose_job("train", TINY + overrides)


@pytest.fixture
def toy_store(tmp_path, monkeypatch):
    def make(**kwargs):
        view = write_toy_store(tmp_path / "store", **kwargs)
        monkeypatch.setattr(train_job, "prepare_features", lambda cfg: view)
        return view
    return make


def test_run_writes_every_artefact_and_the_checkpoint_predicts_alone(toy_store, tmp_path):
    view = toy_store(weights={"random": True, "seed": 0})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recommended = ["features.recommended.regularization.rdrop_alpha=0.2",
                   "features.recommended.trainer.batch_size=16",
                   "features.recommended.regularization.per_utterance_cmvn=true"]
    objective = train_job.run_job(
        composed(["trainer.epochs=3", "regularization.ema_decay=0.9", *recommended]), run_dir)

    assert sorted(p.name for p in run_dir.iterdir()) == sorted(RUN_FILES)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed" and status["objective"] == objective
    settings = json.loads((run_dir / "resolved_settings.json").read_text())
    assert settings["regularization.rdrop_alpha"] == {"value": 0.2, "source": "recommended"}
    assert settings["regularization.ema_decay"] == {"value": 0.9, "source": "user"}
    history = json.loads((run_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert len(pd.read_csv(run_dir / "metrics.csv")) == 3
    test_metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert test_metrics["val_uar"] == pytest.approx(objective)
    assert test_metrics["num_clips"] == 36 and "RANDOMLY" in test_metrics["warnings"][0]
    assert test_metrics["features"]["view"] == str(view.root)
    assert test_metrics["features"]["split"]["fold"] is None
    assert test_metrics["features"]["clips"] == {"train": 96, "validation": 36, "test": 36}
    report = json.loads((run_dir / "classification_report.json").read_text())
    assert report["anger"]["support"] == 6

    # best_model.pt alone (normalisation + CMVN + weights) reproduces the run's test predictions
    predictor = load_checkpoint(run_dir / "best_model.pt")
    assert predictor.labels == ["anger", "disgust", "fear", "happy", "neutral", "sad"]
    assert predictor.transform.per_utterance_cmvn is True
    np.testing.assert_array_equal(predictor.transform.mean, view.normalisation("spectral")[0])
    assert predictor.checkpoint["config"]["regularization"]["rdrop_alpha"] == 0.2
    frames, index = view.store.read("spectral"), view.split("test")
    clips = [np.asarray(frames[o : o + n]) for o, n in zip(index.offset, index.length)]
    probabilities = classify(predictor, clips, torch.device("cpu"))
    expected = pd.read_csv(run_dir / "test_predictions.csv")
    assert [predictor.labels[i] for i in probabilities.argmax(1)] == expected["predicted"].tolist()


def test_failed_run_records_the_error_and_reraises(toy_store, tmp_path):
    toy_store(nan_in_train=True)
    with pytest.raises(RuntimeError, match="training diverged at epoch 1"):
        train_job.run_job(composed(["trainer.epochs=2"]), tmp_path)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "failed" and "diverged" in status["error"]
    assert status["objective"] is None


def test_result_warnings_reach_test_metrics_and_the_log(toy_store, tmp_path, caplog):
    view = toy_store()
    # the train split's first actor speaks every validation clip: speakers shared
    view.clips.loc[view.clips["split"] == "validation", "actor"] = 1001
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    train_job.run_job(composed(["trainer.epochs=1"]), run_dir)
    warnings = json.loads((run_dir / "test_metrics.json").read_text())["warnings"]
    shared = ("1 actor(s) appear in both train and validation (1001): the scores measure seen "
              "speakers")
    assert shared in warnings
    assert f"result warning: {shared}" in caplog.text


@pytest.mark.slow
def test_end_to_end_train_then_predict_on_the_demo_corpus(tmp_path):
    env = {**os.environ, "CREMA_EXP_CACHE": str(tmp_path / "cache")}
    run_dir = tmp_path / "run"
    overrides = TINY + [
        "data.synthetic.num_actors=12", "data.synthetic.sentences=[DFA,IEO]",
        "model.hidden_size=24", "trainer.epochs=8", "trainer.patience=8", "optimizer.lr=0.01",
        # short run: no R-Drop (halves the time), fast EMA, and no per-utterance CMVN, which
        # slows learning of the demo corpus's level cues; the recommended values are tested above
        "regularization.rdrop_alpha=0", "regularization.ema_decay=0.8",
        "regularization.per_utterance_cmvn=false", f"hydra.run.dir={run_dir}",
    ]
    subprocess.run([sys.executable, "-m", "crema_exp.train", *overrides], cwd=tmp_path, env=env,
                   check=True, timeout=400)
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    status = json.loads((run_dir / "status.json").read_text())
    test_metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert status["status"] == "completed"
    # chance is 1/6 = 0.167; with this seed the run reaches a held-out-actor test UAR of about
    # 0.4 (deterministic on CPU); 0.3 leaves room for other platforms' float rounding
    assert test_metrics["uar"] > 0.3

    # predict from best_model.pt alone, on the test clips' audio files
    view_splits = pd.read_csv(Path(test_metrics["features"]["view"]) / "splits.csv")
    manifest = pd.read_csv(Path(test_metrics["feature_store"]) / "manifest.csv")
    test_ids = view_splits.loc[view_splits["split"] == "test", "clip_id"]
    test_clips = manifest[manifest["clip_id"].isin(test_ids)]
    clip_dir = tmp_path / "test_clips"
    clip_dir.mkdir()
    for path in test_clips["path"]:
        os.symlink(path, clip_dir / Path(path).name)
    (clip_dir / "broken.wav").write_bytes(b"not a wav file")
    out = tmp_path / "predictions.csv"
    subprocess.run([sys.executable, "-m", "crema_exp.predict",
                    f"checkpoint={run_dir / 'best_model.pt'}", f"inputs={clip_dir}",
                    f"output={out}", "device=cpu"],
                   cwd=tmp_path, env=env, check=True, timeout=200)
    predicted = pd.read_csv(out).set_index("clip")["predicted"]
    expected = pd.read_csv(run_dir / "test_predictions.csv").set_index("clip_id")["predicted"]
    assert predicted.sort_index().tolist() == expected.sort_index().tolist()
    skipped = pd.read_csv(tmp_path / "predictions_skipped.csv")
    assert skipped["path"].str.endswith("broken.wav").tolist() == [True]

    # without output=: a new folder under outputs/predict/, nothing in the working directory
    before = set(tmp_path.iterdir())
    subprocess.run([sys.executable, "-m", "crema_exp.predict",
                    f"checkpoint={run_dir / 'best_model.pt'}", f"inputs={clip_dir}", "device=cpu"],
                   cwd=tmp_path, env=env, check=True, timeout=200)
    assert set(tmp_path.iterdir()) - before == {tmp_path / "outputs"}
    written = sorted(p.name for p in (tmp_path / "outputs" / "predict").glob("*/*/*"))
    assert written == ["predictions.csv", "predictions_skipped.csv"]

