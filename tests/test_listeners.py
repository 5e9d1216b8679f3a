"""CREMA-D's voice-only listener ratings: parsing the official tables, the model-vs-listeners
figures (checked by hand on a small table), soft-label targets, and the train job's artefacts."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pandas as pd
import pytest

import crema_exp.train as train_job
from _helpers_listeners import write_generated_votes
from _helpers_training import write_toy_store
from crema_exp.comparison.compare_runs import compare
from crema_exp.config import ConfigError, EMOTIONS
from crema_exp.data.listener_votes import (
    VOTE_COLUMNS, VotesError, read_votes, voice_votes_from_official, votes_for_corpus)
from crema_exp.training.human_comparison import compare_with_listeners
from crema_exp.training.data import load_training_data
from crema_exp.training.soft_labels import listener_targets, soft_targets
from test_train_job import composed

# Real rows of the release's tabulatedVotes.csv (first 11 columns): the same two clips rated as
# voice only (1xxxxx), face only (2xxxxx) and audio-visual (3xxxxx).
REAL_TABULATED = '''"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote"
"100009",5,5,0,0,1,1,"1001_IEO_ANG_MD",12,0.416666666666667,"A:D"
"100062",6,2,0,0,1,0,"1001_DFA_ANG_XX",9,0.666666666666667,"A"
"200009",4,1,0,0,3,1,"1001_IEO_ANG_MD",9,0.444444444444444,"A"
"200062",5,2,0,0,3,0,"1001_DFA_ANG_XX",10,0.5,"A"
"300009",5,2,0,0,3,0,"1001_IEO_ANG_MD",10,0.5,"A"
"300062",8,1,0,0,0,0,"1001_DFA_ANG_XX",9,0.888888888888889,"A"
'''
# summaryTable.csv rows of the same clips: VoiceVote is the voice-only majority.
REAL_SUMMARY = '''"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel","MultiModalVote","MultiModalLevel"
"9","1001_IEO_ANG_MD","A:D","37.2:58.6","A","45.5","A","44.2"
"62","1001_DFA_ANG_XX","A","47.33","A","41.8","A","41.5"
'''


def test_official_rows_parse_to_the_voice_only_votes(tmp_path):
    path = tmp_path / "tabulatedVotes.csv"
    path.write_text(REAL_TABULATED)
    votes = voice_votes_from_official(path)
    assert votes.columns.tolist() == ["clip_id", *EMOTIONS]
    assert votes.set_index("clip_id").loc["1001_DFA_ANG_XX"].tolist() == [6, 2, 0, 0, 1, 0]
    assert votes.set_index("clip_id").loc["1001_IEO_ANG_MD"].tolist() == [5, 5, 0, 0, 1, 1]
    # the voice-only majority (ties joined by ':') is summaryTable's VoiceVote
    summary = pd.read_csv(io.StringIO(REAL_SUMMARY)).set_index("FileName")
    codes = np.array(list("ADFHNS"))
    for _, row in votes.iterrows():
        counts = row[VOTE_COLUMNS].to_numpy(int)
        assert ":".join(codes[counts == counts.max()]) == summary.loc[row.clip_id, "VoiceVote"]


def test_packaged_table_covers_the_release_and_a_real_clip(tmp_path):
    votes = read_votes()
    assert len(votes) == 7442 and votes.columns.tolist() == VOTE_COLUMNS
    assert votes.loc["1001_DFA_ANG_XX"].tolist() == [6, 2, 0, 0, 1, 0]
    broken = tmp_path / "votes.csv"
    broken.write_text("clip_id,anger\n1001_DFA_ANG_XX,3\n")
    with pytest.raises(VotesError, match="votes.csv: missing columns"):
        read_votes(broken)


def test_ratings_exist_for_the_real_corpus_only(tmp_path):
    class Data:
        name, listener_votes = "crema_d", None
    assert votes_for_corpus(Data, "official")[0] is not None
    assert votes_for_corpus(Data, "split_folders")[0] is None
    Data.name = "synthetic"
    votes, why = votes_for_corpus(Data, "official")
    assert votes is None and "no listener ratings" in why


def test_figures_match_a_hand_computed_small_table():
    votes = pd.DataFrame(
        [[8, 1, 1, 0, 0, 0],   # c1 anger: clear majority anger (agreement 0.8)
         [2, 2, 0, 0, 1, 0],   # c2 anger: anger/disgust tie -> listeners get 1/2
         [0, 0, 0, 1, 9, 0],   # c3 happy: majority neutral (agreement 0.9) -> listeners 0
         [0, 0, 0, 0, 1, 4]],  # c4 sad: majority sad (agreement 0.8)
        index=["c1", "c2", "c3", "c4"], columns=VOTE_COLUMNS)
    clips = ["c1", "c2", "c3", "c4", "unrated"]
    labels = np.array([0, 0, 3, 5, 1])
    predictions = np.array([0, 1, 4, 4, 1])  # right, wrong, wrong (agrees with crowd), wrong
    report = compare_with_listeners(clips, labels, predictions, votes)
    assert report["clips"] == 4 and report["clips_without_ratings"] == 1
    listeners = report["listeners"]
    assert listeners["majority_accuracy"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert listeners["per_class_recall"]["anger"] == pytest.approx(0.75)
    assert listeners["per_class_recall"]["happy"] == 0 and listeners["per_class_recall"]["fear"] is None
    assert listeners["uar"] == pytest.approx((0.75 + 0 + 1) / 3)
    assert listeners["response_accuracy"] == pytest.approx((8 + 2 + 1 + 4) / 30)
    assert report["model"]["wa"] == pytest.approx(0.25)
    assert report["model"]["uar"] == pytest.approx((0.5 + 0 + 0) / 3)
    # kappa on c1, c3, c4 (unique majorities A, N, S) vs predictions A, N, N:
    # p_o = 2/3; p_e = (1/3*1/3 [A] + 2/3*1/3 [N] + 0 [S]) = 1/3; kappa = (2/3-1/3)/(1-1/3) = 1/2
    assert report["kappa_clips"] == 3 and report["kappa_model_crowd"] == pytest.approx(0.5)
    # agreement >= 0.8: c1 (right), c3 (wrong), c4 (wrong); below: c2 (wrong)
    assert report["clips_high_agreement"] == 3
    assert report["model_accuracy_high_agreement"] == pytest.approx(1 / 3)
    assert report["model_accuracy_low_agreement"] == 0.0
    assert compare_with_listeners(["x"], np.array([0]), np.array([0]), votes) is None


def test_soft_targets_mix_one_hot_and_the_vote_shares():
    votes = pd.DataFrame([[3, 1, 0, 0, 0, 0]], index=["c1"], columns=VOTE_COLUMNS)
    targets, rated = soft_targets(["c1", "c2"], np.array([0, 2]), votes, weight=0.4)
    assert rated == 1
    assert targets[0] == pytest.approx([0.6 + 0.4 * 0.75, 0.4 * 0.25, 0, 0, 0, 0])
    assert targets[1] == pytest.approx(np.eye(6)[2])  # unrated: its one-hot target


@pytest.fixture
def rated_toy_store(tmp_path, monkeypatch):
    view = write_toy_store(tmp_path / "store")
    monkeypatch.setattr(train_job, "prepare_features", lambda cfg: view)
    # rated: every test clip but the last 3, and the train clips after the first 36
    index = pd.concat([view.split("test").iloc[:-3], view.split("train").iloc[36:]])
    labels = [EMOTIONS.index(e) for e in index.emotion]
    return write_generated_votes(tmp_path / "votes.csv", index.clip_id.tolist(), labels)


def test_soft_targets_follow_the_view_train_order(rated_toy_store):
    view = train_job.prepare_features(None)
    train = load_training_data(view, "spectral").train
    votes = read_votes(rated_toy_store)
    targets = listener_targets(0.5, votes, "votes.csv", train, logging.getLogger("test"))
    rows = view.split("train")
    assert train.clip_ids == rows["clip_id"].tolist()
    for i in (0, 35, 36, 50, len(rows) - 1):
        one_hot = np.eye(len(EMOTIONS))[EMOTIONS.index(rows["emotion"][i])]
        clip = rows["clip_id"][i]
        expected = one_hot if clip not in votes.index else (
            0.5 * one_hot + 0.5 * votes.loc[clip].to_numpy() / votes.loc[clip].sum())
        assert targets[i] == pytest.approx(expected)


def test_train_job_writes_the_comparison_and_logs_it(rated_toy_store, tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = composed(["trainer.epochs=2", f"data.listener_votes={rated_toy_store}",
                    "regularization.soft_labels=0.5"])
    with caplog.at_level(logging.INFO):
        train_job.run_job(cfg, run_dir)
    report = json.loads((run_dir / "human_comparison.json").read_text())
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    assert report["clips"] == len(predictions) - 3 and report["clips_without_ratings"] == 3
    rated = predictions.iloc[:-3]
    assert report["model"]["wa"] == pytest.approx((rated.emotion == rated.predicted).mean())
    assert (run_dir / "human_comparison.png").stat().st_size > 0
    assert any("human listeners (voice only) on 33 test clips" in r.message for r in caplog.records)
    assert any("soft labels: weight 0.5" in r.message for r in caplog.records)

    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("{}\n")
    result = compare([str(run_dir)], out_dir=tmp_path / "comparison")
    assert result.leaderboard["kappa_listeners"].iloc[0] == pytest.approx(report["kappa_model_crowd"])
    assert "Model vs human listeners" in (tmp_path / "comparison" / "report.html").read_text()


def test_without_ratings_the_comparison_is_skipped_in_one_line(tmp_path, monkeypatch, caplog):
    view = write_toy_store(tmp_path / "store")
    monkeypatch.setattr(train_job, "prepare_features", lambda cfg: view)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with caplog.at_level(logging.INFO):
        train_job.run_job(composed(["trainer.epochs=1"]), run_dir)
    assert not (run_dir / "human_comparison.json").exists()
    assert sum("human-listener comparison skipped" in r.message for r in caplog.records) == 1
    with pytest.raises(ConfigError, match="soft_labels=0.3 needs listener ratings"):
        train_job.run_job(composed(["trainer.epochs=1", "regularization.soft_labels=0.3"]), run_dir)
