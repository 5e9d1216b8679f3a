"""Settings that exist but that the rest of the config would ignore: refused, not silently dropped.

``data.root=/data/CREMA-D`` without ``data=crema_d`` used to train on the generated demo corpus and
report its numbers. Each check here names the ignored key and what makes it count. A key counts as
set when it differs from the schema's default: the group files leave the keys they do not use at
those defaults.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from crema_exp.config import FeaturesConfig, PitchConfig, SyntheticConfig

SPECTRAL_KEYS = ("n_mels", "win_ms", "hop_ms", "deltas", "delta_delta", "pitch")
SSL_KEYS = ("ssl_layer", "ssl")
PITCH_RANGE_KEYS = ("fmin", "fmax")


def ignored_settings(cfg: DictConfig) -> list[str]:
    """One message per set-but-ignored key of ``data`` and ``features`` (empty when none)."""
    problems = []
    if cfg.get("data") is not None:
        problems += _data(cfg.data)
    if cfg.get("features") is not None:
        problems += _features(cfg.features)
    return problems


def _data(data: DictConfig) -> list[str]:
    if data.name == "synthetic":
        problems = []
        if data.root:
            problems.append(f"data.root={data.root} is ignored by the generated demo corpus "
                            "(data.name=synthetic): add data=crema_d to use that folder")
        if data.layout == "split_folders":
            problems.append("data.layout=split_folders is ignored by the generated demo corpus "
                            "(data.name=synthetic): add data=crema_d data.root=/path")
        return problems
    return [f"data.synthetic.{key}={value} is read only by the generated demo corpus "
            f"(data=synthetic), not by data.name={data.name}"
            for key, value in _changed(data.synthetic, SyntheticConfig())]


def _features(features: DictConfig) -> list[str]:
    defaults = FeaturesConfig()
    if features.kind == "ssl":
        ignored = _changed(features, defaults, SPECTRAL_KEYS)
        problems = [f"features.{key}={value} is read only by the spectral kinds (features=mel or "
                    f"mel_prosody), not by features.kind=ssl" for key, value in ignored]
        ssl = features.ssl
        for key, source in (("checkpoint", "checkpoint"), ("huggingface_dir", "huggingface")):
            if ssl[key] is not None and ssl.weights != source:
                problems.append(f"features.ssl.{key}={ssl[key]} is ignored with features.ssl."
                                f"weights={ssl.weights}: add features.ssl.weights={source}")
        return problems
    ignored = _changed(features, defaults, SSL_KEYS)
    problems = [f"features.{key}={value} is read only by features=ssl, not by features.kind="
                f"{features.kind}" for key, value in ignored]
    if not features.pitch.enabled:
        problems += [f"features.pitch.{key}={value} is ignored with features.pitch.enabled=false"
                     for key, value in _changed(features.pitch, PitchConfig(), PITCH_RANGE_KEYS)]
    return problems


def _changed(node: DictConfig, defaults, keys=None) -> list[tuple[str, object]]:
    """(dotted key, value) of each leaf of ``node`` (under ``keys``) unlike the defaults."""
    return _differences(OmegaConf.to_container(node, resolve=True),
                        OmegaConf.to_container(OmegaConf.structured(defaults)), keys)


def _differences(values: dict, defaults: dict, keys=None) -> list[tuple[str, object]]:
    changed = []
    for key in keys or values:
        value, default = values.get(key), defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            changed += [(f"{key}.{sub}", v) for sub, v in _differences(value, default)]
        elif value != default:
            changed.append((key, value))
    return changed
