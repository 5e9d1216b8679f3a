"""Structured configs: the schema behind every YAML file in ``conf/``.

Registering the schema with Hydra's ConfigStore makes a mistyped key (``model.hiden_size=3``) or a
wrongly typed value fail at start-up with a message naming the key. ``validate`` adds the range
checks that types alone cannot express. A value of ``None`` (``null`` in YAML) in the fields marked
"recommended" means "take the recommendation of ``features.recommended`` (conf/features/<kind>.yaml)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from crema_exp.config_keys import unknown_keys
from crema_exp.features.kinds import KINDS

EMOTIONS = ("anger", "disgust", "fear", "happy", "neutral", "sad")


@dataclass
class PathsConfig:
    # Relative paths are taken from the directory the command was launched in.
    cache_dir: str = "cache"
    feature_dir: str = "${paths.cache_dir}/features"
    demo_dir: str = "${paths.cache_dir}/demo"


@dataclass
class SplitConfig:
    """Actor-disjoint splits built by the project (CREMA-D has no official split)."""

    seed: int = 0
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15
    balance_sex: bool = True
    num_folds: int = 5


@dataclass
class SyntheticConfig:
    """Size and seed of the generated demo corpus (official CREMA-D layout and names)."""

    seed: int = 0
    num_actors: int = 24
    sentences: List[str] = field(default_factory=lambda: ["DFA", "IEO", "ITH", "TIE"])
    emotions: List[str] = field(default_factory=lambda: list(EMOTIONS))
    min_duration: float = 1.3
    max_duration: float = 5.0


@dataclass
class DataConfig:
    name: str = "synthetic"  # synthetic | crema_d
    root: Optional[str] = None  # required for crema_d; generated under paths.demo_dir for synthetic
    layout: str = "auto"  # auto | official | split_folders
    sample_rate: int = 16000
    min_duration: float = 0.5  # seconds; shorter clips are skipped and reported
    fold: Optional[int] = None  # k-fold actor cross-validation: test fold index, or null for ratios
    # Voice-only listener votes (clip_id + one count column per emotion); null = the packaged
    # CREMA-D ratings for data=crema_d in the official layout, none for other corpora.
    listener_votes: Optional[str] = None
    split: SplitConfig = field(default_factory=SplitConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class SSLConfig:
    model: str = "wavlm_base_plus"  # wavlm_base_plus | wavlm_base | wavlm_large | hubert_base | ...
    weights: str = "bundle"  # bundle | checkpoint | huggingface | random
    checkpoint: Optional[str] = None  # torchaudio state dict, with weights=checkpoint
    huggingface_dir: Optional[str] = None  # local HF model folder, with weights=huggingface
    layers: Optional[List[int]] = None  # hidden layers to keep (0 = transformer input); null = all
    # Architecture overrides for a smaller model of the same family (random weights only: tests).
    arch_overrides: Dict[str, Any] = field(default_factory=dict)
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "float32"  # float32 | float16 | bfloat16 (compute dtype; stored as float16)


@dataclass
class PitchConfig:
    enabled: bool = True
    fmin: float = 50.0
    fmax: float = 400.0


@dataclass
class FeaturesConfig:
    kind: str = "ssl"  # ssl | mel_prosody | mel
    # Which stored SSL layer the train job reads (-1 = last), or a learned mix of several:
    # "weighted" (all stored layers) or a list of layers such as [3, 4, 5, 6].
    ssl_layer: Any = -1
    sample_rate: int = 16000
    num_workers: Optional[int] = None  # precompute processes for spectral features; null = all cores
    ssl: SSLConfig = field(default_factory=SSLConfig)
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    deltas: bool = True
    delta_delta: bool = True
    pitch: PitchConfig = field(default_factory=PitchConfig)
    # Train settings that suit this kind, as a nested tree of train-config keys (trainer.batch_size,
    # regularization.*); used for values left null. Not part of the feature store key.
    recommended: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.3
    attention_heads: int = 4
    attention_hidden: int = 128
    transformer_layers: int = 1
    transformer_heads: int = 4
    transformer_ffn: int = 256
    layer_mix_norm: bool = False  # features.ssl_layer=weighted: LayerNorm each layer before the mix


@dataclass
class OptimizerConfig:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-2
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])


@dataclass
class SchedulerConfig:
    name: str = "cosine"  # cosine | constant
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01


@dataclass
class SpecAugmentConfig:
    enabled: Optional[bool] = None  # recommended (off for SSL features)
    freq_mask: int = 8  # widest frequency mask, in mel bins
    time_mask: int = 20  # widest time mask, in frames
    num_freq_masks: int = 2
    num_time_masks: int = 2


@dataclass
class RegularizationConfig:
    rdrop_alpha: Optional[float] = None  # recommended; 0 disables R-Drop
    ema_decay: Optional[float] = None  # recommended; 0 disables EMA
    label_smoothing: float = 0.1
    class_weights: bool = True
    grad_clip: float = 5.0  # max gradient norm; 0 disables clipping
    per_utterance_cmvn: Optional[bool] = None  # recommended
    soft_labels: float = 0.0  # weight of the listeners' vote distribution in the target; 0 = off
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: Optional[int] = None  # recommended
    patience: int = 8  # epochs without validation improvement before stopping
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision, used on GPU only
    optimized_metric: str = "val_uar"  # val_uar | val_wa | val_macro_f1 | val_loss
    num_threads: Optional[int] = None  # torch CPU threads; null = cores // trials running at once


@dataclass
class PrecomputeConfig:
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    verify: bool = False  # reusing a feature store: also compare every file with its sha256
    rebuild: bool = False  # delete the feature store for this config and build it again


@dataclass
class TrainConfig(PrecomputeConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def register_configs() -> None:
    """Make the schemas available to the defaults lists of conf/precompute.yaml and conf/train.yaml."""
    cs = ConfigStore.instance()
    cs.store(name="precompute_schema", node=PrecomputeConfig)
    cs.store(name="train_schema", node=TrainConfig)


class ConfigError(ValueError):
    """A config value that has the right type but an impossible value."""


_CHOICES = {
    "data.name": ("synthetic", "crema_d"),
    "data.layout": ("auto", "official", "split_folders"),
    "features.kind": tuple(KINDS),
    "features.ssl.weights": ("bundle", "checkpoint", "huggingface", "random"),
    "features.ssl.device": ("auto", "cpu", "cuda"),
    "features.ssl.dtype": ("float32", "float16", "bfloat16"),
    "optimizer.name": ("adamw",),
    "scheduler.name": ("cosine", "constant"),
    "trainer.device": ("auto", "cpu", "cuda"),
    "trainer.optimized_metric": ("val_uar", "val_wa", "val_macro_f1", "val_loss"),
}

# key -> (low, high, low inclusive, high inclusive); None leaves a side open.
_RANGES = {
    "data.min_duration": (0.0, None, True, True),
    "data.split.train": (0.0, 1.0, False, False),
    "data.split.validation": (0.0, 1.0, False, False),
    "data.split.test": (0.0, 1.0, False, False),
    "data.split.num_folds": (3, None, True, True),
    "data.synthetic.num_actors": (3, 91, True, True),
    "features.n_mels": (1, None, True, True),
    "features.pitch.fmin": (0.0, None, False, True),
    "features.num_workers": (1, None, True, True),
    "model.hidden_size": (1, None, True, True),
    "model.num_layers": (1, None, True, True),
    "model.dropout": (0.0, 1.0, True, False),
    "model.attention_heads": (1, None, True, True),
    "model.transformer_layers": (0, None, True, True),
    "optimizer.lr": (0.0, None, False, True),
    "optimizer.weight_decay": (0.0, None, True, True),
    "scheduler.warmup_epochs": (0.0, None, True, True),
    "scheduler.min_lr_ratio": (0.0, 1.0, True, True),
    "regularization.rdrop_alpha": (0.0, None, True, True),
    "regularization.ema_decay": (0.0, 1.0, True, False),
    "regularization.label_smoothing": (0.0, 1.0, True, False),
    "regularization.grad_clip": (0.0, None, True, True),
    "regularization.soft_labels": (0.0, 1.0, True, True),
    "trainer.epochs": (1, None, True, True),
    "trainer.batch_size": (1, None, True, True),
    "trainer.patience": (1, None, True, True),
}


def _is_layer_choice(value: Any) -> bool:
    """A layer number, "weighted", or a non-empty list of distinct layer numbers."""
    if OmegaConf.is_list(value) or isinstance(value, (list, tuple)):
        layers = list(value)
        return bool(layers) and all(isinstance(v, int) and not isinstance(v, bool) for v in layers) \
            and len(set(layers)) == len(layers)
    return value == "weighted" or (isinstance(value, int) and not isinstance(value, bool))


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the key for values the schema's types cannot rule out.

    Also refuses keys the schema does not define (added with ``+``: see config_keys).
    """
    problems = unknown_keys(cfg)
    if problems:  # the range checks below could trip over the unknown key's neighbours
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    for key, allowed in _CHOICES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in allowed:
            problems.append(f"{key}={value!r}: expected one of {', '.join(allowed)}")
    for key, (low, high, low_inc, high_inc) in _RANGES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        too_low = low is not None and (value < low if low_inc else value <= low)
        too_high = high is not None and (value > high if high_inc else value >= high)
        if too_low or too_high:
            lo = "" if low is None else ("[" if low_inc else "(") + str(low)
            hi = "" if high is None else str(high) + ("]" if high_inc else ")")
            problems.append(f"{key}={value!r}: out of range {lo or '(-inf'}, {hi or 'inf)'}")
    data = cfg.get("data")
    if data is not None:
        ratios = data.split.train + data.split.validation + data.split.test
        if abs(ratios - 1.0) > 1e-6:
            problems.append(f"data.split.train+validation+test = {ratios:g}: must sum to 1")
        if data.name == "crema_d" and not data.root:
            problems.append("data.root is missing: data=crema_d needs data.root=/path/to/CREMA-D")
        if data.fold is not None and not 0 <= data.fold < data.split.num_folds:
            problems.append(f"data.fold={data.fold}: must be in [0, data.split.num_folds)")
    features = cfg.get("features")
    if features is not None and features.pitch.fmax <= features.pitch.fmin:
        problems.append("features.pitch.fmax must be greater than features.pitch.fmin")
    if features is not None and not _is_layer_choice(features.get("ssl_layer")):
        problems.append(f"features.ssl_layer={features.get('ssl_layer')!r}: expected a layer "
                        "number, weighted, or a list of distinct layer numbers such as [3,4,5]")
    model = cfg.get("model")
    if model is not None:
        if (2 * model.hidden_size) % model.transformer_heads:
            problems.append(
                "model.transformer_heads must divide 2*model.hidden_size (the BiGRU output size)"
            )
    from crema_exp.config_traps import ignored_settings  # it imports this module's schemas

    problems += ignored_settings(cfg)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
