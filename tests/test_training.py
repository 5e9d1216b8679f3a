"""Training pieces: R-Drop, EMA, recommendations, SpecAugment/CMVN, batching, schedule, loop."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from _helpers_training import TOY_LAYOUT, tiny_train_config, write_toy_store
from crema_exp.config import OptimizerConfig, SpecAugmentConfig, SchedulerConfig
from crema_exp.training.augment import SpecAugment, per_utterance_cmvn
from crema_exp.training.batching import bucketed_batches
from crema_exp.training.data import load_training_data
from crema_exp.training.ema import WeightAverager, warmed_up_decay
from crema_exp.training.loop import Trainer
from crema_exp.training.metrics import normalised_confusion, summary_metrics
from crema_exp.training.optim import build_optimizer, lr_factor
from crema_exp.training.rdrop import classification_loss
from crema_exp.training.settings import disable_spec_augment_without_layout, resolve_settings


class DropoutNet(nn.Module):
    """Mean-pools frames then dropout + linear: two passes differ only through dropout."""

    def __init__(self):
        super().__init__()
        self.drop, self.linear = nn.Dropout(0.5), nn.Linear(4, 6)

    def forward(self, frames, lengths, passes=1):
        return self.linear(self.drop(frames.mean(dim=1).repeat(passes, 1)))


def test_rdrop_adds_the_kl_term_only_when_alpha_is_positive():
    torch.manual_seed(0)
    model, criterion = DropoutNet().train(), nn.CrossEntropyLoss()
    frames, lengths, labels = torch.randn(8, 5, 4), torch.full((8,), 5), torch.arange(8) % 6
    off = classification_loss(model, frames, lengths, labels, criterion, rdrop_alpha=0.0)
    assert off.kl is None and torch.equal(off.loss, off.cross_entropy)
    on = classification_loss(model, frames, lengths, labels, criterion, rdrop_alpha=0.7)
    assert on.kl.item() > 0, "two dropout passes must disagree"
    torch.testing.assert_close(on.loss, on.cross_entropy + 0.7 * on.kl)
    model.eval()  # no dropout: both passes agree, the KL term vanishes
    same = classification_loss(model, frames, lengths, labels, criterion, rdrop_alpha=0.7)
    assert same.kl.item() == pytest.approx(0.0, abs=1e-6)


def test_optimizer_takes_the_steps_of_plain_adamw():
    """build_optimizer's fused kernel changes the speed, not the update."""
    cfg = OptimizerConfig(lr=0.01, weight_decay=0.05, betas=[0.8, 0.95])
    torch.manual_seed(0)
    ours, plain = nn.Linear(6, 4), nn.Linear(6, 4)
    plain.load_state_dict(ours.state_dict())
    optimizers = [build_optimizer(ours, cfg),
                  torch.optim.AdamW(plain.parameters(), lr=0.01, weight_decay=0.05,
                                    betas=(0.8, 0.95), foreach=False)]
    for _ in range(20):
        inputs = torch.randn(8, 6)
        for model, optimizer in zip((ours, plain), optimizers):
            optimizer.zero_grad()
            model(inputs).pow(2).sum().backward()
            optimizer.step()
    for mine, reference in zip(ours.parameters(), plain.parameters()):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours.weight, nn.Linear(6, 4).weight), "the steps moved the weights"


def test_ema_tracks_hand_computed_average_and_zero_decay_evaluates_live_weights():
    torch.manual_seed(0)
    model, decay = nn.Linear(3, 2), 0.8
    averager = WeightAverager(model, decay)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    expected = None
    for step in range(30):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).pow(2).sum().backward()
        optimizer.step()
        averager.update()
        live = model.weight.detach().clone()
        step_decay = min(decay, (1 + step) / (10 + step))  # warm-up, then the configured decay
        expected = live if expected is None else step_decay * expected + (1 - step_decay) * live
    assert averager.evaluated is not model
    assert not torch.allclose(averager.evaluated.weight, model.weight)
    torch.testing.assert_close(averager.evaluated.weight, expected)
    assert WeightAverager(model, 0.0).evaluated is model


def test_ema_decay_warms_up_to_the_configured_value():
    assert warmed_up_decay(0.995, 1) == pytest.approx(2 / 11)
    assert warmed_up_decay(0.995, 100) == pytest.approx(101 / 110)
    assert warmed_up_decay(0.995, 5000) == 0.995


def test_recommendations_fill_nulls_and_explicit_values_win():
    cfg = tiny_train_config(["trainer.batch_size=7", "regularization.ema_decay=0.0"])
    recommended = {"trainer.batch_size": 12, "regularization.ema_decay": 0.995,
                   "regularization.rdrop_alpha": 0.3, "regularization.spec_augment.enabled": True}
    resolved = resolve_settings(cfg, recommended)
    assert resolved["trainer.batch_size"] == {"value": 7, "source": "user"}
    assert resolved["regularization.ema_decay"] == {"value": 0.0, "source": "user"}
    assert resolved["regularization.rdrop_alpha"] == {"value": 0.3, "source": "recommended"}
    assert resolved["regularization.per_utterance_cmvn"]["source"] == "default"
    assert cfg.regularization.rdrop_alpha == 0.3 and cfg.trainer.batch_size == 7
    # Streams without a spectral layout (SSL) cannot be frequency-masked.
    disable_spec_augment_without_layout(cfg, resolved, "layer_12", None)
    assert cfg.regularization.spec_augment.enabled is False
    assert resolved["regularization.spec_augment.enabled"]["value"] is False
    assert "layer_12" in resolved["regularization.spec_augment.enabled"]["note"]


