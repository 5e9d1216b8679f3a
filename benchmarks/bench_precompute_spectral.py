"""Spectral (mel_prosody) precompute throughput: one worker process vs all cores.

Runs the real precompute job (ensure_store: audio loading, SpectralExtractor, part files,
consolidation, normalisation) on the generated CREMA-D-shaped demo corpus, each time into a fresh
feature directory, alternating the worker counts so both see the same machine load. Reports median
audio seconds per wall second, the speed-up of all cores over one, and the CPU seconds each build
used (this process + its pool workers): on a shared, busy machine the wall-clock speed-up is capped
by the cores actually free, while equal CPU seconds show the parallel version adds no work.

Usage: python benchmarks/bench_precompute_spectral.py --actors 10 --repeats 3 \
           --out benchmarks/results/precompute_spectral.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from crema_exp.config import register_configs
from crema_exp.data import load_corpus
from crema_exp.features.precompute import ensure_store

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def make_cfg(cache_dir: Path, actors: int):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("precompute", overrides=[
            "data=synthetic", "features=mel_prosody", f"data.synthetic.num_actors={actors}",
            f"paths.cache_dir={cache_dir}",
        ])


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_build(cfg, workers: int, feature_dir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one complete build into an empty feature directory."""
    cfg.features.num_workers = workers
    cfg.paths.feature_dir = str(feature_dir)
    cpu, started = cpu_seconds(), time.perf_counter()
    ensure_store(cfg)
    return time.perf_counter() - started, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=10, help="synthetic actors (24 clips each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    all_cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_cfg(Path(tmp), args.actors)
        corpus = load_corpus(cfg.data, cfg.paths)  # generate the demo corpus outside the timings
        audio_seconds = float(corpus.manifest["duration"].sum())
        walls: dict[int, list[float]] = {1: [], all_cores: []}
        cpus: dict[int, list[float]] = {1: [], all_cores: []}
        for repeat in range(args.repeats):
            for workers in walls:
                wall, cpu = timed_build(cfg, workers, Path(tmp) / f"f{repeat}-{workers}")
                walls[workers].append(wall)
                cpus[workers].append(cpu)
    medians = {w: statistics.median(t) for w, t in walls.items()}
    result = {
        "clips": len(corpus.manifest),
        "audio_seconds": round(audio_seconds, 1),
        "cores": all_cores,
        "repeats": args.repeats,
        "wall_seconds": {str(w): [round(t, 2) for t in ts] for w, ts in walls.items()},
        "median_cpu_seconds": {str(w): round(statistics.median(c), 2) for w, c in cpus.items()},
        "audio_seconds_per_wall_second": {str(w): round(audio_seconds / m, 1)
                                          for w, m in medians.items()},
        "speedup_all_cores_vs_one": round(medians[1] / medians[all_cores], 2),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
