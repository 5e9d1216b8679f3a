"""Both directions of one GRU layer in one time loop, with a hand-written backward pass.

Why: torch's CPU GRU runs each direction separately and records about a dozen autograd nodes per
time step, so a short clip's cost is mostly per-step overhead on tiny [batch, hidden] matrices.
Here the forward pass records nothing, and the backward pass keeps only what is truly sequential
(the hidden-state gradient) inside its loop: all weight, bias and input gradients for all steps
are computed at once as large matmuls.

The two time loops exist twice, computing the same: compiled (gru_loop.cpp, built on first use
by models/gru_kernel.py: each direction on its own thread, each step's gates in one vectorised
pass) and in Python below (one loop advances both directions with a batched matmul), used where
the compiled ones cannot be built and for other dtypes than float32.

Every buffer is [direction, time, batch, features]: each step reads [2, batch, features] slices,
and the whole-sequence matmuls see each direction as one [time * batch, features] matrix without
a copy. Hidden states live in one buffer of T + 1 steps (step 0 is the initial zero state), so
"the previous hidden state" of every step is a view, not a copy.

The arithmetic is nn.GRU's (gate order r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
h' = (1 - z) * n + z * h), so results equal torch.gru up to float rounding
(tests/test_bigru.py compares outputs and every gradient with the packed nn.GRU).
"""

from __future__ import annotations

from typing import Callable

import torch

from crema_exp.models.gru_kernel import compiled_loops


