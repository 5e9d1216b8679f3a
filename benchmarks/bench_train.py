"""Training throughput: our train step vs a naive per-file, packed-GRU pipeline; epoch estimates.

    .venv/bin/python benchmarks/bench_train.py [--kinds mel_prosody ssl] [--rdrop 0 0.5]
        [--clips 600] [--steps 0] [--repeats 3] [--threads 2]
    .venv/bin/python benchmarks/bench_train.py --estimate-epoch [--sample-batches 12] [--threads 2]

Clip durations are drawn from the real CREMA-D distribution ((bytes - 44) / 32000 s from
crema_exp/data/reference/audio_manifest.csv); frames are random (throughput does not depend on
values). Shapes: mel_prosody 245 dims x 100 frames/s, ssl 768 dims x 50 frames/s.

Comparison (default): both pipelines train a model of the same layers and size (default
ModelConfig) for one epoch over the same clips (every clip once, after 2 warm-up steps; --steps N
times N steps instead), for every kind x R-Drop alpha (0 = one pass, > 0 = two passes and a KL
term), in interleaved repeats; the figures are medians. A whole epoch matters: our length buckets
differ in cost, so a few steps would time whichever buckets they happened to draw.

ours:  the train job's code: FeatureStore arrays read once into memory, length-bucketed batches cut
       by offset, normalisation + per-utterance CMVN + SpecAugment per batch (mel_prosody), our
       EmotionClassifier (exact padded BiGRU on CPU), R-Drop as one stacked forward pass that
       shares the layers before the first dropout, the train job's AdamW (fused kernel)
naive: its own plain code: one float32 .pt file per clip, torch DataLoader over a Dataset that
       torch.loads and normalises each clip, random batches, pack_sequence collate, nn.GRU over the
       PackedSequence, R-Drop as two forward calls, torch.optim.AdamW with its defaults

Epoch estimate (--estimate-epoch): seconds per epoch of each recipe on full CREMA-D shapes, with
the recipe's recommended settings (below): 5,200 training clips and 1,116 validation clips (0.15 of
7,442) drawn from the real durations, cut into our length-bucketed batches exactly as the train
job cuts them. Timing every batch would take as long as the epoch, so a sample is timed: the
training batches are sorted by padded size (clips x longest clip) and --sample-batches of them
are taken at evenly spaced ranks (all sizes represented). Each sampled batch runs the train job's
full step (batch cut + normalisation, CMVN/SpecAugment, forward with R-Drop, backward, gradient
clipping, AdamW, scheduler, EMA update). The cost of a batch is close to proportional to its
padded frames, so the epoch's training time is estimated as (sampled seconds / sampled padded
frames) x (padded frames of all the epoch's batches); validation (EMA model, no gradient, batch 64
in length order) is estimated the same way from a third as many sampled batches.
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
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, Dataset

from crema_exp.config import EMOTIONS, ModelConfig, TrainConfig
from crema_exp.data.integrity import reference_manifest
from crema_exp.features.store import FeatureStore
from crema_exp.features.views import FeatureView
from crema_exp.models import EmotionClassifier
from crema_exp.models.encoder import padding_mask
from crema_exp.models.pooling import AttentiveStatisticsPooling
from crema_exp.training.batching import bucketed_batches
from crema_exp.training.data import SplitData, load_split
from crema_exp.training.ema import WeightAverager
from crema_exp.training.loop import EVAL_BATCH_SIZE, Trainer, TrainingData
from crema_exp.training.optim import build_optimizer, build_scheduler
from crema_exp.training.rdrop import classification_loss, symmetric_kl

SHAPES = {"mel_prosody": (100.0, 245, "spectral"), "ssl": (50.0, 768, "layer_12")}
LAYOUT = {"logmel": [0, 80], "delta": [80, 160], "delta_delta": [160, 240], "pitch": [240, 245]}
# The recipes' recommended settings (conf/features/<kind>.yaml `recommended`), default model.
RECIPES = {
    "mel_prosody": ["trainer.batch_size=32", "regularization.rdrop_alpha=0.5",
                    "regularization.ema_decay=0.995", "regularization.per_utterance_cmvn=true",
                    "regularization.spec_augment.enabled=true"],
    "ssl": ["trainer.batch_size=12", "regularization.rdrop_alpha=0.3",
            "regularization.ema_decay=0.995", "regularization.per_utterance_cmvn=false",
            "regularization.spec_augment.enabled=false"],
}
FULL_TRAIN_CLIPS, FULL_VALIDATION_CLIPS = 5200, 1116


def real_lengths(count: int, kind: str, seed: int) -> np.ndarray:
    """Frame counts of ``count`` clips whose durations are drawn from the CREMA-D files."""
    durations = (reference_manifest()["bytes"].to_numpy() - 44) / 32000.0
    rng = np.random.default_rng(seed)
    drawn = rng.choice(durations, size=count, replace=count > len(durations))
    return np.maximum(1, np.round(drawn * SHAPES[kind][0])).astype(np.int64)


def random_split(name: str, lengths: np.ndarray, dim: int, seed: int) -> SplitData:
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((int(lengths.sum()), dim), dtype=np.float32).astype(np.float16)
    return SplitData(name=name, frames=torch.from_numpy(frames),
                     offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths=lengths,
                     labels=np.arange(len(lengths)) % len(EMOTIONS),
                     clip_ids=[f"clip{i:05d}" for i in range(len(lengths))])


def train_config(kind: str, overrides: list[str]) -> TrainConfig:
    return OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.from_dotlist(
        ["trainer.device=cpu", "regularization.spec_augment.enabled=false",
         "regularization.per_utterance_cmvn=false"] + overrides))


# ------------------------------------------------------------------------------ naive pipeline

def write_store(root: Path, kind: str, lengths: np.ndarray, seed: int) -> FeatureView:
    """A store in the documented layout seen as one training split, plus one .pt per clip for
    the naive pipeline."""
    frame_rate, dim, stream = SHAPES[kind]
    split = random_split("train", lengths, dim, seed)
    (root / "per_clip").mkdir(parents=True)
    np.save(root / f"{stream}.npy", split.frames.numpy())
    index = pd.DataFrame({"clip_id": split.clip_ids, "offset": split.offsets, "length": lengths})
    index.to_csv(root / "index.csv", index=False)
    for clip_id, o, n, label in zip(split.clip_ids, split.offsets, lengths, split.labels):
        torch.save({"features": split.frames[o:o + n].float(), "label": int(label)},
                   root / "per_clip" / f"{clip_id}.pt")
    (root / "metadata.json").write_text(json.dumps({
        "key": "bench", "kind": kind, "weights": {},
        "streams": {stream: {"dim": dim, "frame_rate": frame_rate,
                             "layout": LAYOUT if kind != "ssl" else None}}}))
    clips = index.assign(emotion=[EMOTIONS[c] for c in split.labels], actor=1001, split="train")
    return FeatureView(FeatureStore(root), "bench", clips, {})


class PerClipFiles(Dataset):
    """Each item is a torch.load of one clip, normalised on its own."""

    def __init__(self, folder: Path, mean: torch.Tensor, var: torch.Tensor):
        self.paths = sorted(folder.glob("*.pt"))
        self.mean, self.inv_std = mean, torch.rsqrt(var + 1e-5)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        item = torch.load(self.paths[i])
        return (item["features"] - self.mean) * self.inv_std, item["label"]


def pack_collate(items):
    clips = [x for x, _ in items]
    return (pack_sequence(clips, enforce_sorted=False), torch.tensor([len(x) for x in clips]),
            torch.tensor([y for _, y in items]))


class PackedGRUClassifier(nn.Module):
    """The plain model path: the same layers as EmotionClassifier, nn.GRU over a PackedSequence."""

    def __init__(self, input_dim: int, cfg: ModelConfig):
        super().__init__()
        width = 2 * cfg.hidden_size
        self.projection = nn.Sequential(nn.LayerNorm(input_dim),
                                        nn.Linear(input_dim, cfg.hidden_size))
        self.gru = nn.GRU(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.num_layers,
                          batch_first=True, bidirectional=True,
                          dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        layer = nn.TransformerEncoderLayer(width, cfg.transformer_heads, cfg.transformer_ffn,
                                           cfg.dropout, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.transformer_layers,
                                                 enable_nested_tensor=False)
        self.pooling = AttentiveStatisticsPooling(width, cfg.attention_heads, cfg.attention_hidden)
        self.head = nn.Sequential(nn.LayerNorm(self.pooling.output_dim), nn.Dropout(cfg.dropout),
                                  nn.Linear(self.pooling.output_dim, len(EMOTIONS)))

    def forward(self, packed: PackedSequence) -> torch.Tensor:
        encoded, _ = self.gru(packed._replace(data=self.projection(packed.data)))
        encoded, lengths = pad_packed_sequence(encoded, batch_first=True)
        mask = padding_mask(lengths, encoded.size(1))
        encoded = self.transformer(encoded, src_key_padding_mask=mask)
        encoded = encoded.masked_fill(mask[..., None], 0.0)
        return self.head(self.pooling(encoded, lengths))


def naive_loss(model, packed, labels, criterion, alpha):
    if alpha <= 0:
        return criterion(model(packed), labels)
    first, second = model(packed), model(packed)
    return 0.5 * (criterion(first, labels) + criterion(second, labels)) + alpha * symmetric_kl(
        first, second)


# ------------------------------------------------------------------------------ comparison

def timed_steps(batches, loss_of, model, optimizer, steps):
    """Run ``steps`` optimiser steps; return (seconds, seconds fetching batches, clips, frames)."""
    model.train()
    total = data = 0.0
    clips = frames = 0
    for _ in range(steps):
        t0 = time.perf_counter()
        inputs, lengths, labels = next(batches)
        t1 = time.perf_counter()
        loss = loss_of(inputs, lengths, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        total += time.perf_counter() - t0
        data += t1 - t0
        clips += len(lengths)
        frames += int(lengths.sum())
    return total, data, clips, frames


def compare(kind: str, alpha: float, args) -> dict:
    dim, stream = SHAPES[kind][1:]
    lengths = real_lengths(args.clips, kind, seed=0)
    cfg = train_config(kind, [f"trainer.batch_size={args.batch_size}",
                              f"regularization.per_utterance_cmvn={kind != 'ssl'}",
                              f"regularization.spec_augment.enabled={kind != 'ssl'}"])
    criterion = nn.CrossEntropyLoss()
    with tempfile.TemporaryDirectory() as tmp:
        view = write_store(Path(tmp) / "store", kind, lengths, seed=0)
        split = load_split(view, "train", stream)
        mean, var = view.normalisation(stream)
        trainer = Trainer(cfg, TrainingData(split, split, split, stream, mean, var,
                                            view.store.metadata["streams"][stream]["layout"]))
        per_clip = PerClipFiles(Path(tmp) / "store" / "per_clip", torch.from_numpy(mean),
                                torch.from_numpy(var))

        def ours(seed):
            rng = np.random.default_rng(seed)
            while True:
                for batch in trainer.batches.iterate(split, args.batch_size, rng):
                    yield trainer.prepare(batch, train=True), batch.lengths, batch.labels

        def naive(seed):
            generator = torch.Generator().manual_seed(seed)
            while True:
                yield from DataLoader(per_clip, batch_size=args.batch_size, shuffle=True,
                                      num_workers=0, collate_fn=pack_collate, generator=generator)

        epoch_steps = {"ours": len(bucketed_batches(lengths, args.batch_size,
                                                    np.random.default_rng(0))),
                       "naive": -(-len(lengths) // args.batch_size)}

        results = {"ours": [], "naive": []}
        for repeat in range(args.repeats):
            for name in ("ours", "naive") if repeat % 2 == 0 else ("naive", "ours"):
                torch.manual_seed(repeat)
                if name == "ours":
                    model, batches = EmotionClassifier(dim, cfg.model), ours
                    loss_of = lambda x, n, y: classification_loss(  # noqa: E731
                        model, x, n, y, criterion, alpha).loss
                    optimizer = build_optimizer(model, cfg.optimizer)
                else:
                    model, batches = PackedGRUClassifier(dim, cfg.model), naive
                    loss_of = lambda x, n, y: naive_loss(  # noqa: E731
                        model, x, y, criterion, alpha)
                    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
                timed_steps(batches(1000 + repeat), loss_of, model, optimizer, 2)  # warm-up
                total, data, clips, frames = timed_steps(batches(repeat), loss_of, model,
                                                         optimizer, args.steps or epoch_steps[name])
                results[name].append({"clips_per_s": clips / total, "frames_per_s": frames / total,
                                      "data_share": data / total})
                print(f"  {kind} R-Drop {alpha:g} repeat {repeat} {name:5s} {clips / total:7.1f} "
                      f"clips/s  data share {100 * data / total:4.1f}%", flush=True)
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for name, runs in results.items()}
    medians["speedup"] = medians["ours"]["clips_per_s"] / medians["naive"]["clips_per_s"]
    return medians


# ------------------------------------------------------------------------------ epoch estimate

def evenly_spaced(batches: list[np.ndarray], lengths: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` batches at evenly spaced ranks of padded size (clips x longest clip)."""
    ranked = sorted(batches, key=lambda b: len(b) * lengths[b].max())
    ranks = np.linspace(0, len(ranked) - 1, min(count, len(ranked)))
    picks = np.unique(np.round(ranks).astype(int))
    return [ranked[i] for i in picks]


