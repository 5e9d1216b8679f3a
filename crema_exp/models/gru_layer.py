"""Both directions of one GRU layer in one time loop, with a hand-written backward pass.

Why: torch's CPU GRU runs each direction separately and records about a dozen autograd nodes per
time step, so a short clip's cost is mostly per-step overhead on tiny [batch, hidden] matrices.
Here one loop advances both directions together (a batched matmul over the two weight sets), the
forward pass records nothing, and the backward pass keeps only what is truly sequential (the
hidden-state gradient) inside its loop: every gate derivative that does not depend on it, and
all weight, bias and input gradients, are computed for all steps at once as large matmuls.

The arithmetic is nn.GRU's (gate order r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
h' = (1 - z) * n + z * h), so results equal torch.gru up to float rounding
(tests/test_bigru.py compares outputs and every gradient with the packed nn.GRU).
"""

from __future__ import annotations

import torch


class TwoDirectionGRULayer(torch.autograd.Function):
    """Inputs [2, B, T, D] (direction 0 and direction 1, each a right-padded batch starting at
    h = 0) and stacked parameters of the two directions (weight_ih [2, 3H, D], weight_hh
    [2, 3H, H], bias_ih and bias_hh [2, 3H]) -> hidden states [2, B, T, H]."""

    @staticmethod
    def forward(ctx, inputs, weight_ih, weight_hh, bias_ih, bias_hh):
        _, batch, steps, input_size = inputs.shape
        hidden_size = weight_hh.size(-1)
        h2 = 2 * hidden_size
        flat_inputs = inputs.reshape(2, batch * steps, input_size)
        input_gates = torch.baddbmm(bias_ih[:, None, :], flat_inputs, weight_ih.transpose(1, 2))
        # Time-major and contiguous, so that each step reads one block.
        input_gates = input_gates.view(2, batch, steps, -1).permute(2, 0, 1, 3).contiguous()

        # Time-major buffers, each step's slice contiguous: what the backward pass needs.
        outputs = inputs.new_empty(steps, 2, batch, hidden_size)
        reset_update = inputs.new_empty(steps, 2, batch, h2)
        candidates = inputs.new_empty(steps, 2, batch, hidden_size)
        hidden_gates = inputs.new_empty(steps, 2, batch, 3 * hidden_size)
        hidden = inputs.new_zeros(2, batch, hidden_size)
        weight_hh_t, bias_hh = weight_hh.transpose(1, 2), bias_hh[:, None, :]
        for t in range(steps):
            gh, rz, n = hidden_gates[t], reset_update[t], candidates[t]
            torch.baddbmm(bias_hh, hidden, weight_hh_t, out=gh)
            torch.add(input_gates[t, ..., :h2], gh[..., :h2], out=rz).sigmoid_()
            torch.mul(rz[..., :hidden_size], gh[..., h2:], out=n)
            n.add_(input_gates[t, ..., h2:]).tanh_()
            hidden = torch.lerp(n, hidden, rz[..., hidden_size:], out=outputs[t])

        ctx.save_for_backward(inputs, weight_ih, weight_hh, outputs, reset_update, candidates,
                              hidden_gates)
        return outputs.permute(1, 2, 0, 3).contiguous()

    @staticmethod
    def backward(ctx, grad_outputs):
        inputs, weight_ih, weight_hh, outputs, reset_update, candidates, hidden_gates = (
            ctx.saved_tensors)
        steps, _, batch, hidden_size = outputs.shape
        h2 = 2 * hidden_size
        reset, update = reset_update[..., :hidden_size], reset_update[..., hidden_size:]
        previous = torch.cat([outputs.new_zeros(1, 2, batch, hidden_size), outputs[:-1]])

        # d(pre-activation)/d(h') of each gate, for all steps at once.
        keep = 1.0 - update
        per_candidate = keep * (1.0 - candidates * candidates)
        per_update = (previous - candidates) * update * keep
        per_reset = hidden_gates[..., h2:] * reset * (1.0 - reset)  # times d(candidate pre-act.)

        grad_outputs = grad_outputs.permute(2, 0, 1, 3)  # [T, 2, B, H]
        grad_hidden_gates = outputs.new_empty(steps, 2, batch, 3 * hidden_size)
        grad_candidate = outputs.new_empty(steps, 2, batch, hidden_size)
        grad_hidden = outputs.new_zeros(2, batch, hidden_size)
        for t in range(steps - 1, -1, -1):
            grad_hidden = grad_hidden + grad_outputs[t]
            dn, dgh = grad_candidate[t], grad_hidden_gates[t]
            torch.mul(grad_hidden, per_candidate[t], out=dn)
            torch.mul(dn, per_reset[t], out=dgh[..., :hidden_size])
            torch.mul(grad_hidden, per_update[t], out=dgh[..., hidden_size:h2])
            torch.mul(dn, reset[t], out=dgh[..., h2:])
            grad_hidden = torch.baddbmm(grad_hidden * update[t], dgh, weight_hh)

        # Everything else in large matmuls over all steps, direction-major.
        grad_input_gates = torch.cat([grad_hidden_gates[..., :h2], grad_candidate], dim=-1)
        flat_grad_ig = grad_input_gates.permute(1, 2, 0, 3).reshape(2, batch * steps, -1)
        flat_grad_hg = grad_hidden_gates.transpose(0, 1).reshape(2, steps * batch, -1)
        flat_previous = previous.transpose(0, 1).reshape(2, steps * batch, hidden_size)
        flat_inputs = inputs.reshape(2, batch * steps, -1)
        needs = ctx.needs_input_grad
        grad_inputs = (torch.bmm(flat_grad_ig, weight_ih).view_as(inputs) if needs[0] else None)
        return (
            grad_inputs,
            torch.bmm(flat_grad_ig.transpose(1, 2), flat_inputs) if needs[1] else None,
            torch.bmm(flat_grad_hg.transpose(1, 2), flat_previous) if needs[2] else None,
            flat_grad_ig.sum(dim=1) if needs[3] else None,
            flat_grad_hg.sum(dim=1) if needs[4] else None,
        )
