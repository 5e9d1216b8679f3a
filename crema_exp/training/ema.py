"""Exponential moving average of the weights, with torch's AveragedModel.

The averaged copy (buffers included) is what validation, checkpointing and test use; with decay 0
there is no copy and the live model is evaluated.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverager:
    """Keeps an EMA copy of ``model`` (decay > 0) and says which model to evaluate."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = model
        self.average = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
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
