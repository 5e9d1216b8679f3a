"""Corpus scan of a full-size CREMA-D folder: first scan (decodes every clip) vs a cached re-scan.

Writes 7,442 short WAV files with the official names (from the packaged reference list) into a
temporary AudioWAV/ folder, or uses ``--corpus`` (a real download), then times ``load_corpus``
cold (empty scan cache) and warm (unchanged corpus), plus the feature-store key over the manifest
(one stat per file). Every train job and sweep trial pays the warm figure.

Usage: python benchmarks/bench_scan_cache.py [--corpus /data/CREMA-D] [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from omegaconf import OmegaConf

from crema_exp.config import PrecomputeConfig
from crema_exp.data import load_corpus
from crema_exp.data.integrity import reference_manifest
from crema_exp.features.precompute import corpus_fingerprint

DEMOGRAPHICS = Path("/work/shared/crema-d/VideoDemographics.csv")


def write_short_corpus(root: Path, seconds: float = 0.1) -> int:
    """root/AudioWAV/<official name> as short tones (cheap to write, real file names)."""
    audio = root / "AudioWAV"
    audio.mkdir(parents=True)
    t = np.arange(int(16000 * seconds)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    names = reference_manifest()["file"].tolist()
    for name in names:
        sf.write(audio / name, wave, 16000, subtype="PCM_16")
    if DEMOGRAPHICS.is_file():
        shutil.copy(DEMOGRAPHICS, root / DEMOGRAPHICS.name)
    return len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="a real CREMA-D folder")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.corpus
        if root is None:
            root = Path(tmp) / "corpus"
            write_short_corpus(root)
        cfg = OmegaConf.structured(PrecomputeConfig)
        cfg.paths.cache_dir = str(Path(tmp) / "cache")
        cfg.data.name, cfg.data.root = "crema_d", str(root)
        cfg.data.min_duration = 0.05 if args.corpus is None else cfg.data.min_duration

        started = time.perf_counter()
        corpus = load_corpus(cfg.data, cfg.paths)
        cold = time.perf_counter() - started
        warm, warm_cpu, key = [], [], []
        for _ in range(args.repeats):
            started, cpu = time.perf_counter(), time.process_time()
            again = load_corpus(cfg.data, cfg.paths)
            warm.append(time.perf_counter() - started)
            warm_cpu.append(time.process_time() - cpu)
            started = time.perf_counter()
            corpus_fingerprint(again.manifest)
            key.append(time.perf_counter() - started)
        assert again.manifest.equals(corpus.manifest)
    clips = len(corpus.manifest) + len(corpus.skipped)
    print(f"{clips} clips ({len(corpus.manifest)} usable) in {root}")
    print(f"  first scan (decodes every clip): {cold:8.3f} s")
    print(f"  cached re-scan, median of {args.repeats}:  {statistics.median(warm):8.3f} s "
          f"({statistics.median(warm_cpu):.3f} s CPU)")
    print(f"  store key over the manifest:     {statistics.median(key):8.3f} s")


if __name__ == "__main__":
    main()
