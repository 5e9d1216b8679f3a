"""Turning a config's ``device`` value (auto | cpu | cuda) into a torch device."""

from __future__ import annotations

import torch

from crema_exp.config import ConfigError


def resolve_device(name: str, key: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one fails naming ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}=cuda but no CUDA device is available")
    return torch.device(name)
