"""Per-utterance CMVN and SpecAugment on padded, globally normalised batches.

Both use only each clip's valid frames and leave padding at zero. SpecAugment masks the same mel
bins in every mel block of the stream layout (log-mel, delta, delta-delta) and never touches pitch;
time masks fall inside each clip's true length. Masked values are 0, the global mean.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF

from crema_exp.config import SpecAugmentConfig
from crema_exp.models.encoder import padding_mask

MEL_BLOCKS = ("logmel", "delta", "delta_delta")


def per_utterance_cmvn(
    frames: torch.Tensor, lengths: torch.Tensor, layout: dict | None = None
) -> torch.Tensor:
    """Zero mean, unit variance per clip and dimension over its valid frames.

    With a spectral ``layout`` only the mel blocks are normalised: a clip's pitch level is an
    emotion cue that per-utterance normalisation would erase.
    """
    if frames.dim() == 4:  # several SSL layers [B, T, L, D]: each layer's dimensions on their own
        return per_utterance_cmvn(frames.flatten(2), lengths).view_as(frames)
    valid = (~padding_mask(lengths.to(frames.device), frames.size(1)))[..., None].to(frames.dtype)
    count = valid.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (frames * valid).sum(dim=1, keepdim=True) / count
    var = (((frames - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
    normalised = (frames - mean) * torch.rsqrt(var + 1e-5) * valid
    if not layout:
        return normalised
    out = frames.clone()
    for start, end in mel_block_columns(layout):
        out[..., start:end] = normalised[..., start:end]
    return out


def mel_block_columns(layout: dict) -> list[tuple[int, int]]:
    """[start, end) columns of the mel blocks present in a stream layout, all of equal width."""
    blocks = [tuple(layout[name]) for name in MEL_BLOCKS if name in layout]
    if not blocks:
        raise ValueError(f"stream layout {layout} has no mel block ({', '.join(MEL_BLOCKS)})")
    widths = {end - start for start, end in blocks}
    if len(widths) != 1:
        raise ValueError(f"stream layout {layout}: mel blocks differ in width")
    return blocks


class SpecAugment:
    """Frequency and time masking for spectral streams described by a metadata ``layout``."""

    def __init__(self, cfg: SpecAugmentConfig, layout: dict):
        self.cfg = cfg
        self.blocks = mel_block_columns(layout)

    def __call__(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames = frames.clone()
        mel = torch.stack([frames[..., a:b] for a, b in self.blocks], dim=1)  # [B, K, T, F]
        batch, blocks, steps, bins = mel.shape
        # One [F, K*T] "spectrogram" per clip: an iid frequency mask then hits the same bins
        # in every block of that clip.
        spec = mel.permute(0, 3, 1, 2).reshape(batch, bins, blocks * steps)
        for _ in range(self.cfg.num_freq_masks):
            spec = AF.mask_along_axis_iid(spec, min(self.cfg.freq_mask, bins), 0.0, axis=1)
        mel = spec.reshape(batch, bins, blocks, steps).permute(0, 2, 3, 1)
        time_masked = self._time_mask(lengths.to(frames.device), steps)  # [B, T]
        mel = mel.masked_fill(time_masked[:, None, :, None], 0.0)
        for k, (a, b) in enumerate(self.blocks):
            frames[..., a:b] = mel[:, k]
        return frames

    def _time_mask(self, lengths: torch.Tensor, steps: int) -> torch.Tensor:
        """True on masked frames; each mask's width is U{0..time_mask}, clipped to the clip."""
        shape = (lengths.numel(), self.cfg.num_time_masks)
        widths = torch.minimum(
            torch.randint(0, self.cfg.time_mask + 1, shape, device=lengths.device), lengths[:, None]
        )
        starts = (torch.rand(shape, device=lengths.device) * (lengths[:, None] - widths + 1)).long()
        t = torch.arange(steps, device=lengths.device)[None, None, :]
        inside = (t >= starts[..., None]) & (t < (starts + widths)[..., None])
        return inside.any(dim=1)
