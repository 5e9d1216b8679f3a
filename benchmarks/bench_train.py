"""Training throughput: in-memory packed store + bucketed batches vs a naive per-file pipeline.

    .venv/bin/python benchmarks/bench_train.py [--clips 1000] [--kind mel_prosody|ssl] [--steps 25]

Clip durations are drawn from the real CREMA-D distribution ((bytes - 44) / 32000 s from
audio_manifest.csv); frames are random (throughput does not depend on values). Both pipelines
train the same model (default ModelConfig, R-Drop off so the model cost is one pass) for the same
number of optimiser steps, measured in interleaved repeats; the figures are medians.

ours:  FeatureStore arrays read once into memory, length-bucketed batches cut by offset,
       normalisation + per-utterance CMVN + SpecAugment per batch (the train job's code)
naive: one .pt file per clip (float32), torch DataLoader over a Dataset that torch.loads and
       normalises each clip, random batches, collate with pack_sequence (then padded for the model)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, Dataset

from crema_exp.data.integrity import reference_manifest
from crema_exp.config import EMOTIONS, TrainConfig
from crema_exp.features.store import FeatureStore
from crema_exp.features.views import FeatureView
from crema_exp.models import EmotionClassifier
from crema_exp.training.data import load_split
from crema_exp.training.loop import Trainer, TrainingData
from crema_exp.training.rdrop import classification_loss

SHAPES = {"mel_prosody": (100.0, 243, "spectral"), "ssl": (50.0, 768, "layer_12")}
LAYOUT = {"logmel": [0, 80], "delta": [80, 160], "delta_delta": [160, 240], "pitch": [240, 243]}


def real_durations(count: int, seed: int) -> np.ndarray:
    manifest = reference_manifest()
    durations = (manifest["bytes"].to_numpy() - 44) / 32000.0
    return np.random.default_rng(seed).choice(durations, size=count, replace=count > len(durations))


def write_store(root: Path, kind: str, lengths: np.ndarray, seed: int) -> FeatureView:
    """A store in the documented layout seen as one training split, plus one .pt per clip for
    the naive pipeline."""
    frame_rate, dim, stream = SHAPES[kind]
    rng = np.random.default_rng(seed)
    (root / "per_clip").mkdir(parents=True)
    frames = rng.standard_normal((int(lengths.sum()), dim), dtype=np.float32).astype(np.float16)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    labels = np.arange(len(lengths)) % len(EMOTIONS)
    np.save(root / f"{stream}.npy", frames)
    index = pd.DataFrame({"clip_id": [f"clip{i:05d}" for i in range(len(lengths))],
                          "offset": offsets, "length": lengths})
    index.to_csv(root / "index.csv", index=False)
    for i, (o, n) in enumerate(zip(offsets, lengths)):
        torch.save({"features": torch.from_numpy(frames[o:o + n].astype(np.float32)),
                    "label": int(labels[i])}, root / "per_clip" / f"clip{i:05d}.pt")
    layout = LAYOUT if kind != "ssl" else None
    (root / "metadata.json").write_text(json.dumps({
        "key": "bench", "kind": kind, "weights": {},
        "streams": {stream: {"dim": dim, "frame_rate": frame_rate, "layout": layout}}}))
    clips = index.assign(emotion=[EMOTIONS[c] for c in labels], actor=1001, split="train")
    return FeatureView(FeatureStore(root), "bench", clips, {})


class PerClipFiles(Dataset):
    """The seed's pipeline: each item is a torch.load of one clip, normalised on its own."""

    def __init__(self, folder: Path, mean: torch.Tensor, var: torch.Tensor):
        self.paths = sorted(folder.glob("*.pt"))
        self.mean, self.inv_std = mean, torch.rsqrt(var + 1e-5)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        item = torch.load(self.paths[i])
        return (item["features"] - self.mean) * self.inv_std, item["label"]


def pack_collate(items):
    packed = pack_sequence([x for x, _ in items], enforce_sorted=False)
    frames, lengths = pad_packed_sequence(packed, batch_first=True)
    return frames, lengths, torch.tensor([y for _, y in items])


