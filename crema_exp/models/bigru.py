"""A bidirectional nn.GRU over a right-padded batch, exact without PackedSequence on CPU.

torch's CPU GRU over a packed batch zero-fills a gradient as large as the whole packed input at
every time step of its backward pass, so a step costs O(T^2). Padding after each clip's last frame
cannot reach that clip's earlier outputs in the forward direction, so that direction runs on the
padded batch as it is. The backward direction runs on each clip reversed within its own length
(padding again after the valid frames) and its outputs are reversed back. Padded outputs are set
to zero, so the result (and every gradient) equals the packed GRU's. On CUDA, cuDNN takes packed
batches natively and stays on the packed path.

Each layer runs as models/compiled_gru_layer.py (compiled time loops that read the reversed order
themselves) for float32 where those loops could be built, else as models/gru_layer.py (Python time
loops over explicitly reversed copies).

The parameters are those of the given nn.GRU (same state-dict names either way).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from crema_exp.models.compiled_gru_layer import CompiledBiGRULayer
from crema_exp.models.dropout import dropout
from crema_exp.models.cpu_kernels import compiled_kernels
from crema_exp.models.gru_layer import TwoDirectionGRULayer


def reverse_within_lengths(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T, D] -> each clip's first ``length`` frames in reverse order, padding left in place.

    Applying it twice gives the input back.
    """
    steps = torch.arange(frames.size(1), device=frames.device)
    lengths = lengths.to(frames.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return frames.gather(1, index[..., None].expand_as(frames))


def _stacked_parameters(gru: nn.GRU, layer: int) -> list[torch.Tensor]:
    """weight_ih, weight_hh, bias_ih, bias_hh of ``layer``, each stacked over the two directions."""
    stacked = []
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        names = (f"{kind}_l{layer}", f"{kind}_l{layer}_reverse")
        if kind.startswith("bias") and not gru.bias:
            rows = getattr(gru, f"weight_hh_l{layer}").size(0)
            stacked.append(torch.zeros(2, rows, dtype=gru.weight_hh_l0.dtype))
        else:
            stacked.append(torch.stack([getattr(gru, name) for name in names]))
    return stacked


def padded_bigru(gru: nn.GRU, frames: torch.Tensor, lengths: torch.Tensor,
                 passes: int = 1) -> torch.Tensor:
    """Right-padded [B, T, input] + lengths -> [passes * B, T, 2*hidden], zeros on padding.

    Equal to ``gru`` (bidirectional, batch_first) over ``pack_padded_sequence`` of the batch
    stacked ``passes`` times on itself, padded back to T. In training, dropout between layers is
    applied where nn.GRU applies it, at the same rate, with models/dropout.py's cheaper masks.
    The first layer has no dropout before it, so on CPU it runs once and its output is stacked:
    every pass after that draws its own masks, as R-Drop needs, for less than ``passes`` times the
    cost.
    """
    if not (gru.bidirectional and gru.batch_first) or gru.proj_size:
        raise ValueError("padded_bigru needs a bidirectional, batch_first nn.GRU")
    if frames.is_cuda:  # cuDNN runs all layers in one call: stack the input instead
        frames, lengths = frames.repeat(passes, 1, 1), lengths.repeat(passes)
        packed = pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
        encoded, _ = pad_packed_sequence(gru(packed)[0], batch_first=True,
                                         total_length=frames.size(1))
        return encoded
    compiled = frames.dtype == torch.float32 and compiled_kernels() is not None
    run_layer = _compiled_layer if compiled else _python_layer
    lengths = lengths.cpu()
    layer_input = frames
    for layer in range(gru.num_layers):
        if layer > 0 and gru.dropout > 0:
            layer_input = dropout(layer_input, gru.dropout, gru.training)
        layer_input = run_layer(layer_input, lengths, _stacked_parameters(gru, layer))
        if layer == 0 and passes > 1:
            layer_input, lengths = layer_input.repeat(passes, 1, 1), lengths.repeat(passes)
    return layer_input


def _compiled_layer(frames: torch.Tensor, lengths: torch.Tensor,
                    parameters: list[torch.Tensor]) -> torch.Tensor:
    return CompiledBiGRULayer.apply(frames.contiguous(), lengths, *parameters)


def _python_layer(frames: torch.Tensor, lengths: torch.Tensor,
                  parameters: list[torch.Tensor]) -> torch.Tensor:
    # Time-major [2, T, B, D], the layout the time loop reads step by step.
    both = torch.stack([frames.transpose(0, 1),
                        reverse_within_lengths(frames, lengths).transpose(0, 1)])
    forward, backward = TwoDirectionGRULayer.apply(both, *parameters)
    backward = reverse_within_lengths(backward.transpose(0, 1), lengths)
    padded = torch.arange(frames.size(1))[None, :] >= lengths[:, None]
    return torch.cat([forward.transpose(0, 1), backward], dim=-1).masked_fill(
        padded[..., None], 0.0)
