"""Corpus discovery in both layouts, bad-input handling and the manifest contract."""

import sys
import types

import numpy as np
import pandas as pd
import pytest

from crema_exp.config import EMOTIONS
from crema_exp.data import CorpusError, load_audio, load_corpus, write_skipped
from crema_exp.data.corpus import MANIFEST_COLUMNS
from _helpers_data import CODES, data_cfg, paths_cfg, tone, write_official, write_wav

SEXES = {1001: "Male", 1002: "Female", 1003: "Male", 1004: "Female", 1005: "Male", 1006: "Female"}


def test_official_layout_gives_the_manifest_contract(tmp_path):
    clip_ids = write_official(tmp_path, codes=CODES, sentences=("DFA", "IEO"), sexes=SEXES)
    corpus = load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))
    manifest = corpus.manifest
    assert (corpus.root, corpus.layout) == (tmp_path, "official") and corpus.skipped.empty
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["clip_id"].tolist() == clip_ids  # sorted, one row per clip
    first = manifest.iloc[0].to_dict()
    assert first["clip_id"] == "1001_DFA_ANG_XX" and first["actor"] == 1001
    assert (first["sentence"], first["emotion"], first["level"], first["sex"]) == (
        "DFA", "anger", "XX", "Male")
    assert first["path"] == str(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    assert first["duration"] == pytest.approx(0.6)
    assert set(manifest["emotion"]) == set(EMOTIONS)
    assert set(manifest["split"]) == {"train", "validation", "test"}
    assert (manifest.groupby("actor")["split"].nunique() == 1).all()  # actor-disjoint


def test_official_splits_are_seeded_and_folds_rotate(tmp_path):
    write_official(tmp_path, sexes=SEXES)
    paths = paths_cfg(tmp_path)
    split_of = lambda **kw: load_corpus(data_cfg(tmp_path, **kw), paths).manifest.set_index(
        "clip_id")["split"]
    pd.testing.assert_series_equal(split_of(split__seed=1), split_of(split__seed=1))
    tested = []
    for fold in range(3):
        splits = split_of(fold=fold, split__num_folds=3)
        tested += sorted({int(c[:4]) for c in splits[splits == "test"].index})
    assert sorted(tested) == list(SEXES)  # every actor in exactly one test fold


def test_relative_root_resolves_against_the_working_directory(tmp_path, monkeypatch):
    write_official(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    corpus = load_corpus(data_cfg("corpus"), paths_cfg(tmp_path))
    assert corpus.root == tmp_path / "corpus" and len(corpus.manifest) == 18


def test_split_folders_layout_with_labels_csv_spellings(tmp_path):
    write_wav(tmp_path / "train" / "1001_DFA_ANG_XX.wav")
    write_wav(tmp_path / "train" / "1001_DFA_NEU_XX.wav")  # not in labels.csv: name is the label
    write_wav(tmp_path / "train" / "clip_7.wav")  # label and actor only from labels.csv
    write_wav(tmp_path / "validation" / "1002_IEO_SAD_HI.wav")
    write_wav(tmp_path / "test" / "sub" / "1003_TIE_HAP_LO.wav")  # found recursively
    write_wav(tmp_path / "test" / "1003_TIE_FEA_LO.wav")  # labels.csv says "calm": skipped
    write_wav(tmp_path / "test" / "mystery.wav")  # no label anywhere: skipped
    (tmp_path / "labels.csv").write_text(
        "Filename,Emotion,Speaker,split\n"
        "train/1001_DFA_ANG_XX.wav,Angry,,train\n"
        "clip_7,DIS,1009,train\n"
        "1002_IEO_SAD_HI.wav,sad,,validation\n"
        "1003_TIE_HAP_LO,happy,,test\n"
        "1003_TIE_FEA_LO.wav,calm,,test\n")
    corpus = load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))
    assert corpus.layout == "split_folders"
    rows = corpus.manifest.set_index("clip_id")
    assert rows["emotion"].to_dict() == {"1001_DFA_ANG_XX": "anger", "1001_DFA_NEU_XX": "neutral",
                                         "1002_IEO_SAD_HI": "sad", "1003_TIE_HAP_LO": "happy",
                                         "clip_7": "disgust"}
    assert rows["split"].to_dict() == {"1001_DFA_ANG_XX": "train", "1001_DFA_NEU_XX": "train",
                                       "1002_IEO_SAD_HI": "validation", "1003_TIE_HAP_LO": "test",
                                       "clip_7": "train"}
    assert rows.loc["clip_7", "actor"] == 1009 and rows.loc["1002_IEO_SAD_HI", "level"] == "HI"
    reasons = dict(zip(corpus.skipped["path"], corpus.skipped["reason"]))
    assert reasons[str(tmp_path / "test" / "1003_TIE_FEA_LO.wav")].startswith(
        "labels.csv: unknown emotion label 'calm'")
    assert reasons[str(tmp_path / "test" / "mystery.wav")].startswith("no label")