# Steps whose gate derivatives are computed together in the backward pass: few enough that they
# are still in cache when the step loop reads them (whole-sequence buffers were memory-bound at
# 64 clips x 250 steps), many enough to keep the per-chunk overhead small.
_CHUNK_STEPS = 8


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[2, T, B, F] (each direction's [T, B, F] block contiguous) -> [2, T * B, F], a view."""
    return x.reshape(2, -1, x.size(-1))


def python_forward_loop(input_gates: torch.Tensor, weight_hh_t: torch.Tensor,
                        bias_hn: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The forward time loop, both directions at once (a batched matmul over the two weight sets).

    input_gates [2, T, B, 3H] (W_i x + b_i, with b_hh of r and z added), weight_hh_t [2, H, 3H],
    bias_hn [2, H] -> hidden_states [2, T + 1, B, H] (step 0 = zeros), reset_update
    [2, T, B, 2H], candidates [2, T, B, H], hidden_candidate [2, T, B, H] (W_hn h + b_hn).
    """
    _, steps, batch, h3 = input_gates.shape
    hidden_size, h2 = h3 // 3, 2 * (h3 // 3)
    hidden_states = input_gates.new_empty(2, steps + 1, batch, hidden_size)
    hidden_states[:, 0] = 0.0
    reset_update = input_gates.new_empty(2, steps, batch, h2)
    candidates = input_gates.new_empty(2, steps, batch, hidden_size)
    hidden_candidate = input_gates.new_empty(2, steps, batch, hidden_size)
    recurrent = input_gates.new_empty(2, batch, h3)
    bias_hn = bias_hn[:, None, :]
    for t in range(steps):
        hidden, rz = hidden_states[:, t], reset_update[:, t]
        torch.bmm(hidden, weight_hh_t, out=recurrent)
        torch.add(input_gates[:, t, :, :h2], recurrent[..., :h2], out=rz).sigmoid_()
        gh_n = torch.add(recurrent[..., h2:], bias_hn, out=hidden_candidate[:, t])
        n = torch.addcmul(input_gates[:, t, :, h2:], rz[..., :hidden_size], gh_n,
                          out=candidates[:, t]).tanh_()
        torch.lerp(n, hidden, rz[..., hidden_size:], out=hidden_states[:, t + 1])
    return hidden_states, reset_update, candidates, hidden_candidate


def python_backward_loop(grad_outputs: torch.Tensor, weight_hh: torch.Tensor,
                         hidden_states: torch.Tensor, reset_update: torch.Tensor,
                         candidates: torch.Tensor,
                         hidden_candidate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward time loop: grad_outputs [2, T, B, H], weight_hh [2, 3H, H] and the forward
    loop's buffers -> the gradients of the hidden gates [2, T, B, 3H] (r and z pre-activations,
    W_hn h + b_hn) and of the candidate's pre-activation [2, T, B, H].

    Only the hidden-state gradient is truly sequential: the gate derivatives that do not depend
    on it are computed a chunk of steps at a time.
    """
    _, steps, batch, hidden_size = candidates.shape
    h2 = 2 * hidden_size
    reset, update = reset_update[..., :hidden_size], reset_update[..., hidden_size:]
    previous = hidden_states[:, :-1]
    grad_hidden_gates = candidates.new_empty(2, steps, batch, 3 * hidden_size)
    grad_candidate = torch.empty_like(candidates)
    grad_hidden = candidates.new_zeros(2, batch, hidden_size)
    for start in reversed(range(0, steps, _CHUNK_STEPS)):
        chunk = slice(start, start + _CHUNK_STEPS)
        # d(pre-activation)/d(h') of each gate, for the chunk's steps at once.
        r, z, n = reset[:, chunk], update[:, chunk], candidates[:, chunk]
        keep = 1.0 - z
        per_candidate = keep * (1.0 - n * n)
        per_update = (previous[:, chunk] - n) * z * keep
        per_reset = hidden_candidate[:, chunk] * r * (1.0 - r)  # times d(candidate)
        for t in range(n.size(1) - 1, -1, -1):
            grad_hidden = grad_hidden + grad_outputs[:, start + t]
            dn, dgh = grad_candidate[:, start + t], grad_hidden_gates[:, start + t]
            torch.mul(grad_hidden, per_candidate[:, t], out=dn)
            torch.mul(dn, per_reset[:, t], out=dgh[..., :hidden_size])
            torch.mul(grad_hidden, per_update[:, t], out=dgh[..., hidden_size:h2])
            torch.mul(dn, r[:, t], out=dgh[..., h2:])
            grad_hidden = torch.baddbmm(grad_hidden * z[:, t], dgh, weight_hh)
    return grad_hidden_gates, grad_candidate


def time_loops(inputs: torch.Tensor) -> tuple[Callable, Callable]:
    """(forward loop, backward loop) for these inputs: compiled for float32 on CPU where they
    could be built (models/gru_kernel.py), else the Python ones above."""
    compiled = compiled_loops() if inputs.dtype == torch.float32 and not inputs.is_cuda else None
    if compiled is None:
        return python_forward_loop, python_backward_loop
    return compiled.forward_loop, compiled.backward_loop


class TwoDirectionGRULayer(torch.autograd.Function):
    """Inputs [2, T, B, D] (direction 0 and direction 1, each time-major and right-padded, starting
    at h = 0) and stacked parameters of the two directions (weight_ih [2, 3H, D], weight_hh
    [2, 3H, H], bias_ih and bias_hh [2, 3H]) -> hidden states [2, T, B, H]."""

    @staticmethod
    def forward(ctx, inputs, weight_ih, weight_hh, bias_ih, bias_hh):
        _, steps, batch, _ = inputs.shape
        h2 = 2 * weight_hh.size(-1)
        # b_hh of the reset and update gates simply adds to their input gates, so it is added
        # once here; the candidate's b_hn stays inside r * (W_hn h + b_hn).
        gate_bias = bias_ih.clone()
        gate_bias[:, :h2] += bias_hh[:, :h2]
        input_gates = torch.baddbmm(gate_bias[:, None, :], _flat(inputs),
                                    weight_ih.transpose(1, 2)).view(2, steps, batch, -1)
        forward_loop, ctx.backward_loop = time_loops(inputs)
        # Row-major W_hh^T: measured ~15 % faster per step than the transposed view.
        hidden_states, reset_update, candidates, hidden_candidate = forward_loop(
            input_gates, weight_hh.transpose(1, 2).contiguous(), bias_hh[:, h2:].contiguous())
        ctx.save_for_backward(inputs, weight_ih, weight_hh, hidden_states, reset_update,
                              candidates, hidden_candidate)
        return hidden_states[:, 1:]

    @staticmethod
    def backward(ctx, grad_outputs):
        (inputs, weight_ih, weight_hh, hidden_states, reset_update, candidates,
         hidden_candidate) = ctx.saved_tensors
        h2 = 2 * candidates.size(-1)
        previous = hidden_states[:, :-1]
        grad_hidden_gates, grad_candidate = ctx.backward_loop(
            grad_outputs.contiguous(), weight_hh.contiguous(), hidden_states, reset_update,
            candidates, hidden_candidate)

        # Everything else in large matmuls over all steps. The input gates' gradient is the
        # hidden gates' one for r and z, and the candidate's for n.
        flat_hidden_gates, flat_candidate = _flat(grad_hidden_gates), _flat(grad_candidate)
        flat_reset_update = flat_hidden_gates[..., :h2]
        flat_inputs = _flat(inputs)
        needs = ctx.needs_input_grad
        grad_inputs = grad_weight_ih = grad_weight_hh = grad_bias_ih = grad_bias_hh = None
        if needs[0]:
            grad_inputs = torch.baddbmm(torch.bmm(flat_candidate, weight_ih[:, h2:]),
                                        flat_reset_update, weight_ih[:, :h2]).view_as(inputs)
        if needs[1]:
            grad_weight_ih = torch.cat([flat_reset_update.transpose(1, 2) @ flat_inputs,
                                        flat_candidate.transpose(1, 2) @ flat_inputs], dim=1)
        if needs[2]:
            grad_weight_hh = flat_hidden_gates.transpose(1, 2) @ _flat(previous)
        if needs[3]:
            grad_bias_ih = torch.cat([flat_reset_update.sum(dim=1), flat_candidate.sum(dim=1)],
                                     dim=1)
        if needs[4]:
            grad_bias_hh = flat_hidden_gates.sum(dim=1)
        return grad_inputs, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh
