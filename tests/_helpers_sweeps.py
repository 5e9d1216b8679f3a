"""Run Hydra apps (the real train job or tests/sweep_app) as subprocesses in a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
SWEEP_APP = REPO / "tests" / "sweep_app" / "app.py"

# A train job that finishes in seconds: 36 short clips, a 2-layer random-weight WavLM, a tiny model.
TINY_TRAIN = [
    "data.synthetic.num_actors=6", "data.synthetic.sentences=[DFA]",
    "data.synthetic.max_duration=1.6", "features.ssl.weights=random",
    "+features.ssl.arch_overrides={encoder_embed_dim:64,encoder_num_layers:2,encoder_num_heads:4,"
    "encoder_ff_interm_features:128,extractor_conv_layer_config:[[32,10,5],[32,3,2],[32,3,2],"
    "[32,3,2],[32,3,2],[32,2,2],[32,2,2]]}",
    "model.hidden_size=8", "model.attention_hidden=8", "model.transformer_ffn=16",
    "model.transformer_layers=0", "model.num_layers=1", "trainer.epochs=1", "trainer.num_threads=1",
    "trainer.batch_size=12",
]


def run_hydra(cwd: Path, target: list[str], *overrides: str, check: bool = True,
              timeout: int = 300) -> subprocess.CompletedProcess:
    """``target`` is ["-m", "crema_exp.train"] or [script path]; caches go to cwd/cache."""
    env = {**os.environ, "CREMA_EXP_CACHE": str(cwd / "cache"), "HYDRA_FULL_ERROR": "1"}
    done = subprocess.run([sys.executable, *target, *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def run_app(cwd: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_hydra(cwd, [str(SWEEP_APP)], *overrides, check=check)


def load_study(sweep_dir: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def read_json(path: Path):
    return json.loads(path.read_text())
