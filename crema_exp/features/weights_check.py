"""Make sure the SSL bundle weights are here before the corpus is generated or scanned.

A first ``python -m crema_exp.train`` (WavLM features) on a machine without network access would
otherwise build or scan the whole corpus and only then fail on the download. The bundle file is
fetched up front into the torch hub cache (where torchaudio looks for it); if that fails, the error
names the offline alternatives first. A complete feature store already built from the same weights
needs no weights at all, so its presence skips the check (sweeps and offline reuse keep working).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torchaudio
from omegaconf import DictConfig

from crema_exp.features.ssl_weights import (
    BUNDLES,
    DOWNLOAD_TIMEOUT_S,
    SSLWeightsError,
    _socket_timeout,
    describe_ssl_weights,
)
from crema_exp.features.store import METADATA

log = logging.getLogger(__name__)

BUNDLE_URL = "https://download.pytorch.org/torchaudio/models/{}"


def require_ssl_weights(cfg: DictConfig) -> None:
    """For ``features.ssl.weights=bundle``: the weights file is cached, downloadable, or not needed."""
    features = cfg.features
    if features.kind != "ssl" or features.ssl.weights != "bundle":
        return
    identity = describe_ssl_weights(features.ssl).identity
    bundle_path = getattr(torchaudio.pipelines, BUNDLES[features.ssl.model])._path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(bundle_path).name
    if cached.is_file() or _store_built_with(identity, Path(cfg.paths.feature_dir)):
        return
    cached.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading the %s weights once into %s", features.ssl.model, cached)
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(BUNDLE_URL.format(bundle_path), str(cached))
    except OSError as error:  # URLError, timeouts, a full disk
        raise SSLWeightsError(offline_message(features.ssl.model, cached, error)) from None


def offline_message(model: str, cached: Path, error: Exception) -> str:
    return (
        f"features.ssl.model={model} needs its weights, which are not on this machine and could "
        "not be downloaded. Use one of:\n"
        "  features=mel_prosody  (log-mel + prosody features: no weights, the demo's choice)\n"
        "  features.ssl.weights=checkpoint features.ssl.checkpoint=/path/model.pt  "
        "(a torchaudio state dict)\n"
        "  features.ssl.weights=huggingface features.ssl.huggingface_dir=/path  "
        "(a local Hugging Face model folder)\n"
        "  features.ssl.weights=random  (random initialisation: tests only)\n"
        f"or copy the weights file to {cached}.\n(download error: {error})"
    )


def _store_built_with(identity: dict, feature_dir: Path) -> bool:
    """A complete SSL store whose weights identity matches (the "random" flag aside)."""
    wanted = {k: v for k, v in identity.items() if k != "random"}
    for metadata in feature_dir.glob(f"ssl-*/{METADATA}"):
        try:
            weights = json.loads(metadata.read_text()).get("weights") or {}
        except (OSError, json.JSONDecodeError):
            continue
        if {k: v for k, v in weights.items() if k != "random"} == wanted:
            return True
    return False
