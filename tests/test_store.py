"""Feature store mechanics with a generated wav corpus and fake extractors (no real features)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from crema_exp.config import ConfigError, TrainConfig
from crema_exp.data import load_audio
from crema_exp.features import parts, precompute, views
from crema_exp.features.normalisation import RunningMoments
from crema_exp.features.precompute import ensure_store
from crema_exp.features.store import FeatureStore, StoreError
from crema_exp.features.views import ensure_view
from crema_exp.training.settings import recommended_settings

CONF = Path(__file__).resolve().parents[1] / "conf"

from _helpers_store import (
    FakeExtractor,
    FakeSSLExtractor,
    make_cfg,
    rewrite_clip,
    store_files,
    write_corpus,
)


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "wavs")
    monkeypatch.setattr(precompute, "load_corpus", lambda data, paths: corpus)
    return corpus


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(parts, "CHUNK_MAX_CLIPS", 3)


def test_layout_is_packed_contiguous_and_matches_the_extractor(tmp_path, corpus, small_chunks):
    store = ensure_store(make_cfg(tmp_path), FakeExtractor())
    reference = FakeExtractor()
    features, index = store.read("spectral"), store.index()
    assert features.dtype == np.float16 and features.shape[1] == 4
    assert len(features) == index["length"].sum()  # no padding
    assert (index["offset"] == index["length"].cumsum() - index["length"]).all()
    assert list(index.columns) == ["clip_id", "offset", "length"]
    assert sorted(index["clip_id"]) == sorted(corpus.manifest["clip_id"])  # every split, once
    paths = corpus.manifest.set_index("clip_id")["path"]
    for row in index.iloc[[0, -1]].itertuples():
        np.testing.assert_array_equal(
            features[row.offset: row.offset + row.length],
            reference.extract(load_audio(paths[row.clip_id]))["spectral"].astype(np.float16))
    meta = store.metadata
    assert meta["format_version"] == precompute.FORMAT_VERSION == 2
    assert meta["streams"] == {"spectral": {"dim": 4, "frame_rate": 100.0,
                                            "layout": FakeExtractor.layout}}
    assert meta["corpus"]["total"]["clips"] == 36 and "splits" not in meta["corpus"]
    assert "split" not in meta["config"]["data"] and "fold" not in meta["config"]["data"]
    assert meta["weights"]["random"] is False
    assert meta["config"]["features"]["kind"] == "mel_prosody"
    assert not (store.root / "parts").exists()
    assert store.root.name.startswith("mel_prosody-") and len(store.root.name) == 12 + 16
    assert "split" not in pd.read_csv(store.root / "manifest.csv").columns


def test_old_format_store_is_ignored_not_misread(tmp_path, corpus, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(precompute, "FORMAT_VERSION", 1)
        old = ensure_store(make_cfg(tmp_path), FakeExtractor())
    extractor = FakeExtractor()
    new = ensure_store(make_cfg(tmp_path), extractor)
    assert new.root != old.root and extractor.calls == len(corpus.manifest)


def test_view_normalisation_comes_from_its_train_frames_only(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(views, "_BLOCK_FRAMES", 7)  # statistics merged over many small reads
    cfg = make_cfg(tmp_path)
    store = ensure_store(cfg, FakeExtractor())
    view = ensure_view(store, corpus.manifest, cfg.data)
    frames = store.read("spectral")
    train = view.split("train")
    direct = np.concatenate([frames[o:o + n] for o, n in zip(train.offset, train.length)])
    mean, var = view.normalisation("spectral")
    np.testing.assert_allclose(mean, direct.astype(np.float64).mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(var, direct.astype(np.float64).var(0), rtol=1e-5, atol=1e-9)
    assert (view.root / "spectral.npz").is_file() and view.root.parent == store.root / "views"
    splits = pd.read_csv(view.root / "splits.csv")
    assert sorted(splits.loc[splits["split"] == "test", "actor"].unique()) == [1005, 1006]

    held_out = corpus.manifest[corpus.manifest["split"] != "train"]
    for clip_id in held_out["clip_id"]:
        rewrite_clip(corpus, clip_id, wave=np.full(8000, 0.9))
    changed = ensure_store(cfg, FakeExtractor())
    assert changed.root != store.root  # the corpus changed, so the key did
    changed_view = ensure_view(changed, corpus.manifest, cfg.data)
    for got, want in zip(changed_view.normalisation("spectral"), (mean, var)):
        np.testing.assert_array_equal(got, want)


def test_a_new_split_is_a_new_view_of_the_same_store(tmp_path, corpus):
    cfg = make_cfg(tmp_path)
    store = ensure_store(cfg, FakeExtractor())
    first = ensure_view(store, corpus.manifest, cfg.data)
    moved = corpus.manifest.copy()
    moved.loc[moved["actor"] == 1003, "split"] = "validation"  # same files, another split
    extractor = FakeExtractor()
    assert ensure_store(cfg, extractor).root == store.root and extractor.calls == 0
    second = ensure_view(store, moved, cfg.data)
    assert second.key != first.key and len(second.split("validation")) == 12
    assert not np.array_equal(first.normalisation("spectral")[0],
                              second.normalisation("spectral")[0])
    relabelled = moved.assign(emotion="sad")  # labels are not part of the view's key either
    assert ensure_view(store, relabelled, cfg.data).key == second.key
    no_train = moved.assign(split="test")
    with pytest.raises(StoreError, match="no stored clip in the train and validation split"):
        ensure_view(store, no_train, cfg.data)


def test_running_moments_merge_equals_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(1000.0, 0.01, size=(1000, 3))  # large mean, tiny variance: naive sums fail
    merged = RunningMoments.empty(3)
    for part in np.array_split(x, [1, 7, 300, 301, 999]):
        merged = merged.merge(RunningMoments.from_frames(part))
    assert merged.count == 1000
    np.testing.assert_allclose(merged.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.variance, x.var(0), rtol=1e-9)


def test_complete_store_is_reused_without_extraction(tmp_path, corpus, caplog):
    first = ensure_store(make_cfg(tmp_path), FakeExtractor())
    again = FakeExtractor()
    with caplog.at_level("INFO"):
        second = ensure_store(make_cfg(tmp_path, num_workers=2), again)
    assert second.root == first.root and again.calls == 0
    assert "Reusing complete feature store" in caplog.text


def test_resume_after_crash_equals_clean_run(tmp_path, corpus, small_chunks):
    with pytest.raises(RuntimeError, match="simulated crash"):
        ensure_store(make_cfg(tmp_path), FakeExtractor(crash_after=7))
    store_dir = next(p for p in (tmp_path / "features").glob("mel_prosody-*") if p.is_dir())
    assert not (store_dir / "metadata.json").exists()
    assert len(list((store_dir / "parts").glob("part-*.npz"))) == 2  # 2 chunks of 3 finished
    leftover = store_dir / "parts" / f".part-00002.npz.tmp-{os.getpid() + 1}"
    leftover.write_bytes(b"half-written part")

    resumed_extractor = FakeExtractor()
    resumed = ensure_store(make_cfg(tmp_path), resumed_extractor)
    assert resumed_extractor.calls == len(corpus.manifest) - 6  # finished chunks were kept
    assert not leftover.exists()
    clean = ensure_store(make_cfg(tmp_path, feature_dir="clean"), FakeExtractor())
    assert clean.root.name == resumed.root.name
    assert store_files(resumed.root) == store_files(clean.root)
    compared = set(store_files(clean.root))
    assert {"manifest.csv", "index.csv", "spectral.npy"} <= compared


def test_crash_during_consolidation_resumes_without_extraction(tmp_path, corpus, monkeypatch):
    def crash(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(precompute, "write_side_files", crash)
        with pytest.raises(KeyboardInterrupt):
            ensure_store(make_cfg(tmp_path), FakeExtractor())
    resumed_extractor = FakeExtractor()
    resumed = ensure_store(make_cfg(tmp_path), resumed_extractor)
    assert resumed_extractor.calls == 0  # every part was already written
    clean = ensure_store(make_cfg(tmp_path, feature_dir="clean"), FakeExtractor())
    assert store_files(resumed.root) == store_files(clean.root)


def test_process_pool_gives_the_same_store_as_one_worker(tmp_path, corpus, small_chunks):
    one = ensure_store(make_cfg(tmp_path, num_workers=1, feature_dir="one"), FakeExtractor())
    two = ensure_store(make_cfg(tmp_path, num_workers=2, feature_dir="two"), FakeExtractor())
    assert one.root.name == two.root.name
    assert store_files(one.root) == store_files(two.root)


def test_key_follows_content_not_labels_or_splits(tmp_path, corpus):
    base = ensure_store(make_cfg(tmp_path), FakeExtractor()).root
    rescaled = ensure_store(make_cfg(tmp_path), FakeExtractor(scale=2.0)).root
    mel = ensure_store(make_cfg(tmp_path, kind="mel"), FakeExtractor()).root
    assert len({base, rescaled, mel}) == 3 and mel.name.startswith("mel-")

    moved = corpus.manifest.copy()
    moved.loc[moved["actor"] == 1004, "split"] = "test"  # same files, different split and labels
    moved["emotion"] = "neutral"
    corpus.manifest = moved
    cfg = make_cfg(tmp_path)
    cfg.data.fold, cfg.data.split.seed = 2, 7
    assert ensure_store(cfg, FakeExtractor()).root == base

    os.utime(corpus.manifest["path"].iloc[0], ns=(1, 1))  # a touched file is new content
    assert ensure_store(cfg, FakeExtractor()).root not in {base, rescaled, mel}


def test_ssl_store_layers_and_stream_names(tmp_path, corpus):
    cfg = make_cfg(tmp_path, kind="ssl")
    extractor = FakeSSLExtractor()
    store = ensure_store(cfg, extractor)
    assert store.streams == ["layer_00", "layer_01", "layer_02", "layer_03"]
    assert store.metadata["weights"]["random"] is True
    layer1, index = store.read("layer_01"), store.index()
    layer3 = store.read("layer_03")
    np.testing.assert_allclose(layer3, layer1.astype(np.float32) * 2 + 1, rtol=2e-3, atol=1e-3)
    assert extractor.calls == 1  # one extract_many for the one chunk of the whole corpus
    assert layer1.shape[0] == index["length"].sum()

    for ssl_layer, stream in ((-1, "layer_03"), (-2, "layer_02"), (1, "layer_01"), (0, "layer_00")):
        cfg.features.ssl_layer = ssl_layer
        assert store.stream_name(cfg.features) == stream
    cfg.features.ssl_layer = 7
    with pytest.raises(StoreError, match=r"stored layers: \[0, 1, 2, 3\]"):
        store.stream_name(cfg.features)
    cfg.features.ssl_layer = -5
    with pytest.raises(StoreError, match="only 4 layers"):
        store.stream_name(cfg.features)
    cfg.features.ssl_layer = 2  # neither the layer choice nor the device is part of the key
    cfg.features.ssl.device = "cuda"
    assert ensure_store(cfg, FakeSSLExtractor()).root == store.root
    with pytest.raises(StoreError, match="holds 'ssl' features"):
        store.stream_name(make_cfg(tmp_path, kind="mel").features)


def test_bad_clips_are_skipped_and_listed(tmp_path, corpus):
    broken = rewrite_clip(corpus, "1001_DFA_ANG_XX", raw=b"RIFF not really a wav file")
    silent = rewrite_clip(corpus, "1004_IEO_FEA_XX", wave=np.zeros(8000))
    store = ensure_store(make_cfg(tmp_path), FakeExtractor())
    skipped = pd.read_csv(store.root / "skipped.csv")
    assert dict(zip(skipped["path"], skipped["reason"].str.split(":").str[0])) == {
        str(broken): "audio", str(silent): "features"}
    assert {s["path"] for s in store.metadata["skipped"]} == {str(broken), str(silent)}
    assert "1001_DFA_ANG_XX" not in set(store.index()["clip_id"])
    assert store.metadata["corpus"]["total"]["clips"] == 34
    view = ensure_view(store, corpus.manifest, make_cfg(tmp_path).data)
    assert len(view.split("train")) == 17


def test_clip_rejected_by_a_batched_extractor_is_skipped_alone(tmp_path, corpus):
    short = rewrite_clip(corpus, "1002_IEO_DIS_XX", wave=np.full(200, 0.1))
    store = ensure_store(make_cfg(tmp_path, kind="ssl"), FakeSSLExtractor())
    skipped = pd.read_csv(store.root / "skipped.csv")
    assert skipped["path"].tolist() == [str(short)]
    assert skipped["reason"].iloc[0].startswith("features: clip 0: 200 samples is too short")
    assert store.metadata["corpus"]["total"]["clips"] == 35


def test_nothing_usable_stops_with_an_error(tmp_path, corpus):
    for clip_id in corpus.manifest.loc[corpus.manifest["split"] == "train", "clip_id"]:
        rewrite_clip(corpus, clip_id, raw=b"garbage")
    store = ensure_store(make_cfg(tmp_path), FakeExtractor())  # other clips are usable
    with pytest.raises(StoreError, match="no stored clip in the train split"):
        ensure_view(store, corpus.manifest, make_cfg(tmp_path).data)
    for clip_id in corpus.manifest["clip_id"]:
        rewrite_clip(corpus, clip_id, raw=b"garbage")
    with pytest.raises(StoreError, match="no clip could be extracted"):
        ensure_store(make_cfg(tmp_path), FakeExtractor())
    assert len(list((tmp_path / "features").glob("*/metadata.json"))) == 1


def test_missing_or_incomplete_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match=f"{tmp_path / 'nope'}.*does not exist"):
        FeatureStore(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(StoreError, match="has no metadata.json"):
        FeatureStore(tmp_path / "half")


def _build_in_child(cfg_yaml: str, calls_log: str, queue) -> None:
    store = ensure_store(OmegaConf.create(cfg_yaml), FakeExtractor(calls_log=calls_log, delay=0.02))
    queue.put(str(store.root))


def test_concurrent_builders_build_once(tmp_path, corpus):
    cfg_yaml = OmegaConf.to_yaml(make_cfg(tmp_path))
    calls_log = tmp_path / "calls.log"
    context = multiprocessing.get_context("fork")  # children inherit the patched load_corpus
    queue = context.Queue()
    children = [context.Process(target=_build_in_child, args=(cfg_yaml, str(calls_log), queue))
                for _ in range(2)]
    for child in children:
        child.start()
    roots = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert roots[0] == roots[1]
    assert len(calls_log.read_text().splitlines()) == len(corpus.manifest)  # one build only
    assert (tmp_path / "features" / f"{os.path.basename(roots[0])}.lock").exists()


def test_recommendations_live_in_the_features_config_and_name_null_train_keys():
    schema = OmegaConf.structured(TrainConfig)
    expected = {"ssl": (12, False, 0.3), "mel_prosody": (32, True, 0.5), "mel": (32, True, 0.4)}
    for kind, (batch, spec_augment, rdrop) in expected.items():
        features = OmegaConf.load(CONF / "features" / f"{kind}.yaml")
        recommended = recommended_settings(features)
        for key in recommended:
            assert OmegaConf.select(schema, key, default="absent") is None, key  # a null field
        assert recommended["trainer.batch_size"] == batch
        assert recommended["regularization.spec_augment.enabled"] is spec_augment
        assert recommended["regularization.rdrop_alpha"] == rdrop
    with pytest.raises(ConfigError, match=r"no such setting \['trainer.batchsize'\]"):
        recommended_settings(OmegaConf.create({"recommended": {"trainer": {"batchsize": 4}}}))


def test_a_build_that_fails_before_its_first_part_leaves_no_store_folder(tmp_path, corpus):
    class WeightsFail(FakeSSLExtractor):
        def extract_many(self, waves):
            raise RuntimeError("cannot load the SSL weights")

    with pytest.raises(RuntimeError, match="SSL weights"):
        ensure_store(make_cfg(tmp_path, kind="ssl"), WeightsFail())
    # only the build lock and its guard file: no ssl-*/parts
    assert sorted(p.suffix for p in (tmp_path / "features").iterdir()) == [".guard", ".lock"]
