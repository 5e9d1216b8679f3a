"""Peak memory of the learned layer mix's reader on a full CREMA-D-shaped SSL store.

The store has the real corpus's shape: the 7,442 clips of the packaged audio manifest with their
real durations (50 frames/s, as WavLM), an actor-disjoint 70/15/15 split, 13 layers x 768 float16
(~19 GB on disk in all). With ``--sparse`` (default) the layer files are sparse: the header and
the size are real but no data block is written, so the store costs no disk and no write time,
while every read still goes through the page cache and the process's mappings exactly as with
real data (the values are zeros). ``--fraction`` keeps that share of the actors (dense stores).

It then iterates the training batches of the train split as the train job does for
``features.ssl_layer=weighted`` (BatchMaker over the disk-backed LayerFrames, batch size 12, the
SSL recommendation), optionally through a LayerMix, and samples the process's resident memory:
RssAnon (private memory: what the batches cost) and RssFile (file pages mapped into the process),
plus the peak (VmHWM). Loading every layer into memory, as the single-layer path does for its one
layer, would need the full store size.

Usage: python benchmarks/bench_layer_mix_memory.py --dir /tmp/mixstore [--fraction 1.0]
           [--batches 400] [--dense] --out benchmarks/results/layer_mix_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from omegaconf import OmegaConf

from crema_exp.config import DataConfig
from crema_exp.features.ssl import layer_stream
from crema_exp.features.store import FeatureStore
from crema_exp.features.views import ensure_view
from crema_exp.models.layer_mix import LayerMix
from crema_exp.training.batching import BatchMaker
from crema_exp.training.input_transform import InputTransform
from crema_exp.training.layer_reader import load_mixed_training_data

MANIFEST = Path(__file__).resolve().parents[1] / "crema_exp" / "data" / "reference" / "audio_manifest.csv"
LAYERS, DIM, FPS = 13, 768, 50
SPLIT_FILE = "bench_splits.csv"  # clip_id, actor, emotion, split: the benchmark's own split


def memory() -> dict[str, float]:
    """Resident memory of this process in MiB (from /proc/self/status)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def write_store(root: Path, fraction: float, sparse: bool, seed: int = 0) -> int:
    """A CREMA-D-shaped SSL store (layout version 2: one whole-corpus .npy per layer at the root)
    under root, with its view's statistics cached (zeros/ones: the values are not the point);
    returns the layer files' size in bytes (apparent)."""
    manifest = pd.read_csv(MANIFEST)
    names = manifest.iloc[:, 0].astype(str).str.replace(".wav", "", regex=False)
    frames = np.maximum(((manifest.iloc[:, 1] - 44) / 32000 * FPS).astype(int), 1).to_numpy()
    actors = names.str[:4].astype(int).to_numpy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.unique(actors))
    order = order[: max(3, round(len(order) * fraction))]
    n = len(order)
    split_of = {a: ("train" if i < 0.7 * n else "validation" if i < 0.85 * n else "test")
                for i, a in enumerate(order)}
    emotions = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
                "SAD": "sad"}
    keep = np.array([a in split_of for a in actors])
    lengths = frames[keep]
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"clip_id": names[keep].to_numpy(), "actor": actors[keep],
                  "emotion": [emotions[c[9:12]] for c in names[keep]],
                  "split": [split_of[a] for a in actors[keep]]}).to_csv(root / SPLIT_FILE,
                                                                        index=False)
    pd.DataFrame({"clip_id": names[keep].to_numpy(), "offset": np.cumsum(lengths) - lengths,
                  "length": lengths}).to_csv(root / "index.csv", index=False)
    total = 0
    for layer in range(LAYERS):
        array = np.lib.format.open_memmap(root / f"{layer_stream(layer)}.npy", "w+",
                                          np.float16, (int(lengths.sum()), DIM))
        if not sparse:
            for start in range(0, len(array), 100_000):
                chunk = array[start : start + 100_000]
                chunk[:] = rng.standard_normal(chunk.shape, np.float32)
        array.flush()
        total += array.nbytes
        del array
    (root / "metadata.json").write_text(json.dumps({
        "format_version": 2, "key": f"bench-layer-mix-{seed}", "kind": "ssl", "weights": {},
        "streams": {layer_stream(i): {"dim": DIM, "frame_rate": FPS, "layout": None}
                    for i in range(LAYERS)}}))
    view = open_view(root)
    for layer in range(LAYERS):
        stream = layer_stream(layer)
        np.savez(view.root / f"{stream}.npz", **{f"{stream}.mean": np.zeros(DIM, np.float32),
                                                 f"{stream}.var": np.ones(DIM, np.float32),
                                                 f"{stream}.count": np.int64(1)})
    return total


def open_view(root: Path):
    """The store's view: the actor-disjoint 70/15/15 split recorded in split.csv beside it."""
    return ensure_view(FeatureStore(root), pd.read_csv(root / SPLIT_FILE, dtype={"clip_id": str}),
                       OmegaConf.structured(DataConfig))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--dense", action="store_true", help="write random values (uses disk)")
    parser.add_argument("--batches", type=int, default=0, help="stop after this many (0 = epoch)")
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--mix", action="store_true", help="also run each batch through LayerMix")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)

    started = time.perf_counter()
    if not (args.dir / "metadata.json").is_file():
        size = write_store(args.dir, args.fraction, sparse=not args.dense)
    else:
        size = sum(p.stat().st_size for p in args.dir.glob("*.npy"))
    written_s = time.perf_counter() - started
    view = open_view(args.dir)
    before = memory()
    data = load_mixed_training_data(view, [layer_stream(i) for i in range(LAYERS)])
    after_load = memory()
    maker = BatchMaker(InputTransform(data.stream, data.mean, data.var, False, None),
                       torch.device("cpu"))
    mix = LayerMix(LAYERS, layer_norm=True) if args.mix else None
    rng = np.random.default_rng(0)
    samples, count, frames = [], 0, 0
    started = time.perf_counter()
    for batch in maker.iterate(data.train, args.batch_size, rng):
        if mix is not None:
            mix(batch.frames).sum().backward()
        count += 1
        frames += int(batch.lengths.sum())
        samples.append(memory())
        if args.batches and count >= args.batches:
            break
    seconds = time.perf_counter() - started
    end = memory()
    result = {
        "store_bytes": size, "store_gib": round(size / 2**30, 2), "sparse": not args.dense,
        "fraction": args.fraction, "train_clips": len(data.train), "batches": count,
        "frames_read": frames, "read_gib": round(frames * LAYERS * DIM * 2 / 2**30, 2),
        "seconds": round(seconds, 1), "store_written_s": round(written_s, 1),
        "rss_mib_before_load": before, "rss_mib_after_load": after_load,
        "peak_rss_anon_mib": max(s["RssAnon"] for s in samples + [end]),
        "peak_rss_file_mib": max(s["RssFile"] for s in samples + [end]),
        "vm_hwm_mib": end["VmHWM"], "end": end,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
