"""Length-bucketed batches cut from a SplitData, prepared by the run's InputTransform on the fly.

Sorting by length keeps padding small; shuffling inside buckets and shuffling the batch order keep
the batches random from epoch to epoch, driven by one seeded numpy Generator (reproducible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from crema_exp.training.data import SplitData
from crema_exp.training.input_transform import InputTransform


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None, bucket_batches: int = 8
) -> list[np.ndarray]:
    """Index batches of similar lengths; ``rng=None`` gives a fixed length order (evaluation).

    Clips are shuffled, stably sorted by length, and cut into buckets of ``bucket_batches``
    batches; each bucket is shuffled before being cut into batches, then batch order is shuffled.
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    shuffled = rng.permutation(len(lengths))
    order = shuffled[np.argsort(lengths[shuffled], kind="stable")]
    bucket = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), bucket):
        members = rng.permutation(order[start : start + bucket])
        batches.extend(members[i : i + batch_size] for i in range(0, len(members), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class Batch:
    frames: torch.Tensor  # float32 [B, T, D], prepared by the InputTransform, zeros on padding
    lengths: torch.Tensor  # int64 [B]
    labels: torch.Tensor  # int64 [B]
    indices: np.ndarray  # clip positions in the split


class BatchMaker:
    """Cuts clips out of the packed split and prepares them with the input transform."""

    def __init__(self, transform: InputTransform, device: torch.device):
        self.transform = transform
        self.device = device

    def make(self, split: SplitData, indices: np.ndarray) -> Batch:
        lengths = split.lengths[indices]
        frame_index = np.concatenate(
            [np.arange(o, o + n) for o, n in zip(split.offsets[indices], lengths)]
        )
        flat = split.frames[torch.from_numpy(frame_index)].to(self.device)
        lengths_tensor = torch.from_numpy(lengths)
        return Batch(
            frames=self.transform.batch(flat, lengths_tensor),
            lengths=lengths_tensor,
            labels=torch.from_numpy(split.labels[indices]).to(self.device),
            indices=indices,
        )

    def iterate(
        self, split: SplitData, batch_size: int, rng: np.random.Generator | None = None
    ) -> Iterator[Batch]:
        for indices in bucketed_batches(split.lengths, batch_size, rng):
            yield self.make(split, indices)
