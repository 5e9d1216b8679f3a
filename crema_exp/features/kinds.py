"""The feature-kind interface and the registry that maps ``features.kind`` to its extractor.

Everything the store, the train job and predict need from a kind goes through ``FeatureKind``, so
no other module asks ``kind == "ssl"``. A new kind is one extractor module implementing the
protocol, one line in ``KINDS``, and one ``conf/features/<kind>.yaml`` (with its ``recommended``
training settings).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, Sequence

import numpy as np

# features.kind -> "module:Class" of its extractor (imported only when that kind is used).
KINDS = {
    "ssl": "crema_exp.features.ssl:SSLExtractor",
    "mel_prosody": "crema_exp.features.spectral:SpectralExtractor",
    "mel": "crema_exp.features.spectral:SpectralExtractor",
}


class FeatureKind(Protocol):
    """An extractor: 16 kHz mono waveforms -> named streams of [frames, dim] float32 arrays."""

    streams: Sequence[str]  # stream names, one .npy file each in the store
    frame_rate: float  # frames per second
    layout: dict[str, list[int]] | None  # named column blocks of a stream (SpecAugment, CMVN)
    weights_identity: dict[str, Any]  # learned weights behind the features; "random": bool

    def identity(self) -> dict[str, Any]:
        """Every setting that changes the stored values (part of the store's content key)."""

    def extract_many(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Per wave {stream: [frames, dim] float32}; ValueError for a wave it cannot use."""

    def pool_workers(self, features_cfg: Any) -> int:
        """Processes to extract with (1: in this process; the extractor may thread inside)."""

    @staticmethod
    def select_stream(features_cfg: Any, streams: Sequence[str], where: str) -> str:
        """The stored stream a train job reads for this config (``where`` names the store)."""


class UnknownKindError(ValueError):
    """``features.kind`` names no registered kind."""


def extractor_class(kind: str) -> type:
    """The extractor class registered for ``kind``."""
    try:
        module, name = KINDS[kind].split(":")
    except KeyError:
        raise UnknownKindError(
            f"features.kind={kind!r}: expected one of {', '.join(KINDS)}") from None
    return getattr(importlib.import_module(module), name)


def make_extractor(features_cfg: Any) -> FeatureKind:
    """The extractor for ``features_cfg.kind`` (an SSL one loads its weights at first extraction)."""
    return extractor_class(features_cfg.kind)(features_cfg)
