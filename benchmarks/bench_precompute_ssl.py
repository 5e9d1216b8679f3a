"""SSL precompute throughput: SSLExtractor.extract_many vs a naive per-file loop.

Both sides run the full 12-layer WavLM Base architecture with the same random weights on clips whose
lengths are drawn from the real CREMA-D file sizes (so equal-length clips occur as often as in the
corpus), and both write their results to disk:

  naive      per clip: model.extract_features(clip) under torch.no_grad, then torch.save of one .pt
             per clip and per layer (float32), the plain way to cache SSL layers;
  extractor  SSLExtractor.extract_many on all clips, then np.save of every stream as float16.

Runs alternate within one process and the medians are reported (the machine's cores are shared).
Usage: python benchmarks/bench_precompute_ssl.py --clips 60 --repeats 3 --out benchmarks/results/precompute_ssl.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from crema_exp.config import FeaturesConfig
from crema_exp.data.integrity import reference_manifest
from crema_exp.features.ssl import SSLExtractor
from crema_exp.features.ssl_weights import RANDOM_SEED, build_architecture

WAV_HEADER_BYTES = 44
BYTES_PER_SAMPLE = 2  # 16-bit mono at 16 kHz


def sample_clips(count: int, seed: int) -> tuple[list[str], list[np.ndarray]]:
    """Random clips with the lengths of ``count`` CREMA-D files drawn from the official manifest."""
    manifest = reference_manifest().sample(n=count, random_state=seed)
    rng = np.random.default_rng(seed)
    names = [Path(name).stem for name in manifest["file"]]
    lengths = (manifest["bytes"] - WAV_HEADER_BYTES) // BYTES_PER_SAMPLE
    return names, [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def naive_loop(model, names, waves, out_dir: Path) -> None:
    with torch.no_grad():
        for name, wave in zip(names, waves):
            layers, _ = model.extract_features(torch.from_numpy(wave)[None])
            for k, hidden in enumerate(layers, start=1):
                torch.save(hidden[0], out_dir / f"{name}_layer{k:02d}.pt")


def extractor_run(extractor: SSLExtractor, names, waves, out_dir: Path) -> list[dict]:
    results = extractor.extract_many(waves)
    for name, streams in zip(names, results):
        for stream, array in streams.items():
            np.save(out_dir / f"{name}_{stream}.npy", array.astype(np.float16))
    return results


def timed(function, *args) -> float:
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        function(*args, Path(out_dir))
        return time.perf_counter() - start


def max_difference(extractor, model, waves) -> float:
    """Largest |extractor - single-clip torchaudio| over all transformer layers of a few clips."""
    worst = 0.0
    for wave, ours in zip(waves, extractor.extract_many(waves)):
        with torch.no_grad():
            layers, _ = model.extract_features(torch.from_numpy(wave)[None])
        for k, hidden in enumerate(layers, start=1):
            worst = max(worst, float(np.abs(ours[f"layer_{k:02d}"] - hidden[0].numpy()).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="wavlm_base")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precompute_ssl.json"))
    args = parser.parse_args()

    features = OmegaConf.structured(FeaturesConfig)
    features.ssl.model, features.ssl.weights, features.ssl.device = args.model, "random", "cpu"
    extractor = SSLExtractor(features)
    torch.manual_seed(RANDOM_SEED)  # the same random weights as the extractor's
    model = build_architecture(args.model).eval()
    names, waves = sample_clips(args.clips, args.seed)
    audio_seconds = sum(len(w) for w in waves) / 16000

    times = {"naive": [], "extractor": []}
    for repeat in range(args.repeats):
        times["naive"].append(timed(naive_loop, model, names, waves))
        times["extractor"].append(timed(extractor_run, extractor, names, waves))
        print(f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)

    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "model": args.model,
        "clips": args.clips,
        "distinct_lengths": len({len(w) for w in waves}),
        "audio_seconds": round(audio_seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "wall_seconds": times,
        "audio_seconds_per_second": {k: round(audio_seconds / v, 2) for k, v in medians.items()},
        "speedup_vs_naive": round(medians["naive"] / medians["extractor"], 3),
        "max_abs_difference_vs_single_clip": max_difference(extractor, model, waves[:4]),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(result, indent=2))
    os.replace(temporary, args.out)


if __name__ == "__main__":
    main()
