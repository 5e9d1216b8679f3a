"""Precompute job: build (or reuse) the feature store for a data + features config.

    python -m crema_exp.precompute data=crema_d data.root=/data/CREMA-D features=ssl
    python -m crema_exp.precompute ... verify=true    # also compare the store with its sha256s
    python -m crema_exp.precompute ... rebuild=true   # delete the store and build it again

A damaged store, a full disk or a corpus it cannot use exits with status 1 and one message.
"""

from __future__ import annotations


import hydra
from omegaconf import DictConfig

from crema_exp.cli_errors import user_errors
from crema_exp.config import register_configs, validate
from crema_exp.features.precompute import ensure_store
from crema_exp.features.weights_check import require_ssl_weights

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="precompute")
@user_errors
def main(cfg: DictConfig) -> str:
    validate(cfg)
    require_ssl_weights(cfg)  # before the corpus is generated or scanned
    store = ensure_store(cfg)
    total = store.metadata["corpus"]["total"]
    print(f"feature store: {store.root}")
    print(f"  {total['clips']} clips, {total['seconds'] / 3600:.2f} h audio, "
          f"{len(store.metadata['skipped'])} skipped, streams: {', '.join(store.streams)}")
    return str(store.root)


if __name__ == "__main__":
    main()
