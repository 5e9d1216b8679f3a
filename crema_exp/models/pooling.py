"""Utterance pooling over valid frames only: multi-head self-attention + statistics."""

from __future__ import annotations

import torch
from torch import nn

from crema_exp.models.encoder import padding_mask


class AttentiveStatisticsPooling(nn.Module):
    """[B, T, D] + lengths -> [B, (heads + 2) * D].

    Each head learns its own weighting of frames (structured self-attention, Lin et al. 2017); the
    masked mean and standard deviation add the utterance-level statistics the heads may miss.
    """

    def __init__(self, input_dim: int, heads: int, hidden: int):
        super().__init__()
        self.scorer = nn.Sequential(nn.Linear(input_dim, hidden), nn.Tanh(), nn.Linear(hidden, heads))
        self.output_dim = (heads + 2) * input_dim

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pad = padding_mask(lengths.to(frames.device), frames.size(1))  # [B, T]
        scores = self.scorer(frames).float().masked_fill(pad[..., None], float("-inf"))
        weights = torch.softmax(scores, dim=1).to(frames.dtype)  # [B, T, H], zero on padding
        attended = torch.einsum("bth,btd->bhd", weights, frames).flatten(1)

        valid = (~pad).to(frames.dtype)[..., None]  # [B, T, 1]
        count = valid.sum(dim=1).clamp_min(1.0)
        mean = (frames * valid).sum(dim=1) / count
        var = (((frames - mean[:, None]) * valid) ** 2).sum(dim=1) / count
        std = var.clamp_min(1e-6).sqrt()
        return torch.cat([attended, mean, std], dim=1)
