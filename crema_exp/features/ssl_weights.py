"""Build a torchaudio SSL model (WavLM / HuBERT / wav2vec 2.0) and load its weights.

Four weight sources (``features.ssl.weights``): the torchaudio ``bundle`` (downloaded once into the
torch hub cache), a local torchaudio state dict (``checkpoint``), a local Hugging Face folder
(``huggingface``), or ``random`` initialisation (tests and demos only). Every source returns the
same :class:`~torchaudio.models.Wav2Vec2Model` architecture. The JSON-friendly identity that the
feature store puts into its content key comes from :func:`describe_ssl_weights` without loading
anything, so a store that exists is reused without the weights (offline, or in every sweep trial).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torchaudio
from omegaconf import OmegaConf
from torchaudio.models import Wav2Vec2Model

from crema_exp.config import ConfigError

log = logging.getLogger(__name__)

# features.ssl.model -> torchaudio.pipelines bundle name.
BUNDLES = {
    "wavlm_base_plus": "WAVLM_BASE_PLUS",
    "wavlm_base": "WAVLM_BASE",
    "wavlm_large": "WAVLM_LARGE",
    "hubert_base": "HUBERT_BASE",
    "hubert_large": "HUBERT_LARGE",
    "wav2vec2_base": "WAV2VEC2_BASE",
}
RANDOM_SEED = 0
# A download that stalls this long (seconds without data) counts as "offline".
DOWNLOAD_TIMEOUT_S = 30.0


class SSLWeightsError(RuntimeError):
    """The requested SSL weights cannot be loaded; the message says what to do instead."""


@dataclass
class WeightsSpec:
    """What the weights are, known without loading them: enough for the feature store's key."""

    model_name: str
    source: str  # bundle | checkpoint | huggingface | random
    identity: dict[str, Any]  # JSON-friendly; part of the feature store key
    arch: dict[str, Any]  # factory parameters of the architecture
    normalize_waveform: bool  # the bundle layer-normalises each waveform (large models)
    path: Path | None = None  # checkpoint file or Hugging Face folder


def describe_ssl_weights(ssl_cfg) -> WeightsSpec:
    """Validate ``ssl_cfg`` and identify its weights (a checkpoint is hashed, nothing is loaded)."""
    bundle_name = _bundle_name(ssl_cfg.model)
    bundle = getattr(torchaudio.pipelines, bundle_name)
    overrides = _plain(ssl_cfg.arch_overrides or {})
    if overrides and ssl_cfg.weights != "random":
        raise ConfigError(
            f"features.ssl.arch_overrides={overrides} is only allowed with features.ssl.weights=random "
            f"(real weights need the real {ssl_cfg.model} architecture)"
        )
    arch = _architecture(bundle, overrides, ssl_cfg.model)
    path = None
    if ssl_cfg.weights == "bundle":
        identity = {"source": "bundle", "bundle": bundle_name}
    elif ssl_cfg.weights == "checkpoint":
        path = _existing(ssl_cfg.checkpoint, "checkpoint", "/path/model.pt", Path.is_file)
        identity = {"source": "checkpoint", "path": str(path), "sha256": _sha256(path)}
    elif ssl_cfg.weights == "huggingface":
        path = _existing(ssl_cfg.huggingface_dir, "huggingface_dir", "/path", Path.is_dir)
        identity = {"source": "huggingface", "path": str(path), "sha256": _sha256_folder(path)}
    elif ssl_cfg.weights == "random":
        identity = {"source": "random", "seed": RANDOM_SEED, "random": True, "arch": arch}
    else:
        raise ConfigError(
            f"features.ssl.weights={ssl_cfg.weights!r}: expected one of "
            "bundle, checkpoint, huggingface, random"
        )
    identity = _json_friendly({**identity, "model": ssl_cfg.model})
    return WeightsSpec(ssl_cfg.model, ssl_cfg.weights, identity, arch,
                       bundle._normalize_waveform, path)


def load_ssl_model(spec: WeightsSpec) -> Wav2Vec2Model:
    """Build the architecture and load the weights ``spec`` describes (eval mode, CPU, float32)."""
    bundle_name = _bundle_name(spec.model_name)
    bundle = getattr(torchaudio.pipelines, bundle_name)
    loaders = {
        "bundle": _from_bundle,
        "checkpoint": _from_checkpoint,
        "huggingface": _from_huggingface,
        "random": _from_random,
    }
    return loaders[spec.source](spec, bundle, bundle_name).eval()


def _existing(value, key: str, example: str, check) -> Path:
    if not value:
        raise ConfigError(f"features.ssl.weights needs features.ssl.{key}={example}")
    path = Path(value).expanduser().resolve()
    if not check(path):
        raise SSLWeightsError(f"{path}: not found (features.ssl.{key})")
    return path


