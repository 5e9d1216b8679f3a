"""Classification loss with optional R-Drop (Liang et al. 2021).

With alpha > 0 the batch goes through the model twice in one forward call,
``model(frames, lengths, passes=2)``: the batch stacked on itself, so the two halves get different
dropout masks (EmotionClassifier computes what precedes its first dropout once). The loss is the
mean cross-entropy of both passes plus alpha times the symmetric KL divergence between their
predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LossParts:
    loss: torch.Tensor  # what is back-propagated
    cross_entropy: torch.Tensor
    kl: torch.Tensor | None  # None when R-Drop is off
    logits: torch.Tensor  # logits of the first pass [B, C]


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2, averaged over the batch."""
    log_a = F.log_softmax(logits_a.float(), dim=-1)
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    kl_ab = F.kl_div(log_b, log_a, reduction="batchmean", log_target=True)
    kl_ba = F.kl_div(log_a, log_b, reduction="batchmean", log_target=True)
    return 0.5 * (kl_ab + kl_ba)


def classification_loss(
    model: nn.Module,
    frames: torch.Tensor,
    lengths: torch.Tensor,
    labels: torch.Tensor,
    criterion: nn.Module,
    rdrop_alpha: float,
) -> LossParts:
    if rdrop_alpha <= 0:
        logits = model(frames, lengths)
        ce = criterion(logits.float(), labels)
        return LossParts(loss=ce, cross_entropy=ce, kl=None, logits=logits)
    both = model(frames, lengths, passes=2)
    first, second = both.chunk(2)
    ce = 0.5 * (criterion(first.float(), labels) + criterion(second.float(), labels))
    kl = symmetric_kl(first, second)
    return LossParts(loss=ce + rdrop_alpha * kl, cross_entropy=ce, kl=kl, logits=first)
