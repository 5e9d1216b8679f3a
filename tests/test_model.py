"""The classifier's padding contract: a clip's output never depends on its batch-mates."""

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from crema_exp.config import ModelConfig
from crema_exp.models import EmotionClassifier
from crema_exp.models.encoder import InputProjection, SequenceEncoder

CFG = ModelConfig(hidden_size=16, attention_heads=2, attention_hidden=16, transformer_layers=1,
                  transformer_heads=2, transformer_ffn=32, dropout=0.3)


def batch_of(clips):
    return pad_sequence(clips, batch_first=True), torch.tensor([len(c) for c in clips])


def test_pooled_output_does_not_change_when_batched_with_longer_clips():
    torch.manual_seed(0)
    model = EmotionClassifier(12, CFG).eval()
    short = torch.randn(7, 12)
    alone = model.embed(*batch_of([short]))
    # Large values in the longer clips would leak into the short clip's output through any
    # unmasked path (GRU, Transformer attention, pooling).
    longer = [torch.randn(30, 12) * 50, short, torch.randn(19, 12) * 50]
    together = model.embed(*batch_of(longer))
    torch.testing.assert_close(together[1:2], alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model(*batch_of(longer))[1:2], model(*batch_of([short])),
                               rtol=1e-4, atol=1e-5)


def test_packed_gru_ignores_padding_values():
    torch.manual_seed(0)
    encoder = SequenceEncoder(5, ModelConfig(hidden_size=8, transformer_layers=0)).eval()
    frames, lengths = batch_of([torch.randn(9, 5), torch.randn(4, 5)])
    polluted = frames.clone()
    polluted[1, 4:] = 1e3  # garbage where clip 2 is padded
    out, out_polluted = encoder(frames, lengths), encoder(polluted, lengths)
    torch.testing.assert_close(out, out_polluted)
    assert torch.all(out[1, 4:] == 0), "padded positions must stay zero"
    # The backward direction starts at each clip's true last frame, not at the padding.
    alone = encoder(*batch_of([frames[1, :4]]))
    torch.testing.assert_close(out[1:2, :4], alone, rtol=1e-4, atol=1e-5)


def test_transformer_can_be_disabled_and_no_conv2d_anywhere():
    with_tf = EmotionClassifier(12, CFG)
    without = EmotionClassifier(12, ModelConfig(hidden_size=16, transformer_layers=0))
    assert with_tf.encoder.transformer is not None and without.encoder.transformer is None
    for model in (with_tf, without):
        assert not any(isinstance(m, nn.Conv2d) for m in model.modules())
    logits = with_tf(*batch_of([torch.randn(5, 12), torch.randn(3, 12)]))
    assert logits.shape == (2, 6)


def test_stacked_passes_equal_the_stacked_batch_each_with_its_own_dropout_masks():
    """R-Drop's ``passes=2`` shares the layers before the first dropout; nothing else changes."""
    for mixed_layers in (0, 3):
        torch.manual_seed(0)
        model = EmotionClassifier(12, CFG, mixed_layers=mixed_layers).train()
        shape = (3, 12) if mixed_layers else (12,)
        frames, lengths = batch_of([torch.randn(9, *shape), torch.randn(5, *shape),
                                    torch.randn(7, *shape)])
        results = []
        for stacked_input in (False, True):
            torch.manual_seed(1)  # the same dropout masks for both ways
            model.zero_grad()
            if stacked_input:
                logits = model(torch.cat([frames, frames]), torch.cat([lengths, lengths]))
            else:
                logits = model(frames, lengths, passes=2)
            (logits * torch.arange(6.0)).sum().backward()
            results.append((logits, {n: p.grad.clone() for n, p in model.named_parameters()}))
        (shared, shared_grads), (stacked, stacked_grads) = results
        torch.testing.assert_close(shared, stacked, rtol=1e-5, atol=1e-6)
        for name, grad in stacked_grads.items():
            torch.testing.assert_close(shared_grads[name], grad, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f"{name}: {m}")
        assert not torch.allclose(shared[:3], shared[3:]), "the two passes must drop differently"


def test_input_projection_equals_layer_norm_then_linear():
    torch.manual_seed(0)
    folded = InputProjection(10, 4)
    with torch.no_grad():  # a trained LayerNorm: scale and shift away from 1 and 0
        folded[0].weight.uniform_(0.5, 1.5)
        folded[0].bias.normal_()
    plain = nn.Sequential(nn.LayerNorm(10), nn.Linear(10, 4))
    plain.load_state_dict(folded.state_dict())  # same names: checkpoints load either way
    frames = torch.randn(3, 7, 10) * 5 + 2
    for frames_need_grad in (False, True):
        results = []
        for model in (folded, plain):
            model.zero_grad()
            inputs = frames.clone().requires_grad_(frames_need_grad)
            outputs = model(inputs)
            (outputs * torch.arange(4.0)).sum().backward()
            results.append([outputs, inputs.grad] + [p.grad for p in model.parameters()])
        for ours, reference in zip(*results):
            torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
