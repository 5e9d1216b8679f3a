"""Precompute job: build (or reuse) the feature store for a data + features config.

    python -m crema_exp.precompute data=crema_d data.root=/data/CREMA-D features=ssl
    python -m crema_exp.precompute ... verify=true    # also compare the store with its sha256s
    python -m crema_exp.precompute ... rebuild=true   # delete the store and build it again

A damaged store, a full disk or a corpus it cannot use exits with status 1 and one message.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from crema_exp.config import register_configs, validate
from crema_exp.disk_space import DiskFullError
from crema_exp.features.precompute import ensure_store
from crema_exp.features.store import StoreError

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="precompute")
def main(cfg: DictConfig) -> str:
    validate(cfg)
    try:
        store = ensure_store(cfg)
    except (StoreError, DiskFullError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    total = store.metadata["corpus"]["total"]
    print(f"feature store: {store.root}")
    print(f"  {total['clips']} clips, {total['seconds'] / 3600:.2f} h audio, "
          f"{len(store.metadata['skipped'])} skipped, streams: {', '.join(store.streams)}")
    return str(store.root)


if __name__ == "__main__":
    main()
