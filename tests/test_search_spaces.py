"""Conditional search space: SpecAugment mask widths are sampled only when SpecAugment is on,
and compare leaves out values that had no effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from _helpers_sweeps import load_study, run_app
from crema_exp.comparison.compare_runs import compare

MASKS = ("regularization.spec_augment.freq_mask", "regularization.spec_augment.time_mask")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("space")
    # the stand-in app scores features.ssl_layer, which the mel_prosody features do not have
    done = run_app(cwd, "-m", "hparams_search=mel_prosody_optuna", "hydra.sweeper.n_trials=8",
                   "+features.ssl_layer=12")
    (cwd / "sweep.log").write_text(done.stdout + done.stderr)
    return cwd / "multirun" / "mel_prosody_optuna"


def test_mask_widths_are_sampled_only_with_spec_augment_enabled(sweep):
    trials = load_study(sweep, "mel_prosody_optuna").trials
    enabled = [t for t in trials if t.params["regularization.spec_augment.enabled"]]
    disabled = [t for t in trials if not t.params["regularization.spec_augment.enabled"]]
    assert enabled and disabled  # 8 seeded TPE trials sample both
    assert all(set(MASKS) <= set(t.params) for t in enabled)
    assert not any(set(MASKS) & set(t.params) for t in disabled)
    for trial in disabled:  # nor are they passed to the run
        overrides = (Path(trial.user_attrs["run_dir"]) / ".hydra" / "overrides.yaml").read_text()
        assert "freq_mask" not in overrides


def test_compare_shows_mask_widths_only_for_runs_where_they_acted(sweep, tmp_path):
    board = compare([str(sweep)], out_dir=tmp_path).leaderboard
    off = board["regularization.spec_augment.enabled"].str.lower() == "false"
    assert (board.loc[off, list(MASKS)] == "").all().all()
    assert (board.loc[~off, list(MASKS)] != "").all().all()


def test_values_behind_an_off_switch_are_left_out(tmp_path):
    from crema_exp.comparison.effective import effective_overrides

    overrides = {"regularization.spec_augment.enabled": "False",
                 "regularization.spec_augment.freq_mask": "16", "regularization.rdrop_alpha": "0.1"}
    assert effective_overrides(overrides, tmp_path) == {
        "regularization.spec_augment.enabled": "False", "regularization.rdrop_alpha": "0.1"}
    # not swept: the run's resolved config (recommendations applied) says whether it was on
    (tmp_path / "resolved_config.yaml").write_text("regularization:\n  spec_augment:\n    enabled: false\n")
    assert effective_overrides({"regularization.spec_augment.time_mask": "40"}, tmp_path) == {}


def test_a_redirected_sweep_log_has_no_colour_codes(sweep):
    log = (sweep.parents[1] / "sweep.log").read_text()
    assert "A new study created" in log and "\x1b[" not in log
