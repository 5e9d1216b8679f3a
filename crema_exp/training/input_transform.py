"""What a model's input frames go through, in training and in predict alike.

Stored float16 frames -> float32 -> global normalisation with the view's train-split statistics
-> zero-padded batch -> per-utterance CMVN when on. The object is saved in best_model.pt, so predict
prepares frames exactly as training did. For a learned layer mix the stream is a list of SSL
layers, frames carry a layer axis ([frames, layers, dim]) and every layer has its own statistics
and its own CMVN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from crema_exp.training.augment import per_utterance_cmvn

VARIANCE_FLOOR = 1e-5


@dataclass
class InputTransform:
    """Global normalisation (train statistics) and optional per-utterance CMVN of one stream,
    or of each layer of a learned mix (``stream`` a list of layers)."""

    stream: str | list[str]
    mean: np.ndarray  # float32 [dim], or [layers, dim] for a mix
    var: np.ndarray  # float32 [dim], or [layers, dim] for a mix
    per_utterance_cmvn: bool
    layout: dict | None  # spectral column blocks: CMVN normalises only the mel blocks

    @property
    def dim(self) -> int:
        return int(np.shape(self.mean)[-1])

    @property
    def layers(self) -> int:
        """Layers of a learned mix, 0 for a single stream."""
        return len(self.stream) if isinstance(self.stream, list) else 0

    def batch(self, flat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Packed frames [sum(lengths), dim] (any float dtype) -> prepared [B, T, dim] float32
        ([sum(lengths), layers, dim] -> [B, T, layers, dim] for a mix).

        Padding stays zero (the normalised global mean).
        """
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=flat.device)
        var = torch.as_tensor(self.var, dtype=torch.float32, device=flat.device)
        flat = (flat.float() - mean) * torch.rsqrt(var + VARIANCE_FLOOR)
        frames = pad_sequence(torch.split(flat, lengths.tolist()), batch_first=True)
        if self.per_utterance_cmvn:
            frames = per_utterance_cmvn(frames, lengths, self.layout)
        return frames

    def to_dict(self) -> dict[str, Any]:
        stream = list(self.stream) if self.layers else self.stream
        return {"stream": stream, "mean": np.asarray(self.mean, np.float32),
                "var": np.asarray(self.var, np.float32),
                "per_utterance_cmvn": bool(self.per_utterance_cmvn), "layout": self.layout}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "InputTransform":
        return cls(**state)