def test_spec_augment_masks_same_mel_bins_in_every_block_never_pitch_nor_padding():
    torch.manual_seed(1)
    cfg = SpecAugmentConfig(enabled=True, freq_mask=4, time_mask=5, num_freq_masks=2,
                            num_time_masks=2)
    lengths = torch.tensor([30, 12])
    frames = torch.randn(2, 30, 27) + 10.0  # no value is 0 before masking
    frames[1, 12:] = 0.0
    out = SpecAugment(cfg, TOY_LAYOUT)(frames, lengths)
    torch.testing.assert_close(out[..., 24:], frames[..., 24:])  # pitch untouched
    assert torch.all(out[1, 12:] == 0)  # padding untouched
    zero = out[..., :24] == 0
    logmel, delta, delta2 = zero[..., 0:8], zero[..., 8:16], zero[..., 16:24]
    assert torch.equal(logmel, delta) and torch.equal(logmel, delta2)
    assert zero[0].any(), "something must be masked with these settings"


def test_per_utterance_cmvn_normalises_valid_frames_only():
    frames = torch.randn(2, 10, 3) * 4 + 7
    frames[1, 6:] = 0.0
    out = per_utterance_cmvn(frames, torch.tensor([10, 6]))
    torch.testing.assert_close(out[1, :6].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1, :6].std(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert torch.all(out[1, 6:] == 0)
    layout = {"logmel": [0, 2], "pitch": [2, 3]}  # pitch keeps its level (an emotion cue)
    spectral_only = per_utterance_cmvn(frames, torch.tensor([10, 6]), layout)
    torch.testing.assert_close(spectral_only[..., :2], out[..., :2])
    torch.testing.assert_close(spectral_only[..., 2], frames[..., 2])


def test_bucketed_batches_cover_every_clip_once_with_similar_lengths():
    lengths = np.random.default_rng(0).integers(10, 500, size=2003)
    batches = bucketed_batches(lengths, 8, np.random.default_rng(3))
    assert sorted(np.concatenate(batches).tolist()) == list(range(2003))
    spread = np.median([np.ptp(lengths[b]) for b in batches])
    random_spread = np.median([np.ptp(lengths[i : i + 8]) for i in range(0, 2003, 8)])
    assert spread < 0.1 * random_spread
    assert not np.array_equal(batches[0], bucketed_batches(lengths, 8, None)[0])
    again = bucketed_batches(lengths, 8, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_warmup_then_cosine_down_to_min_ratio():
    cfg = SchedulerConfig(name="cosine", warmup_epochs=1.0, min_lr_ratio=0.1)
    factors = [lr_factor(s, 100, 10, cfg) for s in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[100] == pytest.approx(0.1)
    assert lr_factor(50, 100, 0, SchedulerConfig(name="constant", warmup_epochs=0)) == 1.0


def test_metrics_uar_is_mean_recall_and_confusion_rows_sum_to_one():
    y_true = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5])
    y_pred = np.array([0, 0, 0, 0, 0, 2, 3, 4, 5])
    metrics = summary_metrics(y_true, y_pred)
    assert metrics["wa"] == pytest.approx(8 / 9) and metrics["uar"] == pytest.approx(5 / 6)
    np.testing.assert_allclose(normalised_confusion(y_true, y_pred).sum(axis=1), 1.0)


def fit_toy(tmp_path, overrides=(), **store_kwargs):
    torch.set_num_threads(1)
    view = write_toy_store(tmp_path / "store", **store_kwargs)
    cfg = tiny_train_config(list(overrides))
    resolve_settings(cfg, {})
    return Trainer(cfg, load_training_data(view, "spectral")).fit()


def test_trains_above_chance_on_a_learnable_toy_problem_and_is_reproducible(tmp_path):
    overrides = ["regularization.rdrop_alpha=0.3", "regularization.ema_decay=0.9",
                 "regularization.spec_augment.enabled=true", "regularization.per_utterance_cmvn=false"]
    first = fit_toy(tmp_path, overrides)
    # chance is 1/6; this toy problem reaches about 0.7 in 6 epochs
    assert first.test.metrics["uar"] > 0.4
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"]
    second = fit_toy(tmp_path, overrides)
    assert [r["val_loss"] for r in first.history] == [r["val_loss"] for r in second.history]
    assert first.test.metrics == second.test.metrics


def test_non_finite_loss_raises_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="training diverged at epoch 1"):
        fit_toy(tmp_path, ["trainer.epochs=2"], nan_in_train=True)


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    result = fit_toy(tmp_path, ["trainer.epochs=30", "trainer.patience=1", "optimizer.lr=0.0"])
    # with lr 0 nothing improves after the first epoch
    assert len(result.history) == 2 and result.best_epoch == 1
    assert math.isfinite(result.objective)
