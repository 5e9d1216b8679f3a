"""The config tree composes for every job and recipe, and bad values fail early, naming the key."""

import pytest
from hydra.errors import ConfigCompositionException

from conftest import compose_job as _compose
from crema_exp.config import ConfigError, validate
from crema_exp.training.settings import resolve_settings, recommended_settings


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("train", []),
        ("train", ["experiment=demo"]),
        ("train", ["experiment=ssl_wavlm", "data.root=/data/CREMA-D"]),
        ("train", ["experiment=mel_prosody", "data.root=/data/CREMA-D"]),
        ("train", ["features=mel", "scheduler=constant"]),
        ("precompute", ["data=crema_d", "data.root=/data/CREMA-D", "features=ssl"]),
    ],
)
def test_jobs_and_recipes_compose_and_validate(name, overrides):
    cfg = _compose(name, overrides)
    validate(cfg)
    assert cfg.features.kind in ("ssl", "mel_prosody", "mel")


def test_sweep_keys_exist_with_recommendation_defaults():
    cfg = _compose("train")
    assert cfg.features.ssl_layer == -1
    assert cfg.regularization.rdrop_alpha is None  # null: take features.recommended's value
    assert cfg.regularization.ema_decay is None


def test_recommendations_are_in_the_composed_config_and_an_explicit_value_wins():
    cfg = _compose("train", ["features=ssl", "trainer.batch_size=7",
                             "features.recommended.regularization.rdrop_alpha=0.2"])
    assert cfg.features.recommended.trainer.batch_size == 12  # what --cfg job shows
    resolved = resolve_settings(cfg, recommended_settings(cfg.features))
    assert resolved["trainer.batch_size"] == {"value": 7, "source": "user"}
    assert resolved["regularization.rdrop_alpha"] == {"value": 0.2, "source": "recommended"}
    assert resolved["regularization.spec_augment.enabled"]["value"] is False
    assert cfg.regularization.ema_decay == 0.995


def test_cv5_recipe_sweeps_the_five_folds():
    cfg = _compose("train", ["experiment=cv5"], hydra=True)
    assert cfg.hydra.sweeper.params == {"data.fold": "range(5)"}
    assert cfg.data.split.num_folds == 5


def test_experiment_overrides_groups():
    cfg = _compose("train", ["experiment=demo"])
    assert cfg.data.name == "synthetic"
    assert cfg.features.kind == "mel_prosody"
    assert cfg.model.hidden_size == 64


def test_typo_in_key_fails_naming_the_key():
    with pytest.raises(ConfigCompositionException, match="hiden_size"):
        _compose("train", ["model.hiden_size=3"])


def test_wrong_type_fails_naming_the_key():
    with pytest.raises(ConfigCompositionException, match="model.hidden_size"):
        _compose("train", ["model.hidden_size=abc"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.dropout=1.5", "model.dropout"),
        ("regularization.ema_decay=1.0", "regularization.ema_decay"),
        ("regularization.rdrop_alpha=-0.1", "regularization.rdrop_alpha"),
        ("features.kind=wav2vec", "features.kind"),
        ("trainer.optimized_metric=accuracy", "trainer.optimized_metric"),
        ("data.split.train=0.9", "must sum to 1"),
        ("data.fold=7", "data.fold"),
        ("model.transformer_heads=5", "model.transformer_heads"),
    ],
)
def test_impossible_values_fail_naming_the_key(override, key):
    cfg = _compose("train", [override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_real_corpus_without_root_is_explained():
    cfg = _compose("precompute", ["data=crema_d"])
    with pytest.raises(ConfigError, match="data.root"):
        validate(cfg)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("train", ["data.root=/data/CREMA-D"], r"data\.root=/data/CREMA-D .*add data=crema_d"),
        ("precompute", ["data.root=/data/CREMA-D"], r"data\.root=.*add data=crema_d"),
        ("train", ["experiment=demo", "data.root=/data"], r"data\.root=/data .*add data=crema_d"),
        ("train", ["data.layout=split_folders"], r"data\.layout=split_folders .*add data=crema_d"),
        ("train", ["data=crema_d", "data.root=/d", "data.synthetic.num_actors=5"],
         r"data\.synthetic\.num_actors=5 .*data=synthetic"),
        ("train", ["features=mel_prosody", "features.ssl_layer=3"], r"features\.ssl_layer=3 .*ssl"),
        ("train", ["features=mel", "features.ssl.model=wavlm_large"], r"features\.ssl\.model="),
        ("train", ["features=ssl", "features.n_mels=40"], r"features\.n_mels=40 .*spectral"),
        ("train", ["features=mel", "features.pitch.fmin=60"], r"pitch\.fmin=60.*enabled=false"),
        ("train", ["features.ssl.checkpoint=/m.pt"], r"add features\.ssl\.weights=checkpoint"),
        ("train", ["features.ssl.huggingface_dir=/hf"], r"add features\.ssl\.weights=huggingface"),
    ],
)
def test_a_set_key_that_would_be_ignored_is_refused(name, overrides, message):
    """A value the chosen data source or feature kind never reads must not pass silently."""
    with pytest.raises(ConfigError, match=message):
        validate(_compose(name, overrides))


def test_keys_of_the_chosen_source_and_kind_pass():
    for overrides in (["data=crema_d", "data.root=/d", "features=mel_prosody",
                       "features.pitch.fmin=60"],
                      ["features=ssl", "features.ssl_layer=3", "features.ssl.weights=checkpoint",
                       "features.ssl.checkpoint=/m.pt"],
                      ["experiment=demo", "data.synthetic.num_actors=8"]):
        validate(_compose("train", overrides))
