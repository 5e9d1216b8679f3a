"""Keys the structured config does not define, even when added with Hydra's ``+``.

Hydra applies ``+key=value`` with ``force_add``, which deliberately bypasses struct mode, so a typo
such as ``+model.hiden_size=3`` would be stored and silently ignored. Every composed node keeps its
dataclass type, so walking the tree against those dataclasses finds such keys for every group.
Free-form fields (``Dict[str, Any]``, e.g. ``features.ssl.arch_overrides``) have no dataclass type
and are not checked.
"""

from __future__ import annotations

import dataclasses
import difflib

from omegaconf import DictConfig, OmegaConf


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """One message per key that is not a field of its node's dataclass, naming close keys."""
    schema = OmegaConf.get_type(cfg)
    fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    problems = []
    for key in cfg.keys():
        if not prefix and key == "hydra":  # Hydra's own node (present in compose(..., True))
            continue
        full = f"{prefix}{key}"
        if fields is not None and key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(prefix + c for c in close)}?" if close
                    else f"keys of {prefix.rstrip('.') or 'the config'}: {', '.join(sorted(fields))}")
            problems.append(f"{full}: no such key ({hint})")
            continue
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            problems += unknown_keys(child, f"{full}.")
    return problems
