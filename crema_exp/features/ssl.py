"""Every hidden layer of a frozen SSL model (WavLM / HuBERT / wav2vec 2.0) from one forward pass.

Exactness: zero-padding changes these models' outputs (group norm in the conv front end, attention
over padded frames, and torchaudio's WavLM takes no ``lengths``), so clips are never padded. Only
clips of identical sample length share a batch (CREMA-D has just 115 distinct file sizes), and every
result equals running the model on that clip alone, up to float rounding.

Speed on CPU: a few cores run this model better as independent single-threaded forward passes
than as one pass split across threads, so batches go to a thread pool with one intra-op thread
each (torch releases the GIL inside its kernels). The positional convolution's weight norm is baked
in once instead of being recomputed on every forward pass.

Last layer of pre-norm models (``wavlm_large``, ``hubert_large``: fairseq's layer_norm_first):
their encoder ends with a LayerNorm that torchaudio's ``extract_features`` leaves out, so the
last stream gets it here and equals the encoder's output (HF ``hidden_states[-1]``, s3prl's last
layer). Post-norm models (Base, Base+) apply that LayerNorm before the first layer instead.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from omegaconf import OmegaConf
from torch.nn.utils import parametrize

from crema_exp.config import ConfigError
from crema_exp.device import resolve_device
from crema_exp.features.ssl_weights import describe_ssl_weights, load_ssl_model

FRAME_RATE = 50.0  # every supported model: 20 ms frame hop at 16 kHz
# Equal-length clips share a forward pass up to this many samples. On CPU bigger batches measured
# slower (the conv front end's activations outgrow the caches), so ~2 typical clips; on GPU ~100 s.
MAX_BATCH_SAMPLES = {"cpu": 100_000, "cuda": 1_600_000}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def layer_stream(layer: int) -> str:
    """Stream name of an SSL hidden layer (0 = transformer input)."""
    return f"layer_{layer:02d}"


class SSLExtractor:
    """Turns 16 kHz waveforms into ``layer_00`` (transformer input) ... ``layer_L`` streams."""

    def __init__(self, features_cfg):
        ssl_cfg = features_cfg.ssl
        if features_cfg.sample_rate != 16000:
            raise ConfigError(
                f"features.sample_rate={features_cfg.sample_rate}: SSL models need 16000 Hz audio"
            )
        if ssl_cfg.dtype not in _DTYPES:
            raise ConfigError(f"features.ssl.dtype={ssl_cfg.dtype!r}: expected one of {', '.join(_DTYPES)}")
        self._spec = describe_ssl_weights(ssl_cfg)
        self.weights_identity = {**self._spec.identity, "random": ssl_cfg.weights == "random"}
        self._arch_overrides = OmegaConf.to_container(ssl_cfg.arch_overrides, resolve=True)
        self._dtype_name = ssl_cfg.dtype
        self.dim = int(self._spec.arch["encoder_embed_dim"])
        self.frame_rate = FRAME_RATE
        self.min_samples = _receptive_field(self._spec.arch["extractor_conv_layer_config"])
        num_layers = int(self._spec.arch["encoder_num_layers"])
        self._layers = _selected_layers(ssl_cfg.layers, num_layers)
        self.streams = [layer_stream(k) for k in self._layers]
        self._device = resolve_device(ssl_cfg.device, "features.ssl.device")
        self._dtype = _DTYPES[ssl_cfg.dtype]
        self._num_layers = num_layers
        self._model = None  # loaded by the first extraction: a reused store needs no weights
        self._final_norm = None  # the encoder's closing LayerNorm, pre-norm models only
        self._transformer_input = threading.local()

    layout = None  # hidden states have no named column blocks

    def identity(self) -> dict:
        """What changes the stored values: weights, stored layers, compute dtype (not device)."""
        return {"model": self._spec.model_name, "weights": self.weights_identity,
                "layers": self._layers, "dtype": self._dtype_name,
                "arch_overrides": self._arch_overrides}

    def pool_workers(self, features_cfg) -> int:
        return 1  # forward passes already run one per core on a thread pool (see _parallel)

    @staticmethod
    def select_stream(features_cfg, streams, where: str) -> str:
        """``ssl_layer``: a layer number, or a negative index into the stored layers (-1 = last)."""
        layers = sorted(int(s.removeprefix("layer_")) for s in streams)
        wanted = int(features_cfg.ssl_layer)
        if wanted < 0:
            if -wanted > len(layers):
                raise ValueError(f"features.ssl_layer={wanted}: {where} stores only "
                                 f"{len(layers)} layers ({layers})")
            return layer_stream(layers[wanted])
        if wanted not in layers:
            raise ValueError(f"features.ssl_layer={wanted} is not stored in {where}; "
                             f"stored layers: {layers}")
        return layer_stream(wanted)

    def _ensure_model(self) -> None:
        if self._model is None:
            model = _prepare(load_ssl_model(self._spec)).to(self._device, self._dtype)
            transformer = model.encoder.transformer
            transformer.layers[0].register_forward_pre_hook(self._keep_transformer_input)
            # torchaudio names it the other way round: the Transformer's own ``layer_norm_first``
            # is False exactly for pre-norm models, whose forward() ends with this LayerNorm.
            self._final_norm = None if transformer.layer_norm_first else transformer.layer_norm
            self._model = model

    def extract_many(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Per clip: {stream: float32 [frames, dim]}, in the order of ``waves``.

        Pass many clips per call (ideally sorted by length): only equal-length clips batch together.
        Raises ValueError naming the clip index for a wave that is not 1-D, not finite or too short.
        """
        tensors = [self._as_tensor(index, wave) for index, wave in enumerate(waves)]
        self._ensure_model()
        batches = _equal_length_batches(tensors, MAX_BATCH_SAMPLES[self._device.type])
        results: list[dict[str, np.ndarray] | None] = [None] * len(tensors)
        with self._parallel() as pool:
            for indices, outputs in zip(batches, pool.map(self._forward, _stacked(tensors, batches))):
                for row, index in enumerate(indices):
                    results[index] = {stream: layer[row] for stream, layer in outputs.items()}
        return results

    def _as_tensor(self, index: int, wave: np.ndarray) -> torch.Tensor:
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"clip {index}: expected a mono 1-D waveform, got shape {wave.shape}")
        if wave.shape[0] < self.min_samples:
            raise ValueError(
                f"clip {index}: {wave.shape[0]} samples is shorter than the model's "
                f"{self.min_samples}-sample window"
            )
        if not np.issubdtype(wave.dtype, np.floating) or not np.isfinite(wave).all():
            raise ValueError(f"clip {index}: waveform must be finite floating-point samples")
        return torch.from_numpy(wave.astype(np.float32, copy=False))

    @torch.inference_mode()  # per call: grad modes are thread-local, so the pool's threads need it
    def _forward(self, batch: torch.Tensor) -> dict[str, np.ndarray]:
        """One forward pass of a [clips, samples] batch -> {stream: float32 [clips, frames, dim]}."""
        batch = batch.to(self._device)
        if self._spec.normalize_waveform:
            batch = torch.nn.functional.layer_norm(batch, batch.shape[-1:])
        deepest = max(1, self._layers[-1])  # extract_features needs at least one layer
        layers, _ = self._model.extract_features(batch.to(self._dtype), num_layers=deepest)
        if self._final_norm is not None and deepest == self._num_layers:
            layers[-1] = self._final_norm(layers[-1])
        hidden = [self._transformer_input.value, *layers]
        return {
            stream: hidden[k].float().cpu().numpy() for stream, k in zip(self.streams, self._layers)
        }

    def _keep_transformer_input(self, module, args):
        # Thread-local: the thread pool runs several forward passes through this module at once.
        self._transformer_input.value = args[0]

    @contextmanager
    def _parallel(self) -> Iterator:
        """On CPU: one single-threaded forward pass per core (restoring torch's thread count)."""
        if self._device.type != "cpu":
            yield _SerialMap()
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                yield pool
        finally:
            torch.set_num_threads(threads)


