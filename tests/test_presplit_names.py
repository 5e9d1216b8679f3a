"""Pre-split folders whose files have their own names train from labels.csv alone."""

from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from _helpers_data import data_cfg, paths_cfg, tone, write_wav
from crema_exp.config import EMOTIONS, PrecomputeConfig
from crema_exp.data import load_corpus
from crema_exp.features.views import prepare_features
from crema_exp.training.sanity import split_warnings

COUNTS = {"train": 4, "validation": 1, "test": 1}  # clips per emotion


def write_presplit(root, with_actor: bool):
    rows, n = [], 0
    for split, per_emotion in COUNTS.items():
        for emotion in EMOTIONS:
            for _ in range(per_emotion):
                name = f"clip_{n:05d}"
                write_wav(root / split / f"{name}.wav", tone(seed=n))
                row = {"file": f"{name}.wav", "emotion": emotion}
                if with_actor:
                    row["speaker"] = {"train": n % 3, "validation": 10, "test": 2}[split]
                rows.append(row)
                n += 1
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)


def test_arbitrary_names_are_used_with_labels_from_labels_csv(tmp_path):
    write_presplit(tmp_path / "corpus", with_actor=False)
    corpus = load_corpus(data_cfg(tmp_path / "corpus"), paths_cfg(tmp_path))
    assert corpus.skipped.empty
    manifest = corpus.manifest
    assert manifest.groupby("split").size().to_dict() == {s: n * 6 for s, n in COUNTS.items()}
    assert manifest["actor"].isna().all()
    assert manifest.loc[manifest["clip_id"] == "clip_00000", "emotion"].item() == "anger"


def test_a_store_is_built_and_the_speaker_column_feeds_the_disjointness_check(tmp_path):
    write_presplit(tmp_path / "corpus", with_actor=True)
    cfg = OmegaConf.structured(PrecomputeConfig)
    cfg.paths = paths_cfg(tmp_path)
    cfg.data = data_cfg(tmp_path / "corpus")
    cfg.features.kind = "mel"
    cfg.features.num_workers = 1
    view = prepare_features(cfg)
    indexes = {split: view.split(split) for split in COUNTS}
    assert {split: len(index) for split, index in indexes.items()} == {
        s: n * 6 for s, n in COUNTS.items()}
    warnings = split_warnings(indexes)
    assert any("appear in both train and test (2)" in w for w in warnings)
    assert not any("validation" in w and "appear" in w for w in warnings)


def test_without_actors_no_disjointness_warning_is_invented(tmp_path):
    write_presplit(tmp_path / "corpus", with_actor=False)
    cfg = OmegaConf.structured(PrecomputeConfig)
    cfg.paths = paths_cfg(tmp_path)
    cfg.data = data_cfg(tmp_path / "corpus")
    cfg.features.kind = "mel"
    cfg.features.num_workers = 1
    view = prepare_features(cfg)
    indexes = {split: view.split(split) for split in COUNTS}
    assert not any("appear in both" in w for w in split_warnings(indexes))