def test_split_folders_without_labels_csv_use_names_and_need_every_split(tmp_path):
    for split, actor in (("train", 1001), ("validation", 1002), ("test", 1003)):
        write_wav(tmp_path / split / f"{actor}_DFA_HAP_MD.wav")
    corpus = load_corpus(data_cfg(tmp_path, layout="split_folders"), paths_cfg(tmp_path))
    assert corpus.manifest["split"].tolist() == ["train", "validation", "test"]
    with pytest.raises(CorpusError, match="data.fold needs the official layout"):
        load_corpus(data_cfg(tmp_path, fold=0), paths_cfg(tmp_path))
    (tmp_path / "test" / "1003_DFA_HAP_MD.wav").write_bytes(b"")
    with pytest.raises(CorpusError, match="no usable clip in the test split"):
        load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))


def _bad_corpus(root):
    """Good clips for 3 actors plus one of every kind of bad file; returns {file name: reason}."""
    good = write_official(root, actors=(1001, 1002, 1003), codes=("ANG", "SAD"))
    audio = root / "AudioWAV"
    write_wav(audio / "1004_DFA_ANG_XX.wav", tone(rate=44100, channels=2), rate=44100)
    write_wav(audio / "1004_DFA_SAD_XX.wav", subtype="PCM_U8")
    (audio / "1005_DFA_ANG_XX.wav").write_bytes(b"")
    (audio / "1005_DFA_DIS_XX.wav").write_bytes((audio / "1001_DFA_ANG_XX.wav").read_bytes()[:30])
    (audio / "1005_DFA_FEA_XX.wav").write_text("hello, I am a text file\n" * 10)
    write_wav(audio / "1005_DFA_HAP_XX.wav", np.zeros(16000, dtype=np.float32))
    write_wav(audio / "1005_DFA_NEU_XX.wav", tone(seconds=0.1))
    (audio / "notes.txt").write_text("stray")
    write_wav(audio / "1006-DFA-ANG.wav")
    write_wav(audio / "1006_DFA_CAL_XX.wav")
    expected = {"1005_DFA_ANG_XX.wav": "empty file", "1005_DFA_DIS_XX.wav": "corrupt or truncated header",
                "1005_DFA_FEA_XX.wav": "not an audio file", "1005_DFA_HAP_XX.wav": "silent",
                "1005_DFA_NEU_XX.wav": "too short", "notes.txt": "not a .wav file",
                "1006-DFA-ANG.wav": "malformed name", "1006_DFA_CAL_XX.wav": "unknown emotion code"}
    return good + ["1004_DFA_ANG_XX", "1004_DFA_SAD_XX"], expected


def test_bad_files_are_skipped_with_reasons_and_good_ones_kept(tmp_path):
    good, expected = _bad_corpus(tmp_path)
    corpus = load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))
    assert corpus.manifest["clip_id"].tolist() == sorted(good)
    found = {p.rsplit("/", 1)[1]: r for p, r in zip(corpus.skipped["path"], corpus.skipped["reason"])}
    assert found.keys() == expected.keys()
    for name, reason in expected.items():
        assert found[name].startswith(reason), (name, found[name])
    for clip in ("1004_DFA_ANG_XX", "1004_DFA_SAD_XX"):  # stereo 44.1 kHz and 8-bit are usable
        wave = load_audio(corpus.manifest.set_index("clip_id").loc[clip, "path"])
        assert wave.ndim == 1 and len(wave) == pytest.approx(0.6 * 16000, abs=2)
    report = pd.read_csv(write_skipped(corpus.skipped, tmp_path / "out" / "skipped.csv"))
    assert list(report.columns) == ["path", "reason"] and len(report) == len(expected)


