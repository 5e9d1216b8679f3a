"""Exponential moving average of the weights, with torch's AveragedModel.

The averaged copy (buffers included) is what validation, checkpointing and test use; with decay 0
there is no copy and the live model is evaluated. The decay warms up as min(decay, (1+n)/(10+n))
after n updates (TensorFlow's ExponentialMovingAverage with num_updates): with a fixed 0.995 a
run of a few hundred steps would still be evaluating mostly its random initial weights.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def warmed_up_decay(decay: float, num_updates: int) -> float:
    """The EMA decay applied at update ``num_updates`` (1 = the first update after the copy)."""
    return min(decay, (1 + num_updates) / (10 + num_updates))


def _warmed_up_ema(decay: float):
    def update(averaged, current, num_averaged):
        step_decay = warmed_up_decay(decay, int(num_averaged))
        get_ema_multi_avg_fn(step_decay)(averaged, current, num_averaged)

    return update


class WeightAverager:
    """Keeps an EMA copy of ``model`` (decay > 0) and says which model to evaluate."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = model
        self.average = (
            AveragedModel(model, multi_avg_fn=_warmed_up_ema(decay), use_buffers=True)
            if decay > 0
            else None
        )

    def update(self) -> None:
        """Call after every optimiser step."""
        if self.average is not None:
            self.average.update_parameters(self.model)

    @property
    def evaluated(self) -> nn.Module:
        """The module whose weights validation, checkpoints and test use."""
        return self.average.module if self.average is not None else self.model
