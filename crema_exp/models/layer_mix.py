"""A learned mix of SSL hidden layers (SUPERB's weighted sum, as s3prl's Featurizer does it).

One weight per layer, softmax-normalised (so the weights are positive and sum to 1), initialised
equal and trained with the rest of the model; optionally each layer is layer-normalised (no
affine parameters) before the mix, so that layers of different scale compete on equal terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerMix(nn.Module):
    """[B, T, layers, D] -> [B, T, D]; zero (padded) frames stay zero."""

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))
        self.layer_norm = layer_norm

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.layer_norm:
            frames = F.layer_norm(frames, frames.shape[-1:])
        return torch.einsum("btld,l->btd", frames, self.weights().to(frames.dtype))
