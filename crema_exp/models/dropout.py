"""Dropout whose masks are drawn 16 bits at a time: nn.Dropout's regularisation, ~6x cheaper on CPU.

Why: on CPU, `bernoulli_` (what F.dropout uses) took ~9 ms per million elements here, about 15 %
of an ssl training step (benchmarks/README.md). One 64-bit draw of torch's
generator gives four 16-bit uniform integers instead; an element is kept when its integer is not
among the lowest round(p * 65536), i.e. dropped with probability p rounded to a multiple of
1/65536 (at most 7.6e-6 away), and kept elements are scaled by 1 / (1 - that probability), so the
expectation of each output equals its input exactly, as with nn.Dropout. The masks come from
torch's default generator, so `torch.manual_seed` makes them reproducible.

For float32, the compiled kernel (dropout_mask.cpp, built with the GRU loops by cpu_kernels.py)
draws the same masks bit for bit in one pass and keeps a one-byte mask for the backward pass;
the Python code below is what it computes, and the fallback where it cannot be built.
CUDA tensors keep F.dropout (its fused kernel is fast there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crema_exp.models.cpu_kernels import compiled_kernels

_LEVELS = 1 << 16  # 16-bit integers: drop probabilities are multiples of 1/65536
_INT64_MIN = -(1 << 63)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout(x, p, training) with 16-bit masks on CPU (see the module docstring)."""
    if not training or p == 0.0:
        return x
    dropped_levels = round(p * _LEVELS)
    if x.device.type != "cpu" or not 0.0 < p < 1.0 or dropped_levels in (0, _LEVELS):
        return F.dropout(x, p, training)
    if x.dtype == torch.float32 and compiled_kernels() is not None:
        return CompiledDropout.apply(x.contiguous(), dropped_levels)
    count = x.numel()
    bits = torch.empty((count + 3) // 4, dtype=torch.int64).random_(_INT64_MIN, None)
    uniform = bits.view(torch.int16)[:count].view(x.shape)  # each in [-32768, 32767]
    keep = uniform >= dropped_levels - _LEVELS // 2
    return x * keep.to(x.dtype).mul_(_LEVELS / (_LEVELS - dropped_levels))


class CompiledDropout(torch.autograd.Function):
    """x (contiguous float32, CPU), dropped levels -> dropout(x) of the compiled kernel."""

    @staticmethod
    def forward(ctx, x, dropped_levels):
        outputs, keep = compiled_kernels().dropout_forward(x, dropped_levels)
        ctx.save_for_backward(keep)
        ctx.dropped_levels = dropped_levels
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        (keep,) = ctx.saved_tensors
        return compiled_kernels().dropout_backward(grad_outputs, keep, ctx.dropped_levels), None


class FastDropout(nn.Dropout):
    """nn.Dropout with the masks of `dropout` above; no parameters, so state dicts are unchanged.

    ``inplace=True`` keeps nn.Dropout's own in-place kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
