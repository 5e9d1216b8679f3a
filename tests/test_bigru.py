"""The padded BiGRU equals nn.GRU over a packed batch: outputs and every parameter gradient, with
the compiled time loops and with the Python ones."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from _helpers_kernels import use_implementation
from crema_exp.models import bigru
from crema_exp.models.bigru import padded_bigru, reverse_within_lengths

# float32, sequences of up to 40 steps: the two computations differ only by rounding (measured
# max |difference| on outputs 1.8e-7 compiled, 2.4e-7 Python loops; on gradients 9.5e-6 and 5.7e-6,
# at most 0.23 of this tolerance; 1-3 layers).
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def packed_reference(gru: nn.GRU, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=frames.size(1))[0]


@pytest.fixture(params=["compiled", "python"])
def time_loops(request, monkeypatch):
    """Runs the test with each implementation of a layer: compiled_gru_layer.py, gru_layer.py."""
    return use_implementation(request.param, bigru, monkeypatch)


def test_reverse_within_lengths_reverses_valid_frames_and_leaves_padding():
    frames = torch.arange(10.0).reshape(2, 5, 1)
    lengths = torch.tensor([5, 3])
    reversed_ = reverse_within_lengths(frames, lengths)
    assert reversed_[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    torch.testing.assert_close(reverse_within_lengths(reversed_, lengths), frames)


# Hidden 21: not a multiple of any vector width, so the compiled loops' partial vectors run too.
@pytest.mark.parametrize(("num_layers", "bias", "hidden"),
                         [(1, True, 8), (2, True, 8), (3, True, 8), (2, False, 8), (2, True, 21)])
def test_outputs_and_gradients_equal_the_packed_gru(num_layers, bias, hidden, time_loops):
    torch.manual_seed(num_layers)
    gru = nn.GRU(6, hidden, num_layers=num_layers, batch_first=True, bidirectional=True,
                 bias=bias)
    gru.train()  # dropout 0: training mode must not change anything either
    lengths = torch.tensor([40, 1, 23, 40, 7, 31])
    frames = torch.randn(len(lengths), 43, 6)  # 3 steps longer than the longest clip
    frames[torch.arange(43)[None, :] >= lengths[:, None]] = 1e3  # garbage in the padding
    target = torch.randn(len(lengths), 43, 2 * hidden)  # weights every output and padding

    results = []
    for run in (packed_reference, padded_bigru):
        gru.zero_grad()
        inputs = frames.clone().requires_grad_()
        outputs = run(gru, inputs, lengths)
        if run is padded_bigru:  # the implementation under test did run
            compiled = type(outputs.grad_fn).__name__ == "CompiledBiGRULayerBackward"
            assert compiled == (time_loops == "compiled")
        (outputs * target).sum().backward()
        grads = {name: p.grad for name, p in gru.named_parameters()}
        results.append((outputs.detach(), inputs.grad, grads))

    (expected, expected_input_grad, expected_grads), (actual, input_grad, grads) = results
    torch.testing.assert_close(actual, expected, **TOLERANCE)
    assert torch.all(actual[torch.arange(43)[None, :] >= lengths[:, None]] == 0)
    torch.testing.assert_close(input_grad, expected_input_grad, **TOLERANCE)
    assert grads.keys() == expected_grads.keys() and len(grads) == (8 if bias else 4) * num_layers
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], **TOLERANCE, msg=name)


def test_inter_layer_dropout_is_applied_in_training_only(time_loops):
    torch.manual_seed(0)
    gru = nn.GRU(4, 5, num_layers=2, batch_first=True, bidirectional=True, dropout=0.5)
    frames, lengths = torch.randn(3, 9, 4), torch.tensor([9, 5, 2])
    gru.eval()
    torch.testing.assert_close(padded_bigru(gru, frames, lengths),
                               packed_reference(gru, frames, lengths), **TOLERANCE)
    gru.train()
    first, second = padded_bigru(gru, frames, lengths), padded_bigru(gru, frames, lengths)
    assert not torch.allclose(first, second)


def test_a_nan_input_gives_nan_outputs_as_in_the_packed_gru(time_loops):
    gru = nn.GRU(4, 8, batch_first=True, bidirectional=True)
    frames, lengths = torch.randn(2, 6, 4), torch.tensor([6, 4])
    frames[0, 2, 1] = float("nan")
    outputs = padded_bigru(gru, frames, lengths)
    expected = packed_reference(gru, frames, lengths)
    assert torch.equal(outputs.isnan(), expected.isnan())
    assert outputs[0, 2].isnan().all() and outputs[0].isnan().any(dim=-1).all()  # both ways on
    torch.testing.assert_close(outputs[1], expected[1], **TOLERANCE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path_equals_cpu_path():
    torch.manual_seed(0)
    gru = nn.GRU(6, 8, num_layers=2, batch_first=True, bidirectional=True).eval()
    frames, lengths = torch.randn(4, 20, 6), torch.tensor([20, 3, 11, 17])
    on_cpu = padded_bigru(gru, frames, lengths)
    on_gpu = padded_bigru(gru.cuda(), frames.cuda(), lengths)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-4)