def padded_frames(batches: list[np.ndarray], lengths: np.ndarray) -> int:
    return int(sum(len(b) * lengths[b].max() for b in batches))


def estimate_epoch(kind: str, args) -> dict:
    """Seconds per epoch of the recipe on full CREMA-D shapes, from a timed sample of batches."""
    dim, stream = SHAPES[kind][1:]
    cfg = train_config(kind, RECIPES[kind])
    reg, batch_size = cfg.regularization, cfg.trainer.batch_size
    train_lengths = real_lengths(FULL_TRAIN_CLIPS, kind, seed=1)
    val_lengths = real_lengths(FULL_VALIDATION_CLIPS, kind, seed=2)
    train_batches = bucketed_batches(train_lengths, batch_size, np.random.default_rng(0))
    val_batches = bucketed_batches(val_lengths, EVAL_BATCH_SIZE, None)
    train_sample = evenly_spaced(train_batches, train_lengths, args.sample_batches)
    val_sample = evenly_spaced(val_batches, val_lengths, max(2, args.sample_batches // 3))

    # Only the sampled clips are held in memory (1.3 M frames x 245 would be 0.6 GB of float16).
    def sampled_split(name, lengths, sample, seed):
        clips = np.concatenate(sample)
        split = random_split(name, lengths[clips], dim, seed)
        positions = np.cumsum([0] + [len(b) for b in sample])
        return split, [np.arange(a, b) for a, b in zip(positions[:-1], positions[1:])]

    train, train_local = sampled_split("train", train_lengths, train_sample, 1)
    validation, val_local = sampled_split("validation", val_lengths, val_sample, 2)
    layout = LAYOUT if kind != "ssl" else None
    trainer = Trainer(cfg, TrainingData(train, validation, validation, stream, np.zeros(dim, np.float32),
                                        np.ones(dim, np.float32), layout))
    torch.manual_seed(0)
    model = EmotionClassifier(dim, cfg.model)
    averager = WeightAverager(model, reg.ema_decay)
    optimizer = build_optimizer(model, cfg.optimizer)
    scheduler = build_scheduler(optimizer, cfg.scheduler, len(train_batches), cfg.trainer.epochs)
    criterion = nn.CrossEntropyLoss(label_smoothing=reg.label_smoothing)

    def train_step(indices):
        batch = trainer.batches.make(train, indices)
        parts = classification_loss(model, trainer.prepare(batch, train=True), batch.lengths,
                                    batch.labels, criterion, reg.rdrop_alpha)
        optimizer.zero_grad(set_to_none=True)
        parts.loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), reg.grad_clip)
        optimizer.step()
        scheduler.step()
        averager.update()

    @torch.no_grad()
    def validation_step(indices):
        batch = trainer.batches.make(validation, indices)
        averager.evaluated(trainer.prepare(batch, train=False), batch.lengths)

    model.train()
    train_step(train_local[len(train_local) // 2])  # warm-up
    seconds = []
    for indices in train_local:
        started = time.perf_counter()
        train_step(indices)
        seconds.append(time.perf_counter() - started)
    averager.evaluated.eval()
    val_seconds = []
    for indices in val_local:
        started = time.perf_counter()
        validation_step(indices)
        val_seconds.append(time.perf_counter() - started)

    per_frame = sum(seconds) / padded_frames(train_sample, train_lengths)
    val_per_frame = sum(val_seconds) / padded_frames(val_sample, val_lengths)
    train_s = per_frame * padded_frames(train_batches, train_lengths)
    val_s = val_per_frame * padded_frames(val_batches, val_lengths)
    print(f"  {kind}: timed {len(seconds)} of {len(train_batches)} training batches "
          f"({min(seconds):.2f}-{max(seconds):.2f} s each), {len(val_seconds)} of "
          f"{len(val_batches)} validation batches", flush=True)
    return {"batch_size": batch_size, "rdrop_alpha": reg.rdrop_alpha, "batches": len(train_batches),
            "train_s": train_s, "validation_s": val_s, "epoch_s": train_s + val_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES))
    parser.add_argument("--rdrop", nargs="+", type=float, default=[0.0, 0.5],
                        help="R-Drop alphas to compare (0 = one pass)")
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--steps", type=int, default=0,
                        help="optimiser steps timed per run (0 = one epoch over all clips)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--estimate-epoch", action="store_true",
                        help="estimate seconds per epoch of each recipe on full CREMA-D shapes")
    parser.add_argument("--sample-batches", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.estimate_epoch:
        print(f"Epoch estimates, full CREMA-D shapes ({FULL_TRAIN_CLIPS} training, "
              f"{FULL_VALIDATION_CLIPS} validation clips), {args.threads} threads:", flush=True)
        estimates = {kind: estimate_epoch(kind, args) for kind in args.kinds}
        for kind, e in estimates.items():
            print(f"  {kind:11s} batch {e['batch_size']}, R-Drop {e['rdrop_alpha']:g}: "
                  f"{e['batches']} batches, train {e['train_s']:.0f} s + validation "
                  f"{e['validation_s']:.0f} s = {e['epoch_s']:.0f} s per epoch "
                  f"({e['epoch_s'] / 60:.1f} min; 30 epochs {30 * e['epoch_s'] / 3600:.1f} h)")
        return

    rows = []
    for kind in args.kinds:
        for alpha in args.rdrop:
            rows.append((kind, alpha, compare(kind, alpha, args)))
    print(f"\n{args.clips} clips drawn from the CREMA-D durations, batch {args.batch_size}, "
          f"{f'{args.steps} steps' if args.steps else 'one epoch'} x {args.repeats} repeats, "
          f"{args.threads} threads; medians:")
    print("| kind | R-Drop | ours clips/s | naive clips/s | ours data share | speed-up |")
    print("|---|---|---|---|---|---|")
    for kind, alpha, m in rows:
        print(f"| {kind} | {alpha:g} | {m['ours']['clips_per_s']:.1f} | "
              f"{m['naive']['clips_per_s']:.1f} | {100 * m['ours']['data_share']:.1f} % | "
              f"**{m['speedup']:.2f}x** |")


if __name__ == "__main__":
    main()
