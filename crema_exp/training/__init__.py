"""Training: in-memory bucketed batches, augmentation, R-Drop, EMA, loop, metrics, artefacts."""
