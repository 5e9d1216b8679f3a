"""FastDropout drops at nn.Dropout's rate and keeps the expectation, with the compiled kernel and
with the Python code (the same masks, bit for bit); the encoder layer that uses it computes what
nn.TransformerEncoderLayer computes."""

import pytest
import torch
from torch import nn

from _helpers_kernels import use_implementation
from crema_exp.models import dropout as dropout_module
from crema_exp.models.cpu_kernels import compiled_kernels
from crema_exp.models.dropout import FastDropout, dropout
from crema_exp.models.transformer_layer import EncoderLayer


@pytest.fixture(params=["compiled", "python"])
def implementation(request, monkeypatch):
    """Runs the test with the compiled kernel (dropout_mask.cpp) and with the Python code."""
    return use_implementation(request.param, dropout_module, monkeypatch)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drops_at_the_rate_and_scales_the_kept_elements(p, implementation):
    torch.manual_seed(0)
    x = torch.rand(400, 2500) + 0.5  # no zeros of its own
    out = dropout(x, p, training=True)
    kept = out != 0
    # 1M Bernoulli(p) draws: the dropped share is within 5 standard deviations (4.6e-4 for 0.3).
    assert abs((~kept).float().mean().item() - p) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    scale = 65536 / (65536 - round(p * 65536))
    torch.testing.assert_close(out[kept], x[kept] * scale)
    # Kept positions are spread evenly over the tensor (all four 16-bit lanes of each draw).
    for lane in range(4):
        share = kept.flatten()[lane::4].float().mean().item()
        assert abs(share - (1 - p)) < 0.005


def test_gradient_passes_through_kept_elements_only(implementation):
    torch.manual_seed(1)
    x = torch.rand(50, 40, requires_grad=True)
    out = dropout(x, 0.3, training=True)
    out.sum().backward()
    kept = out.detach() != 0
    scale = 65536 / (65536 - round(0.3 * 65536))
    torch.testing.assert_close(x.grad, kept.float() * scale)


def test_identity_in_evaluation_and_reproducible_with_a_seed(implementation):
    x = torch.randn(8, 9)
    module = FastDropout(0.3).eval()
    assert module(x) is x and dropout(x, 0.0, training=True) is x
    module.train()
    torch.manual_seed(3)
    first = module(x)
    torch.manual_seed(3)
    torch.testing.assert_close(module(x), first)
    assert not torch.equal(module(x), first)  # a new draw without reseeding


@pytest.mark.parametrize("shape", [(1,), (3,), (5, 7), (4, 33, 17)])
def test_compiled_kernel_draws_the_python_codes_masks_bit_for_bit(shape, monkeypatch):
    if compiled_kernels() is None:
        pytest.skip("the compiled kernels are not built here")
    x = torch.randn(*shape, 2).transpose(-1, 0)  # not contiguous: the kernel gets a copy
    results = []
    for kernels in (compiled_kernels, lambda: None):
        monkeypatch.setattr(dropout_module, "compiled_kernels", kernels)
        torch.manual_seed(4)
        inputs = x.clone().requires_grad_()
        out = dropout(inputs, 0.3, training=True)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        results.append((out, inputs.grad, torch.randint(1 << 30, (1,))))  # and the generator
    (out, grad, after), (expected, expected_grad, expected_after) = results  # moved alike
    assert torch.equal(out, expected) and torch.equal(grad, expected_grad)
    assert torch.equal(after, expected_after)


def test_encoder_layer_keeps_the_state_dict_and_equals_torch_layer_without_dropout():
    torch.manual_seed(0)
    settings = dict(d_model=16, nhead=4, dim_feedforward=24, dropout=0.0, batch_first=True,
                    norm_first=True)
    ours, reference = EncoderLayer(**settings), nn.TransformerEncoderLayer(**settings)
    reference.load_state_dict(ours.state_dict())  # same names and shapes both ways
    ours.train(), reference.train()  # training: ours takes its own attention path on CPU
    x = torch.randn(3, 11, 16, requires_grad=True)
    padded = torch.arange(11)[None, :] >= torch.tensor([11, 6, 1])[:, None]
    outputs = []
    for layer in (ours, reference):
        out = layer(x, src_key_padding_mask=padded)
        (out[~padded] ** 2).sum().backward()
        outputs.append((out, x.grad.clone(), {n: p.grad.clone() for n, p in
                                              layer.named_parameters()}))
        x.grad = None
    (out, x_grad, grads), (expected, expected_x_grad, expected_grads) = outputs
    torch.testing.assert_close(out[~padded], expected[~padded], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x_grad, expected_x_grad, rtol=1e-5, atol=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-5, atol=1e-6, msg=name)
    # Padded frames are never attended to, so valid outputs do not depend on them.
    assert torch.all(x_grad[padded] == 0)


def test_encoder_layer_drops_attention_weights_in_training_only():
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 24, dropout=0.5, batch_first=True, norm_first=True)
    assert all(isinstance(layer.get_submodule(n), FastDropout)
               for n in ("dropout", "dropout1", "dropout2"))
    x = torch.randn(2, 7, 16)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    layer.train()
    # Only the attention weights drop out: the other dropouts are switched off for this check.
    for name in ("dropout", "dropout1", "dropout2"):
        layer.get_submodule(name).p = 0.0
    assert not torch.allclose(layer(x), layer(x))
    layer.self_attn.dropout = 0.0
    torch.testing.assert_close(layer(x), layer(x))
