"""crema-exp: Hydra + Optuna experiments for speech emotion recognition on CREMA-D."""
