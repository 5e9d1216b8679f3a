"""Resolve the config values left null from the feature kind's recommendations.

The recommendations live in the config tree (``features.recommended`` in conf/features/<kind>.yaml,
visible with ``--cfg job``). An explicit user value always wins; a null takes the recommendation; a
null the kind does not recommend falls back to a conservative default. Every value is logged with
its source and written back into the config, so the saved config is the one that actually ran.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from crema_exp.config import ConfigError

log = logging.getLogger(__name__)

# Used only when the config says null and the store recommends nothing.
FALLBACKS: dict[str, Any] = {
    "trainer.batch_size": 32,
    "regularization.rdrop_alpha": 0.0,
    "regularization.ema_decay": 0.0,
    "regularization.spec_augment.enabled": False,
    "regularization.per_utterance_cmvn": False,
}


def recommended_settings(features_cfg: DictConfig) -> dict[str, Any]:
    """``features.recommended`` as dotted train-config keys -> values; unknown keys are an error."""
    node = features_cfg.get("recommended")
    nested = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    flat: dict[str, Any] = {}

    def walk(node: dict, prefix: str) -> None:
        for name, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{name}.")
            else:
                flat[f"{prefix}{name}"] = value

    walk(nested, "")
    unknown = sorted(set(flat) - set(FALLBACKS))
    if unknown:
        raise ConfigError(f"features.recommended: no such setting {unknown}; "
                          f"recommendable: {sorted(FALLBACKS)}")
    return flat


def resolve_settings(cfg: DictConfig, recommended: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fill the nulls of FALLBACKS' keys in ``cfg`` (in place); return key -> {value, source}."""
    resolved = {}
    for key, fallback in FALLBACKS.items():
        value = OmegaConf.select(cfg, key)
        if value is not None:
            source = "user"
        elif recommended.get(key) is not None:
            value, source = recommended[key], "recommended"
        else:
            value, source = fallback, "default"
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=False)
        resolved[key] = {"value": value, "source": source}
        log.info("setting %s = %r (%s)", key, value, source)
    return resolved


def disable_spec_augment_without_layout(
    cfg: DictConfig, resolved: dict[str, dict[str, Any]], stream: str, layout: dict | None
) -> None:
    """SpecAugment needs mel blocks to mask; streams without a layout (SSL) switch it off."""
    key = "regularization.spec_augment.enabled"
    if layout or not resolved[key]["value"]:
        return
    log.warning("SpecAugment switched off: stream %r has no spectral layout (SSL features)", stream)
    OmegaConf.update(cfg, key, False, merge=False)
    resolved[key] = {
        "value": False,
        "source": resolved[key]["source"],
        "note": f"switched off: stream {stream!r} has no spectral layout",
    }