class _SerialMap:
    """GPU path: the device already runs each batch in parallel."""

    @staticmethod
    def map(function, items):
        return map(function, items)


def _stacked(tensors: list[torch.Tensor], batches: list[list[int]]) -> Iterator[torch.Tensor]:
    for indices in batches:
        yield torch.stack([tensors[i] for i in indices])


def _equal_length_batches(tensors: list[torch.Tensor], max_samples: int) -> list[list[int]]:
    """Indices grouped by identical length, each group cut to at most ``max_samples`` per batch."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, tensor in enumerate(tensors):
        by_length[tensor.shape[0]].append(index)
    batches = []
    for length, indices in sorted(by_length.items()):
        size = max(1, max_samples // length)
        batches += [indices[start : start + size] for start in range(0, len(indices), size)]
    return batches


def _prepare(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no gradients, weight norm of the positional convolution computed once."""
    conv = model.encoder.transformer.pos_conv_embed.conv
    if parametrize.is_parametrized(conv, "weight"):
        parametrize.remove_parametrizations(conv, "weight")
    return model.eval().requires_grad_(False)


def _selected_layers(layers, num_layers: int) -> list[int]:
    if layers is None:
        return list(range(num_layers + 1))
    chosen = sorted(set(int(k) for k in layers))
    if not chosen or chosen[0] < 0 or chosen[-1] > num_layers:
        raise ConfigError(
            f"features.ssl.layers={list(layers)}: expected hidden layers in 0..{num_layers} "
            "(0 = transformer input)"
        )
    return chosen


def _receptive_field(conv_layers) -> int:
    """Samples needed for one output frame of the conv front end (400 = 25 ms for these models)."""
    field, stride = 1, 1
    for _, kernel, layer_stride in conv_layers:
        field += (kernel - 1) * stride
        stride *= layer_stride
    return field