def train_steps(model, optimizer, batches, prepare, steps):
    """Run ``steps`` optimiser steps; return (total seconds, seconds outside forward/backward,
    clips, frames)."""
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    total = data = 0.0
    clips = frames_seen = 0
    iterator = iter(batches)
    for _ in range(steps):
        t0 = time.perf_counter()
        frames, lengths, labels = prepare(next(iterator))
        t1 = time.perf_counter()
        parts = classification_loss(model, frames, lengths, labels, criterion, 0.0)
        optimizer.zero_grad(set_to_none=True)
        parts.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        t2 = time.perf_counter()
        total += t2 - t0
        data += t1 - t0
        clips += len(lengths)
        frames_seen += int(lengths.sum())
    return total, data, clips, frames_seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--kind", choices=sorted(SHAPES), default="mel_prosody")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame_rate, dim, stream = SHAPES[args.kind]
    lengths = np.maximum(1, np.round(real_durations(args.clips, 0) * frame_rate)).astype(np.int64)

    cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.from_dotlist([
        f"trainer.batch_size={args.batch_size}", "trainer.device=cpu",
        "regularization.rdrop_alpha=0", "regularization.ema_decay=0",
        f"regularization.per_utterance_cmvn={args.kind != 'ssl'}",
        f"regularization.spec_augment.enabled={args.kind != 'ssl'}"]))
    with tempfile.TemporaryDirectory() as tmp:
        view = write_store(Path(tmp) / "store", args.kind, lengths, seed=0)
        split = load_split(view, "train", stream)
        mean, var = view.normalisation(stream)
        trainer = Trainer(cfg, TrainingData(split, split, split, stream, mean, var,
                                            view.store.metadata["streams"][stream]["layout"]))
        naive_data = PerClipFiles(Path(tmp) / "store" / "per_clip", torch.from_numpy(mean),
                                  torch.from_numpy(var))

        def ours_batches(seed):
            rng = np.random.default_rng(seed)
            while True:
                yield from trainer.batches.iterate(split, args.batch_size, rng)

        def ours_prepare(batch):
            return trainer.prepare(batch, train=True), batch.lengths, batch.labels

        def naive_batches(seed):
            generator = torch.Generator().manual_seed(seed)
            while True:
                yield from DataLoader(naive_data, batch_size=args.batch_size, shuffle=True,
                                      num_workers=0, collate_fn=pack_collate, generator=generator)

        results = {"ours": [], "naive": []}
        for repeat in range(args.repeats):
            for name in ("ours", "naive") if repeat % 2 == 0 else ("naive", "ours"):
                torch.manual_seed(repeat)
                model = EmotionClassifier(dim, cfg.model)
                optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
                batches, prepare = ((ours_batches(repeat), ours_prepare) if name == "ours"
                                    else (naive_batches(repeat), lambda b: b))
                train_steps(model, optimizer, batches, prepare, 2)  # warm-up
                total, data, clips, frames = train_steps(model, optimizer, batches, prepare,
                                                         args.steps)
                results[name].append({"clips_per_s": clips / total, "frames_per_s": frames / total,
                                      "s_per_clip": total / clips, "data_share": data / total})
                print(f"repeat {repeat} {name:5s} {clips / total:7.1f} clips/s "
                      f"{frames / total:9.0f} frames/s  data share {100 * data / total:5.1f}%",
                      flush=True)

    print(f"\n{args.kind}: {args.clips} clips drawn from the CREMA-D durations, dim {dim}, "
          f"{frame_rate:g} frames/s, batch {args.batch_size}, {args.steps} steps x "
          f"{args.repeats} repeats, {args.threads} threads; medians:")
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for name, runs in results.items()}
    for name, m in medians.items():
        print(f"  {name:5s} {m['clips_per_s']:7.1f} clips/s  {m['frames_per_s']:9.0f} frames/s  "
              f"{1000 * m['s_per_clip']:6.1f} ms/clip  data handling {100 * m['data_share']:4.1f}%"
              " of step time")
    print(f"  speed-up ours/naive: {medians['ours']['clips_per_s'] / medians['naive']['clips_per_s']:.2f}x")


if __name__ == "__main__":
    main()
