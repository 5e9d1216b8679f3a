"""Both directions of one GRU layer in one time loop, with a hand-written backward pass.

This is the Python version of models/compiled_gru_layer.py: models/bigru.py uses it where the
compiled loops cannot be built (models/cpu_kernels.py) and for dtypes other than float32.

Why: torch's CPU GRU runs each direction separately and records about a dozen autograd nodes per
time step, so a short clip's cost is mostly per-step overhead on tiny [batch, hidden] matrices.
Here one loop advances both directions together (a batched matmul over the two weight sets), the
forward pass records nothing, and the backward pass keeps only what is truly sequential (the
hidden-state gradient) inside its loop: every gate derivative that does not depend on it is
computed a few steps at a time in bulk, and all weight, bias and input gradients for all steps at
once as large matmuls.

Every buffer is [direction, time, batch, features]: each step reads [2, batch, features] slices,
and the whole-sequence matmuls see each direction as one [time * batch, features] matrix without
a copy. Hidden states live in one buffer of T + 1 steps (step 0 is the initial zero state), so
"the previous hidden state" of every step is a view, not a copy.

The arithmetic is nn.GRU's (gate order r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
h' = (1 - z) * n + z * h), so results equal torch.gru up to float rounding
(tests/test_bigru.py compares outputs and every gradient with the packed nn.GRU).
"""

from __future__ import annotations

import torch


# Steps whose gate derivatives are computed together in the backward pass: few enough that they
# are still in cache when the step loop reads them (whole-sequence buffers were memory-bound at
# 64 clips x 250 steps), many enough to keep the per-chunk overhead small.
_CHUNK_STEPS = 8


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[2, T, B, F] (each direction's [T, B, F] block contiguous) -> [2, T * B, F], a view."""
    return x.reshape(2, -1, x.size(-1))


def input_gate_bias(bias_ih: torch.Tensor, bias_hh: torch.Tensor) -> torch.Tensor:
    """The bias of the input gates [2, 3H]: b_hh of the reset and update gates simply adds to
    their input gates, so it is added once here; the candidate's b_hn stays inside
    r * (W_hn h + b_hn)."""
    h2 = 2 * bias_hh.size(-1) // 3
    gate_bias = bias_ih.clone()
    gate_bias[:, :h2] += bias_hh[:, :h2]
    return gate_bias


class TwoDirectionGRULayer(torch.autograd.Function):
    """Inputs [2, T, B, D] (direction 0 and direction 1, each time-major and right-padded, starting
    at h = 0) and stacked parameters of the two directions (weight_ih [2, 3H, D], weight_hh
    [2, 3H, H], bias_ih and bias_hh [2, 3H]) -> hidden states [2, T, B, H]."""

    @staticmethod
    def forward(ctx, inputs, weight_ih, weight_hh, bias_ih, bias_hh):
        _, steps, batch, _ = inputs.shape
        hidden_size = weight_hh.size(-1)
        h2 = 2 * hidden_size
        input_gates = torch.baddbmm(input_gate_bias(bias_ih, bias_hh)[:, None, :], _flat(inputs),
                                    weight_ih.transpose(1, 2)).view(2, steps, batch, -1)

        hidden_states = inputs.new_empty(2, steps + 1, batch, hidden_size)
        hidden_states[:, 0] = 0.0
        reset_update = inputs.new_empty(2, steps, batch, h2)
        candidates = inputs.new_empty(2, steps, batch, hidden_size)
        hidden_candidate = inputs.new_empty(2, steps, batch, hidden_size)  # W_hn h + b_hn
        recurrent = inputs.new_empty(2, batch, 3 * hidden_size)
        # Row-major W_hh^T: measured ~15 % faster per step than the transposed view.
        weight_hh_t, bias_hn = weight_hh.transpose(1, 2).contiguous(), bias_hh[:, None, h2:]
        for t in range(steps):
            hidden, rz = hidden_states[:, t], reset_update[:, t]
            torch.bmm(hidden, weight_hh_t, out=recurrent)
            torch.add(input_gates[:, t, :, :h2], recurrent[..., :h2], out=rz).sigmoid_()
            gh_n = torch.add(recurrent[..., h2:], bias_hn, out=hidden_candidate[:, t])
            n = torch.addcmul(input_gates[:, t, :, h2:], rz[..., :hidden_size], gh_n,
                              out=candidates[:, t]).tanh_()
            torch.lerp(n, hidden, rz[..., hidden_size:], out=hidden_states[:, t + 1])

        ctx.save_for_backward(inputs, weight_ih, weight_hh, hidden_states, reset_update,
                              candidates, hidden_candidate)
        return hidden_states[:, 1:]

    @staticmethod
    def backward(ctx, grad_outputs):
        (inputs, weight_ih, weight_hh, hidden_states, reset_update, candidates,
         hidden_candidate) = ctx.saved_tensors
        _, steps, batch, hidden_size = candidates.shape
        h2 = 2 * hidden_size
        reset, update = reset_update[..., :hidden_size], reset_update[..., hidden_size:]
        previous = hidden_states[:, :-1]

        # Gradients of the hidden gates (r, z and W_hn h + b_hn) and of the candidate's
        # pre-activation (its input-gate gradient), going back in chunks of steps.
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
