"""The emotion classifier: encoder -> pooling -> LayerNorm, dropout, linear head."""

from __future__ import annotations

import torch
from torch import nn

from crema_exp.config import EMOTIONS, ModelConfig
from crema_exp.models.dropout import FastDropout
from crema_exp.models.encoder import SequenceEncoder
from crema_exp.models.layer_mix import LayerMix
from crema_exp.models.pooling import AttentiveStatisticsPooling


class EmotionClassifier(nn.Module):
    """Padded frames [B, T, input_dim] + true lengths [B] -> logits [B, num_classes].

    With ``mixed_layers`` > 0 the frames are [B, T, mixed_layers, input_dim] (several SSL layers)
    and a learned LayerMix reduces them first.

    ``passes`` > 1 gives the logits of the batch stacked that many times on itself
    [passes * B, num_classes], each pass with its own dropout masks (R-Drop): the same values as
    feeding the stacked batch, but what comes before the first dropout is computed once.
    """

    def __init__(self, input_dim: int, cfg: ModelConfig, num_classes: int = len(EMOTIONS),
                 mixed_layers: int = 0):
        super().__init__()
        self.layer_mix = LayerMix(mixed_layers, cfg.layer_mix_norm) if mixed_layers else None
        self.encoder = SequenceEncoder(input_dim, cfg)
        self.pooling = AttentiveStatisticsPooling(
            self.encoder.output_dim, cfg.attention_heads, cfg.attention_hidden
        )
        self.head = nn.Sequential(
            nn.LayerNorm(self.pooling.output_dim),
            FastDropout(cfg.dropout),
            nn.Linear(self.pooling.output_dim, num_classes),
        )

    def embed(self, frames: torch.Tensor, lengths: torch.Tensor,
              passes: int = 1) -> torch.Tensor:
        """Pooled utterance embedding (before the head)."""
        if self.layer_mix is not None:
            frames = self.layer_mix(frames)
        return self.pooling(self.encoder(frames, lengths, passes), lengths.repeat(passes))

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor,
                passes: int = 1) -> torch.Tensor:
        return self.head(self.embed(frames, lengths, passes))
