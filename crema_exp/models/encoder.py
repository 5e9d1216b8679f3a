"""Frame encoder: input projection, BiGRU, light Transformer.

Padding never reaches a valid GRU output (models/bigru.py: packed on CUDA, an exactly equal padded
scheme on CPU) and the Transformer ignores it through its key padding mask, so a clip's encoding
does not depend on what it is batched with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crema_exp.config import ModelConfig
from crema_exp.models.bigru import padded_bigru
from crema_exp.models.transformer_layer import EncoderLayer


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean [B, T] mask, True on padded frames (the convention of nn.Transformer*)."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


class InputProjection(nn.Sequential):
    """LayerNorm then Linear, computed with the LayerNorm's scale and shift folded into the Linear.

    W (g * x_hat + b_ln) + b = (W diag g) x_hat + (W b_ln + b): the same values, but the frames'
    [frames, input_dim] gradient, which the LayerNorm's own g and b_ln would need, is no longer
    computed when the frames need none (single-layer features): about a third of the
    projection's training cost. The modules are nn.Sequential(LayerNorm, Linear)'s, so state
    dicts are unchanged.
    """

    def __init__(self, input_dim: int, output_dim: int):
        super().__init__(nn.LayerNorm(input_dim), nn.Linear(input_dim, output_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        norm, linear = self
        normalised = F.layer_norm(frames, norm.normalized_shape, eps=norm.eps)
        weight = linear.weight * norm.weight
        bias = torch.addmv(linear.bias, linear.weight, norm.bias)
        return F.linear(normalised, weight, bias)


class SequenceEncoder(nn.Module):
    """[B, T, input_dim] padded frames + lengths -> [B, T, 2*hidden_size] (zeros on padding)."""

    def __init__(self, input_dim: int, cfg: ModelConfig):
        super().__init__()
        self.output_dim = 2 * cfg.hidden_size
        # Per-frame projection: brings 768-dim SSL or 245-dim spectral frames to the GRU width.
        self.projection = InputProjection(input_dim, cfg.hidden_size)
        self.gru = nn.GRU(
            cfg.hidden_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.transformer = None
        if cfg.transformer_layers > 0:
            layer = EncoderLayer(
                d_model=self.output_dim,
                nhead=cfg.transformer_heads,
                dim_feedforward=cfg.transformer_ffn,
                dropout=cfg.dropout,
                batch_first=True,
                norm_first=True,
            )
            self.transformer = nn.TransformerEncoder(
                layer, num_layers=cfg.transformer_layers, enable_nested_tensor=False
            )

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor,
                passes: int = 1) -> torch.Tensor:
        """``passes`` > 1 encodes the batch stacked that many times on itself (R-Drop), sharing
        what comes before the first dropout (models/bigru.py)."""
        max_len = frames.size(1)
        encoded = padded_bigru(self.gru, self.projection(frames), lengths, passes)
        lengths = lengths.repeat(passes)
        if self.transformer is not None:
            mask = padding_mask(lengths.to(frames.device), max_len)
            encoded = self.transformer(encoded, src_key_padding_mask=mask)
            encoded = encoded.masked_fill(mask[..., None], 0.0)
        return encoded
