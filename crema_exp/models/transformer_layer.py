"""A Transformer encoder layer whose dropouts draw their masks cheaply on CPU (models/dropout.py).

nn.TransformerEncoderLayer drops out in four places: after attention, inside and after the
feed-forward block (three nn.Dropout modules, replaced here by FastDropout), and on the attention
weights inside nn.MultiheadAttention, the largest mask ([batch, heads, T, T]). For that one, the
self-attention block is written out in training on CPU as scaled_dot_product_attention's own
arithmetic (softmax(q k^T / sqrt(d) + padding mask) v) with FastDropout on the weights; everywhere
else (evaluation, CUDA, attention masks) nn.MultiheadAttention runs as it is. The parameters are
nn.MultiheadAttention's, so state dicts are unchanged; tests/test_dropout.py checks that both paths
give equal outputs and gradients with dropout off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crema_exp.models.dropout import FastDropout, dropout


class EncoderLayer(nn.TransformerEncoderLayer):
    """nn.TransformerEncoderLayer (batch-first) with FastDropout everywhere it drops out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropout = FastDropout(self.dropout.p)
        self.dropout1 = FastDropout(self.dropout1.p)
        self.dropout2 = FastDropout(self.dropout2.p)

    def _sa_block(self, x: torch.Tensor, attn_mask: torch.Tensor | None,
                  key_padding_mask: torch.Tensor | None, is_causal: bool = False) -> torch.Tensor:
        attention = self.self_attn
        if not (self.training and x.device.type == "cpu" and attn_mask is None
                and attention.batch_first and attention._qkv_same_embed_dim
                and attention.bias_k is None and not attention.add_zero_attn):
            return super()._sa_block(x, attn_mask, key_padding_mask, is_causal)
        batch, steps, width = x.shape
        heads = attention.num_heads
        projected = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)
        query, key, value = projected.view(batch, steps, 3, heads, width // heads).permute(
            2, 0, 3, 1, 4)  # each [batch, heads, T, head width]
        scores = query @ key.transpose(-2, -1) * (width // heads) ** -0.5
        if key_padding_mask is not None:  # forward() made it additive: -inf on padded frames
            scores = scores + key_padding_mask[:, None, None, :]
        weights = dropout(scores.softmax(dim=-1), attention.dropout, True)
        attended = (weights @ value).transpose(1, 2).reshape(batch, steps, width)
        return self.dropout1(attention.out_proj(attended))
