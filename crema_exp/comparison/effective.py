"""Override values that acted: a setting whose switch was off in a run did nothing there.

Sweeps made before the search space was conditional sampled SpecAugment mask widths even in trials
with SpecAugment off; listed as they are, compare would plot "effects" of values that did nothing.
Such values are left out (shown blank) for runs where their switch was off, so a parameter that
varied only in those runs is not a swept parameter at all.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

# dependent key prefix -> the boolean switch that must be on for those keys to act
SWITCHES = {"regularization.spec_augment.": "regularization.spec_augment.enabled"}
from crema_exp.run_files import RESOLVED_CONFIG


def effective_overrides(overrides: dict[str, str], run_dir: Path) -> dict[str, str]:
    """``overrides`` without the keys whose switch was off in this run."""
    effective = dict(overrides)
    for prefix, switch in SWITCHES.items():
        dependent = [k for k in overrides if k.startswith(prefix) and k != switch]
        if dependent and not _switch_on(overrides, switch, run_dir):
            for key in dependent:
                del effective[key]
    return effective


def _switch_on(overrides: dict[str, str], switch: str, run_dir: Path) -> bool:
    """The override when given, else the run's resolved config (recommendations applied)."""
    if switch in overrides:
        return overrides[switch].strip().lower() == "true"
    resolved = run_dir / RESOLVED_CONFIG
    if not resolved.is_file():
        return True  # unknown: keep the values
    value = OmegaConf.select(OmegaConf.load(resolved), switch, default=True)
    return bool(value)
