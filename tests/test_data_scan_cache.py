"""The corpus scan cache: unchanged files are not decoded again; changed ones are."""

import os

import pytest

from crema_exp.data import load_corpus
from crema_exp.data import scan_cache
from _helpers_data import data_cfg, paths_cfg, tone, write_official, write_wav


@pytest.fixture
def decodes(monkeypatch):
    """Paths handed to the decoder, in order."""
    seen = []
    measure = scan_cache.measure_clip

    def counting(path):
        seen.append(str(path))
        return measure(path)

    monkeypatch.setattr(scan_cache, "measure_clip", counting)
    return seen


def test_unchanged_corpus_is_rescanned_without_decoding(tmp_path, decodes):
    clip_ids = write_official(tmp_path / "corpus")
    root = tmp_path / "corpus"
    first = load_corpus(data_cfg(root), paths_cfg(tmp_path))
    assert len(decodes) == len(clip_ids)
    assert scan_cache.cache_file(paths_cfg(tmp_path).cache_dir, root).is_file()

    decodes.clear()
    again = load_corpus(data_cfg(root), paths_cfg(tmp_path))
    assert decodes == []
    assert again.manifest.equals(first.manifest)

    touched = root / "AudioWAV" / f"{clip_ids[0]}.wav"
    write_wav(touched, tone(seconds=0.3))  # new size (and mtime): measured again
    silent = root / "AudioWAV" / f"{clip_ids[1]}.wav"
    stat = silent.stat()
    write_wav(silent, tone(seconds=0.6) * 0)  # same size: the mtime tells
    os.utime(silent, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    decodes.clear()
    changed = load_corpus(data_cfg(root, min_duration=0.4), paths_cfg(tmp_path))
    assert sorted(decodes) == sorted([str(touched), str(silent)])
    reasons = dict(zip(changed.skipped["path"], changed.skipped["reason"]))
    assert reasons[str(touched)].startswith("too short")  # the config's checks apply afresh
    assert reasons[str(silent)].startswith("silent")


def test_unreadable_cache_is_ignored(tmp_path, decodes):
    root = tmp_path / "corpus"
    clip_ids = write_official(root)
    cache = scan_cache.cache_file(paths_cfg(tmp_path).cache_dir, root)
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    corpus = load_corpus(data_cfg(root), paths_cfg(tmp_path))
    assert len(corpus.manifest) == len(clip_ids) == len(decodes)