def test_corpus_of_only_bad_files_raises_with_a_summary(tmp_path):
    audio = tmp_path / "AudioWAV"
    audio.mkdir()
    (audio / "1001_DFA_ANG_XX.wav").write_bytes(b"")
    (audio / "1001_DFA_SAD_XX.wav").write_bytes(b"")
    write_wav(audio / "1001_DFA_HAP_XX.wav", np.zeros(16000, dtype=np.float32))
    with pytest.raises(CorpusError, match=r"no usable clip in .*: 2 x empty file; 1 x silent"):
        load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))


def test_folders_that_are_not_a_corpus_raise(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(data_cfg(tmp_path / "nope"), paths_cfg(tmp_path))
    (tmp_path / "something").mkdir()
    with pytest.raises(CorpusError, match="cannot tell the corpus layout"):
        load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))
    with pytest.raises(CorpusError, match="data.root is not set"):
        load_corpus(data_cfg(None), paths_cfg(tmp_path))


def test_audiowav_folder_itself_is_read_as_the_official_layout(tmp_path):
    clip_ids = write_official(tmp_path / "CREMA-D", sexes=SEXES)
    audio = tmp_path / "CREMA-D" / "AudioWAV"
    corpus = load_corpus(data_cfg(audio), paths_cfg(tmp_path))
    assert (corpus.root, corpus.layout) == (audio, "official") and corpus.skipped.empty
    assert corpus.manifest["clip_id"].tolist() == clip_ids
    # VideoDemographics.csv one level up, beside AudioWAV/, is found.
    assert corpus.manifest.set_index("actor")["sex"].to_dict() == SEXES


def test_flat_folder_of_official_names_is_the_official_layout(tmp_path):
    write_official(tmp_path / "download", sexes=SEXES)
    flat = tmp_path / "flat"
    (tmp_path / "download" / "AudioWAV").rename(flat)
    (tmp_path / "download" / "VideoDemographics.csv").rename(flat / "VideoDemographics.csv")
    (flat / "notes.txt").write_text("not a clip")
    corpus = load_corpus(data_cfg(flat), paths_cfg(tmp_path))
    assert corpus.layout == "official" and len(corpus.manifest) == 18
    assert corpus.manifest.set_index("actor")["sex"].to_dict() == SEXES  # found beside the clips
    assert corpus.skipped["reason"].tolist() == ["not a .wav file"]


def test_flat_folder_without_official_names_is_not_a_corpus(tmp_path):
    write_wav(tmp_path / "clip_one.wav", tone())
    with pytest.raises(CorpusError, match="cannot tell the corpus layout"):
        load_corpus(data_cfg(tmp_path), paths_cfg(tmp_path))


def test_synthetic_reads_the_generated_corpus_as_official(tmp_path, monkeypatch):
    calls = []

    def ensure_demo_corpus(synthetic_cfg, demo_dir):
        calls.append((synthetic_cfg.seed, demo_dir))
        root = demo_dir / "abc"
        write_official(root, sexes=SEXES)
        return root

    fake = types.ModuleType("crema_exp.data.synthetic")
    fake.ensure_demo_corpus = ensure_demo_corpus
    monkeypatch.setitem(sys.modules, "crema_exp.data.synthetic", fake)
    corpus = load_corpus(data_cfg(name="synthetic"), paths_cfg(tmp_path))
    assert calls == [(0, tmp_path / "cache" / "demo")]
    assert corpus.layout == "official" and corpus.root == tmp_path / "cache" / "demo" / "abc"
    assert len(corpus.manifest) == 18 and set(corpus.manifest["sex"]) == {"Male", "Female"}