def build_architecture(model_name: str, arch_overrides: dict | None = None) -> Wav2Vec2Model:
    """The untrained torchaudio model for ``model_name`` (what the bundle builds before loading)."""
    bundle = getattr(torchaudio.pipelines, _bundle_name(model_name))
    return _factory(bundle)(**_architecture(bundle, _plain(arch_overrides or {}), model_name))


def _bundle_name(model_name: str) -> str:
    if model_name not in BUNDLES:
        raise ConfigError(
            f"features.ssl.model={model_name!r}: expected one of {', '.join(BUNDLES)}"
        )
    return BUNDLES[model_name]


def _factory(bundle):
    # Mirrors torchaudio.pipelines._wav2vec2.utils._get_model, with the public factories.
    return torchaudio.models.wavlm_model if bundle._model_type == "WavLM" else torchaudio.models.wav2vec2_model


def _architecture(bundle, overrides: dict, model_name: str) -> dict[str, Any]:
    params = dict(bundle._params)
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ConfigError(
            f"features.ssl.arch_overrides: unknown key(s) {unknown} for {model_name}; "
            f"allowed: {', '.join(sorted(params))}"
        )
    params.update(overrides)
    return params


def _offline_alternatives() -> str:
    return (
        "Alternatives without network access:\n"
        "  features.ssl.weights=checkpoint features.ssl.checkpoint=/path/model.pt  "
        "(a torchaudio state dict)\n"
        "  features.ssl.weights=huggingface features.ssl.huggingface_dir=/path  "
        "(a local Hugging Face model folder; needs `pip install transformers`)\n"
        "  features.ssl.weights=random  (random initialisation: tests/demo only)"
    )


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torch.hub downloads have no timeout argument; without one an unreachable host can hang."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _from_bundle(spec, bundle, bundle_name):
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            model = bundle.get_model()
    except (OSError, RuntimeError) as error:  # URLError and timeouts are OSErrors
        raise SSLWeightsError(
            f"cannot load torchaudio bundle {bundle_name} for features.ssl.model={spec.model_name}: "
            f"{error}\nThe weights are downloaded once into the torch hub cache "
            f"({torch.hub.get_dir()}); this machine could not download them.\n"
            + _offline_alternatives()
        ) from error
    # Large models come wrapped to layer-normalise the waveform; the extractor does that itself.
    return model if isinstance(model, Wav2Vec2Model) else model.model


def _from_checkpoint(spec, bundle, bundle_name):
    path = spec.path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a non-checkpoint file
        raise SSLWeightsError(f"{path}: not a readable torch checkpoint: {error}") from error
    if not isinstance(state, dict):
        raise SSLWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    if state and all(key.startswith("model.") for key in state):
        # Saved from bundle.get_model() of a large model: the wrapper prefixes every key.
        state = {key[len("model."):]: value for key, value in state.items()}
    model = _factory(bundle)(**spec.arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise SSLWeightsError(
            f"{path}: state dict does not match the torchaudio {bundle_name} architecture "
            f"(features.ssl.model={spec.model_name}): {error}"
        ) from error
    return model


def _from_huggingface(spec, bundle, bundle_name):
    folder = spec.path
    try:
        from transformers import AutoModel
    except ImportError as error:
        raise SSLWeightsError(
            "features.ssl.weights=huggingface needs the transformers package: pip install transformers"
        ) from error
    try:
        original = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as error:
        raise SSLWeightsError(f"{folder}: cannot load a Hugging Face model: {error}") from error
    from torchaudio.models.wav2vec2.utils import import_huggingface_model

    return import_huggingface_model(original)


def _from_random(spec, bundle, bundle_name):
    log.warning(
        "*** features.ssl.weights=random: %s has RANDOM weights (seed %d). Its features carry no "
        "speech knowledge; use this for tests and demos only. ***",
        spec.model_name,
        RANDOM_SEED,
    )
    with torch.random.fork_rng(devices=[]):  # reproducible without disturbing the caller's RNG
        torch.manual_seed(RANDOM_SEED)
        return _factory(bundle)(**spec.arch)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_folder(folder: Path) -> str:
    """One hash over every file's relative name and content, so any change to the folder shows."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(_sha256(path).encode())
    return digest.hexdigest()


def _plain(overrides) -> dict:
    """OmegaConf nodes (from the Hydra config) become plain dicts and lists for the factories."""
    return OmegaConf.to_container(overrides) if OmegaConf.is_config(overrides) else dict(overrides)


def _json_friendly(value: dict) -> dict:
    """Tuples (conv layer configs) become lists, so the identity round-trips through metadata.json."""
    return json.loads(json.dumps(value))
