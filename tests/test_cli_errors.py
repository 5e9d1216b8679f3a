"""User errors at the command line: one message (fix first), exit code 2, no traceback, no litter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from crema_exp.config import ConfigError, register_configs, validate

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides)


def _run(cwd: Path, module: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(CREMA_EXP_CACHE=str(cwd / "cache"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("override, message", [
    ("+model.hiden_size=3", "model.hiden_size: no such key (did you mean model.hidden_size?)"),
    ("+data.split.sed=1", "data.split.sed: no such key (did you mean data.split.seed?)"),
    ("++trainr.epochs=1", "trainr: no such key (did you mean trainer?)"),
])
def test_a_key_added_with_plus_that_the_schema_lacks_is_refused(override, message):
    cfg = _compose([override])  # Hydra itself accepts it: '+' bypasses struct mode
    with pytest.raises(ConfigError) as raised:
        validate(cfg)
    assert message in str(raised.value)


def test_free_form_fields_still_take_new_keys_with_plus():
    cfg = _compose(["features.ssl.weights=random",
                    "++features.ssl.arch_overrides={encoder_num_layers: 2}"])
    validate(cfg)
    assert cfg.features.ssl.arch_overrides.encoder_num_layers == 2


def test_config_error_is_one_line_without_traceback_and_leaves_no_run_folder(tmp_path):
    done = _run(tmp_path, "crema_exp.train", "+model.hiden_size=3")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "did you mean model.hidden_size?" in done.stderr
    assert _files(tmp_path) == []  # no outputs/train/<date>/<time>, no cache


def test_data_error_of_precompute_leaves_no_run_folder(tmp_path):
    done = _run(tmp_path, "crema_exp.precompute", "data=crema_d", f"data.root={tmp_path / 'nope'}",
                "features=mel")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert str(tmp_path / "nope") in done.stderr
    assert _files(tmp_path) == []


def test_bad_checkpoint_for_predict_is_one_message_and_writes_nothing(tmp_path):
    (tmp_path / "model.pt").write_text("not a checkpoint")
    done = _run(tmp_path, "crema_exp.predict", "checkpoint=model.pt", "inputs=model.pt")
    assert done.returncode == 2
    assert "model.pt: not a readable checkpoint" in done.stderr and "Traceback" not in done.stderr
    assert _files(tmp_path) == ["model.pt"]


def test_full_error_variable_shows_the_traceback(tmp_path):
    env_run = subprocess.run(
        [sys.executable, "-m", "crema_exp.train", "+model.hiden_size=3"], cwd=tmp_path,
        env={**os.environ, "HYDRA_FULL_ERROR": "1", "CREMA_EXP_CACHE": str(tmp_path / "cache")},
        capture_output=True, text=True, timeout=300)
    assert env_run.returncode == 1 and "Traceback" in env_run.stderr


def test_a_failed_trial_of_a_sweep_keeps_its_folder(tmp_path):
    done = _run(tmp_path, "crema_exp.train", "-m", "+model.hiden_size=3",
                "hydra.sweep.dir=multirun/typo")
    assert done.returncode != 0
    assert (tmp_path / "multirun" / "typo" / "0" / ".hydra" / "config.yaml").is_file()
