"""Model zoo: named Keras architectures, converted to .tflite and cached.

Why a zoo: tinymeter needs realistic workloads without shipping trained weights or
datasets. Latency, memory and energy depend on the *architecture* (layer shapes, op
types, quantization parameters), not on what the weights learned, so each model here
is a faithful copy of a reference architecture (MLPerf Tiny DS-CNN, MobileNetV1-VWW,
ResNet-8, FC autoencoder, plus LeNet-5, ResNet-20 and synthetic sweeps) with random
weights. The weights are made *non-degenerate* so the int8 model behaves like a
trained one: kernels are He-initialised, biases and BatchNorm affine parameters are
random, and BatchNorm moving statistics are set from a calibration batch
(data-dependent init), so every activation is roughly zero-mean/unit-variance before
its ReLU and int8 activations spread over the quantized range instead of collapsing
to a few codes.

The architectures mirror the MLPerf Tiny reference training code so that the int8
conversions have the same op set as the reference .tflite files: BatchNorm is folded
into the preceding conv/dense, ReLU is fused, global pooling is AVERAGE_POOL_2D +
RESHAPE (not MEAN), and the classifier is FULLY_CONNECTED + SOFTMAX.

Conversion results are cached under ``~/.cache/tinymeter/models/`` (see
:func:`resolve_cache_dir`), keyed by a hash of the full recipe, and written atomically.

TensorFlow is imported only when a model actually has to be built: listing models,
validating parameters and cache hits do not import it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinymeter.core.errors import ConfigError, TinymeterError
from tinymeter.core.files import atomic_write
from tinymeter.models import convert as _convert
from tinymeter.models import digits
from tinymeter.models.lstm_kws import lstm_kws_tflite

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

log = logging.getLogger(__name__)

#: Bump whenever a builder, the weight initialisation or the conversion recipe changes
#: in a way that changes the produced bytes: it is part of the cache key, so stale
#: cached models are never returned.
ZOO_VERSION = 1

#: Model of the product demo (MLPerf Tiny keyword spotting).
DEFAULT_MODEL = "ds_cnn_kws"

#: Calibration-set size for the BatchNorm statistics and the int8 ranges. Small enough
#: to keep builds fast, large enough that per-channel statistics are stable.
_CALIBRATION_SAMPLES = 32

_VALID_QUANTIZE = ("int8", "float32")
_VALID_IO = ("int8", "float32")


# --------------------------------------------------------------------------- helpers


def _keras() -> Any:
    """Import Keras (and TensorFlow, quietly) only when a model is really built."""
    try:
        _convert.import_tf()
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TinymeterError(
            f"building zoo models needs TensorFlow ({exc}); install it with "
            "`pip install tinymeter[tf]`"
        ) from exc
    return keras


class _Namer:
    """Deterministic layer names, local to one build.

    Keras' automatic names come from process-global counters ("conv2d_7"), and the
    names end up in the .tflite. Naming every layer explicitly makes the bytes of a
    model independent of what else was built earlier in the process, which the
    content-hash cache relies on.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __call__(self, kind: str) -> str:
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        return f"{kind}_{n}"


def uniform01_sampler(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Images normalised to [0, 1], as the MLPerf Tiny vision references expect."""
    return rng.random((n, *shape), dtype=np.float32)


def _check_positive(**values: int) -> None:
    """Builder arguments that are sizes must be >= 1 (else Keras fails obscurely)."""
    for key, value in values.items():
        if value < 1:
            raise ConfigError(f"parameter {key!r} must be >= 1, got {value}")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"parameter {key!r} must be one of {list(choices)}, got {value!r}")


def _initialize(model: keras.Model, sampler: _convert.InputSampler, seed: int) -> keras.Model:
    """Give ``model`` non-degenerate random weights, deterministically from ``seed``.

    Every variable is overwritten from one ``numpy.random.Generator`` (so the result
    does not depend on Keras' global RNG state), then BatchNorm moving statistics are
    set to the statistics of a calibration batch: with momentum 0, one forward pass in
    training mode stores each BN layer's batch mean/variance, computed on inputs that
    were themselves normalised by the earlier BN layers, i.e. exactly what inference
    will see.
    """
    keras = _keras()
    layers = keras.layers
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for var in layer.weights:
            leaf = var.path.rsplit("/", 1)[-1]
            shape = tuple(var.shape)
            if leaf in ("kernel", "depthwise_kernel"):
                if isinstance(layer, layers.DepthwiseConv2D):
                    fan_in = shape[0] * shape[1]
                else:
                    fan_in = int(np.prod(shape[:-1]))
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            elif leaf == "bias":
                value = rng.uniform(-0.1, 0.1, shape)
            elif leaf == "gamma":
                value = rng.uniform(0.5, 1.5, shape)
            elif leaf == "beta":
                # Mostly positive shift before ReLU keeps most units alive.
                value = rng.uniform(-0.25, 0.5, shape)
            elif leaf == "moving_mean":
                value = np.zeros(shape)
            elif leaf == "moving_variance":
                value = np.ones(shape)
            else:  # pragma: no cover - a layer type the zoo does not use
                raise TinymeterError(f"zoo: no initialiser for variable {var.path!r}")
            var.assign(value.astype(np.float32))

    bns = [la for la in model.layers if isinstance(la, layers.BatchNormalization)]
    if bns:
        shapes = [tuple(int(d) for d in t.shape[1:]) for t in model.inputs]
        calib_rng = np.random.default_rng(seed + 1)
        batch = [sampler(calib_rng, _CALIBRATION_SAMPLES, s) for s in shapes]
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.momentum = 0.0
        try:
            model(batch if len(batch) > 1 else batch[0], training=True)
        finally:
            for bn, m in zip(bns, momenta, strict=True):
                bn.momentum = m
    return model


# ------------------------------------------------------------------ architectures
#
# Each public builder returns a Keras model with initialised weights. Its keyword
# parameters (except ``seed``) are the model's zoo parameters: build_tflite() derives
# the valid keys, defaults and types from the signature.


def _conv_bn_relu(
    x: Any,
    name: _Namer,
    filters: int,
    kernel: int | tuple[int, int],
    strides: int | tuple[int, int] = 1,
) -> Any:
    keras = _keras()
    L = keras.layers
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                 name=name("conv"))(x)
    x = L.BatchNormalization(name=name("bn"))(x)
    return L.ReLU(name=name("relu"))(x)


def _dw_bn_relu(x: Any, name: _Namer, strides: int = 1) -> Any:
    keras = _keras()
    L = keras.layers
    x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                          name=name("dwconv"))(x)
    x = L.BatchNormalization(name=name("bn"))(x)
    return L.ReLU(name=name("relu"))(x)


def _flatten(x: Any, name: _Namer) -> Any:
    """Flatten to (batch, features) as one RESHAPE with constant shape [-1, features].

    keras.layers.Flatten on a dynamic batch converts to SHAPE + STRIDED_SLICE + PACK +
    RESHAPE, and a static batch of 1 makes the converter drop the RESHAPE altogether;
    neither matches the MLPerf Tiny references (a single RESHAPE to [-1, n]).
    """
    keras = _keras()
    features = int(np.prod([int(d) for d in x.shape[1:]]))
    return keras.layers.Lambda(
        lambda t: keras.ops.reshape(t, (-1, features)),
        output_shape=(features,),
        name=name("flatten"),
    )(x)


def _classifier(x: Any, name: _Namer, num_classes: int) -> Any:
    """Global average pool as AVERAGE_POOL_2D + RESHAPE, then FC + SOFTMAX.

    A pool window equal to the feature map (rather than GlobalAveragePooling2D, which
    converts to MEAN) reproduces the op set of the MLPerf Tiny references.
    """
    keras = _keras()
    L = keras.layers
    hw = (int(x.shape[1]), int(x.shape[2]))
    x = L.AveragePooling2D(pool_size=hw, name=name("avgpool"))(x)
    x = _flatten(x, name)
    x = L.Dense(num_classes, name=name("dense"))(x)
    return L.Softmax(name=name("softmax"))(x)


def ds_cnn_kws(
    *,
    filters: int = 64,
    blocks: int = 4,
    num_classes: int = 12,
    input_shape: tuple[int, int] = (49, 10),
    seed: int = 0,
) -> keras.Model:
    """MLPerf Tiny keyword-spotting DS-CNN (2.66 M MACs at the defaults).

    Input: 49 frames x 10 MFCCs x 1. Conv 10x4 stride 2 (``filters``), then ``blocks``
    x (depthwise 3x3 + pointwise 1x1), each followed by BN + ReLU, average pool over the
    whole map, dense ``num_classes``, softmax. Dropout of the reference is omitted: it is
    the identity at inference and absent from the .tflite anyway.
    """
    _check_positive(filters=filters, blocks=blocks, num_classes=num_classes,
                    h=input_shape[0], w=input_shape[1])
    keras = _keras()
    name = _Namer()
    inp = keras.Input(shape=(*input_shape, 1), name="input")
    x = _conv_bn_relu(inp, name, filters, (10, 4), strides=2)
    for _ in range(blocks):
        x = _dw_bn_relu(x, name)
        x = _conv_bn_relu(x, name, filters, 1)
    out = _classifier(x, name, num_classes)
    model = keras.Model(inp, out, name="ds_cnn_kws")
    return _initialize(model, _convert.normal_sampler, seed)


# MobileNetV1 body: (pointwise filters at alpha=1, depthwise stride).
_MOBILENET_V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def mobilenet_v1_vww(
    *,
    alpha: float = 0.25,
    input_hw: int = 96,
    num_classes: int = 2,
    seed: int = 0,
) -> keras.Model:
    """MobileNetV1 (width ``alpha``) for MLPerf Tiny visual wake words (7.49 M MACs).

    Conv 3x3 stride 2 then 13 depthwise-separable blocks, all SAME padding with
    BN + ReLU (not ReLU6, as in the MLPerf reference), average pool, dense, softmax.
    """
    _check_positive(input_hw=input_hw, num_classes=num_classes)
    if alpha <= 0:
        raise ConfigError(f"parameter 'alpha' must be > 0, got {alpha}")
    keras = _keras()
    name = _Namer()

    def width(c: int) -> int:
        return max(1, int(c * alpha))

    inp = keras.Input(shape=(input_hw, input_hw, 3), name="input")
    x = _conv_bn_relu(inp, name, width(32), 3, strides=2)
    for filters, stride in _MOBILENET_V1_BLOCKS:
        x = _dw_bn_relu(x, name, strides=stride)
        x = _conv_bn_relu(x, name, width(filters), 1)
    out = _classifier(x, name, num_classes)
    model = keras.Model(inp, out, name="mobilenet_v1_vww")
    return _initialize(model, uniform01_sampler, seed)


def _cifar_resnet(
    model_name: str,
    blocks_per_stage: int,
    base_filters: int,
    input_hw: int,
    num_classes: int,
    seed: int,
) -> keras.Model:
    """ResNet v1 for CIFAR: 3 stages of basic blocks at 1x, 2x, 4x ``base_filters``.

    As in the MLPerf Tiny ResNet-8 reference: the first block of stages 2 and 3 has
    stride 2 and a 1x1 stride-2 projection shortcut without BN; the add is followed by
    ReLU (fused into ADD by the converter).
    """
    _check_positive(blocks_per_stage=blocks_per_stage, base_filters=base_filters,
                    input_hw=input_hw, num_classes=num_classes)
    keras = _keras()
    L = keras.layers
    name = _Namer()
    inp = keras.Input(shape=(input_hw, input_hw, 3), name="input")
    x = _conv_bn_relu(inp, name, base_filters, 3)
    for stage in range(3):
        filters = base_filters * 2**stage
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            y = _conv_bn_relu(x, name, filters, 3, strides=stride)
            y = L.Conv2D(filters, 3, padding="same", use_bias=False, name=name("conv"))(y)
            y = L.BatchNormalization(name=name("bn"))(y)
            if stride != 1 or int(x.shape[-1]) != filters:
                x = L.Conv2D(filters, 1, strides=stride, padding="same",
                             name=name("shortcut"))(x)
            x = L.Add(name=name("add"))([x, y])
            x = L.ReLU(name=name("relu"))(x)
    out = _classifier(x, name, num_classes)
    model = keras.Model(inp, out, name=model_name)
    return _initialize(model, uniform01_sampler, seed)


def resnet8(
    *,
    base_filters: int = 16,
    input_hw: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> keras.Model:
    """MLPerf Tiny image-classification ResNet-8 for CIFAR-10 (12.5 M MACs)."""
    return _cifar_resnet("resnet8", 1, base_filters, input_hw, num_classes, seed)


def resnet20(
    *,
    base_filters: int = 16,
    input_hw: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> keras.Model:
    """CIFAR ResNet-20 (He et al. 2016, 3 blocks per stage, ~41 M MACs).

    Uses 1x1 projection shortcuts (option B) instead of zero-padded identity
    (option A), which would need PAD/CONCATENATION/STRIDED_SLICE ops.
    """
    return _cifar_resnet("resnet20", 3, base_filters, input_hw, num_classes, seed)


def fc_autoencoder(
    *,
    input_dim: int = 640,
    hidden: int = 128,
    hidden_layers: int = 4,
    bottleneck: int = 8,
    seed: int = 0,
) -> keras.Model:
    """MLPerf Tiny anomaly-detection dense autoencoder (0.26 M MACs).

    ``hidden_layers`` x (dense ``hidden`` + BN + ReLU), bottleneck dense + BN + ReLU,
    ``hidden_layers`` x (dense ``hidden`` + BN + ReLU), linear dense back to
    ``input_dim``: 10 FULLY_CONNECTED ops at the defaults.
    """
    _check_positive(input_dim=input_dim, hidden=hidden, hidden_layers=hidden_layers,
                    bottleneck=bottleneck)
    keras = _keras()
    L = keras.layers
    name = _Namer()

    def dense_bn_relu(x: Any, units: int) -> Any:
        x = L.Dense(units, use_bias=False, name=name("dense"))(x)
        x = L.BatchNormalization(name=name("bn"))(x)
        return L.ReLU(name=name("relu"))(x)

    inp = keras.Input(shape=(input_dim,), name="input")
    x = inp
    for _ in range(hidden_layers):
        x = dense_bn_relu(x, hidden)
    x = dense_bn_relu(x, bottleneck)
    for _ in range(hidden_layers):
        x = dense_bn_relu(x, hidden)
    out = L.Dense(input_dim, name=name("dense"))(x)
    model = keras.Model(inp, out, name="fc_autoencoder")
    return _initialize(model, _convert.normal_sampler, seed)


def lenet(
    *,
    input_hw: int = 28,
    in_channels: int = 1,
    num_classes: int = 10,
    pool: str = "max",
    seed: int = 0,
) -> keras.Model:
    """LeNet-5 (conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, classes).

    On 28x28 (MNIST) the first conv uses SAME padding, on 32x32 VALID, so both give the
    classic 28x28x6 → 14 → 10x10x16 → 5x5x16 = 400 features. ``pool`` selects
    MAX_POOL_2D (default, exercising that kernel) or AVERAGE_POOL_2D (the original).
    """
    _check_positive(input_hw=input_hw, in_channels=in_channels, num_classes=num_classes)
    _check_choice("pool", pool, ("max", "avg"))
    if input_hw < 16:
        raise ConfigError(f"parameter 'input_hw' must be >= 16 for LeNet-5, got {input_hw}")
    keras = _keras()
    L = keras.layers
    name = _Namer()
    Pool = L.MaxPooling2D if pool == "max" else L.AveragePooling2D
    inp = keras.Input(shape=(input_hw, input_hw, in_channels), name="input")
    pad = "same" if input_hw < 32 else "valid"
    x = L.Conv2D(6, 5, padding=pad, activation="relu", name=name("conv"))(inp)
    x = Pool(2, name=name("pool"))(x)
    x = L.Conv2D(16, 5, padding="valid", activation="relu", name=name("conv"))(x)
    x = Pool(2, name=name("pool"))(x)
    x = _flatten(x, name)
    x = L.Dense(120, activation="relu", name=name("dense"))(x)
    x = L.Dense(84, activation="relu", name=name("dense"))(x)
    x = L.Dense(num_classes, name=name("dense"))(x)
    out = L.Softmax(name=name("softmax"))(x)
    model = keras.Model(inp, out, name="lenet")
    return _initialize(model, uniform01_sampler, seed)


def dense_sweep(
    width: int = 64,
    depth: int = 1,
    *,
    input_dim: int = 0,
    seed: int = 0,
) -> keras.Model:
    """``depth`` FULLY_CONNECTED(+ReLU) layers of ``width`` units: cost-model sweeps.

    ``input_dim`` 0 means "same as width" (square layers).
    """
    _check_positive(width=width, depth=depth)
    keras = _keras()
    L = keras.layers
    name = _Namer()
    inp = keras.Input(shape=(input_dim or width,), name="input")
    x = inp
    for _ in range(depth):
        x = L.Dense(width, activation="relu", name=name("dense"))(x)
    model = keras.Model(inp, x, name="dense_sweep")
    return _initialize(model, _convert.normal_sampler, seed)


def conv_sweep(
    channels: int = 16,
    kernel: int = 3,
    depth: int = 1,
    input_hw: int = 16,
    *,
    in_channels: int = 0,
    stride: int = 1,
    seed: int = 0,
) -> keras.Model:
    """``depth`` CONV_2D(+ReLU) layers, ``kernel`` x ``kernel``, SAME padding.

    ``in_channels`` 0 means "same as channels"; ``stride`` applies to every layer.
    """
    _check_positive(channels=channels, kernel=kernel, depth=depth, input_hw=input_hw,
                    stride=stride)
    keras = _keras()
    L = keras.layers
    name = _Namer()
    inp = keras.Input(shape=(input_hw, input_hw, in_channels or channels),
                      name="input")
    x = inp
    for _ in range(depth):
        x = L.Conv2D(channels, kernel, strides=stride, padding="same", activation="relu",
                     name=name("conv"))(x)
    model = keras.Model(inp, x, name="conv_sweep")
    return _initialize(model, _convert.normal_sampler, seed)


def depthwise_sweep(
    channels: int = 16,
    kernel: int = 3,
    depth: int = 1,
    input_hw: int = 16,
    *,
    stride: int = 1,
    depth_multiplier: int = 1,
    seed: int = 0,
) -> keras.Model:
    """``depth`` DEPTHWISE_CONV_2D(+ReLU) layers, ``kernel`` x ``kernel``, SAME padding.

    With ``depth_multiplier`` m the channel count grows m-fold per layer.
    """
    _check_positive(channels=channels, kernel=kernel, depth=depth, input_hw=input_hw,
                    stride=stride, depth_multiplier=depth_multiplier)
    keras = _keras()
    L = keras.layers
    name = _Namer()
    inp = keras.Input(shape=(input_hw, input_hw, channels), name="input")
    x = inp
    for _ in range(depth):
        x = L.DepthwiseConv2D(kernel, strides=stride, padding="same",
                              depth_multiplier=depth_multiplier, activation="relu",
                              name=name("dwconv"))(x)
    model = keras.Model(inp, x, name="depthwise_sweep")
    return _initialize(model, _convert.normal_sampler, seed)


def digits_cnn(
    *,
    width: int = 16,
    depth: int = 2,
    kernel: int = 3,
    epochs: int = 15,
    seed: int = 0,
) -> keras.Model:
    """Small CNN trained on scikit-learn's 8x8 digits: real weights, meaningful accuracy.

    The architecture of the NAS sweep's family (``apps.sweep``): ``depth`` conv blocks
    of ``width`` channels (the first at stride 1, then stride 2), a conv classifier
    over the remaining map, softmax. Trained with Adam for ``epochs`` on the
    deterministic 75 % split of the 1797 digits that ships with scikit-learn (no
    download); calibrated with real training images (``digits_sampler``).
    """
    _check_positive(width=width, depth=depth, kernel=kernel, epochs=epochs)

    candidate = digits.Candidate(depth=depth, kernel=kernel, width=width)
    model, _ = digits.build_keras(candidate, head="softmax", seed=seed)
    accuracy = digits.train(model, digits.load_digits_split(seed=seed),
                         digits.TrainRecipe(epochs=epochs, seed=seed))
    log.info("digits_cnn trained: float test accuracy %.1f%%", 100 * accuracy)
    return model


def digits_sampler(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Calibration samples drawn from the digits training split (real input ranges)."""
    x = digits.load_digits_split().x_train
    idx = rng.choice(len(x), size=n, replace=n > len(x))
    return x[idx].reshape((n, *shape)).astype(np.float32)


def lstm_kws(frames: int = 49, features: int = 10, units: int = 64, num_classes: int = 12, *,
             quantize: str = "int8", seed: int = 0) -> bytes:
    """LSTM keyword spotter: UNIDIRECTIONAL_SEQUENCE_LSTM over 49x10 MFCC frames, last step, dense softmax.

    Written as .tflite directly (``models/lstm_kws.py``): Keras 3's LSTM converts
    to a WHILE loop, not the fused LSTM operator TFLM runs.
    """
    return lstm_kws_tflite(frames, features, units, num_classes, quantize, seed)


# ------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class ZooEntry:
    """A registered architecture: its builder, calibration input and parameter specs.

    ``defaults`` is derived from the builder's signature so the two can never
    disagree; a parameter's accepted type is the type of its default.
    """

    name: str
    builder: Callable[..., Any]
    sampler: _convert.InputSampler
    defaults: Mapping[str, Any]
    summary: str
    #: dataset the weights are trained on; "" = random weights (latency/memory only)
    trained_on: str = ""
    #: the builder returns .tflite bytes itself (takes ``quantize``) instead of a
    #: Keras model for the converter
    direct: bool = False


def _entry(builder: Callable[..., Any], sampler: _convert.InputSampler,
           trained_on: str = "", direct: bool = False) -> ZooEntry:
    sig = inspect.signature(builder)
    defaults = {
        k: p.default for k, p in sig.parameters.items()
        if k not in ("seed", "quantize") and p.default is not inspect.Parameter.empty
    }
    summary = (inspect.getdoc(builder) or "").splitlines()[0]
    return ZooEntry(builder.__name__, builder, sampler, types.MappingProxyType(defaults),
                    summary, trained_on, direct)


# Read-only: built once at import from the builders above, never mutated.
_REGISTRY: Mapping[str, ZooEntry] = types.MappingProxyType({
    e.name: e for e in (
        _entry(ds_cnn_kws, _convert.normal_sampler),
        _entry(mobilenet_v1_vww, uniform01_sampler),
        _entry(resnet8, uniform01_sampler),
        _entry(fc_autoencoder, _convert.normal_sampler),
        _entry(lenet, uniform01_sampler),
        _entry(resnet20, uniform01_sampler),
        _entry(dense_sweep, _convert.normal_sampler),
        _entry(conv_sweep, _convert.normal_sampler),
        _entry(depthwise_sweep, _convert.normal_sampler),
        _entry(digits_cnn, digits_sampler, trained_on="scikit-learn digits"),
        _entry(lstm_kws, _convert.normal_sampler, direct=True),
    )
})


def list_models() -> list[str]:
    """Names of all zoo models, in registry order (MLPerf Tiny first, sweeps last)."""
    return list(_REGISTRY)


def get_entry(name: str) -> ZooEntry:
    """Registry entry for ``name``; ConfigError naming the valid models otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown zoo model {name!r}; valid models: {', '.join(_REGISTRY)}"
        ) from None


def default_params(name: str) -> dict[str, Any]:
    """Parameter names and default values of zoo model ``name``."""
    return dict(get_entry(name).defaults)


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type of ``default``; normalise sequences to tuples."""
    where = f"zoo model {name!r} parameter {key!r}"
    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            raise ConfigError(f"{where} must be {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, (int, np.integer)):
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float, np.integer, np.floating)):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, tuple):
        if (isinstance(value, (list, tuple)) and len(value) == len(default)
                and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                        for v in value)):
            return tuple(int(v) for v in value)
        raise ConfigError(
            f"{where} must be a sequence of {len(default)} ints, got {value!r}"
        )
    raise ConfigError(f"{where} must be {type(default).__name__}, got {value!r}")


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``name`` overridden by ``params``, validated and normalised.

    Unknown keys raise ConfigError naming the key and the valid ones, so a typo never
    silently builds the default model. Resolution makes ``{}`` and an explicit copy of
    the defaults hash to the same cache entry.
    """
    entry = get_entry(name)
    params = dict(params or {})
    for key in params:
        if key not in entry.defaults:
            valid = ", ".join(entry.defaults) or "(none)"
            raise ConfigError(
                f"unknown parameter {key!r} for zoo model {name!r}; valid parameters: {valid}"
            )
    resolved = dict(entry.defaults)
    for key, value in params.items():
        resolved[key] = _coerce(name, key, value, entry.defaults[key])
    return resolved


def build_keras(name: str, params: Mapping[str, Any] | None = None, *, seed: int = 0
                ) -> keras.Model:
    """Build zoo model ``name`` as an initialised Keras model (imports TensorFlow)."""
    entry = get_entry(name)
    if entry.direct:
        raise ConfigError(f"zoo model {name!r} is written as .tflite directly; it has no Keras "
                          "model (use build_tflite)")
    resolved = resolve_params(name, params)
    # No keras.backend.clear_session(): it would reset the caller's Keras state, and
    # explicit layer names already make the bytes independent of earlier builds.
    _convert.seed_everything(seed)
    return entry.builder(**resolved, seed=seed)


# -------------------------------------------------------------------------- cache


def resolve_cache_dir(override: Path | str | None = None) -> Path:
    """Directory of cached zoo models.

    Precedence: ``override`` (used as is) > ``$TINYMETER_CACHE/models`` >
    ``$XDG_CACHE_HOME/tinymeter/models`` > ``~/.cache/tinymeter/models``.
    ``TINYMETER_CACHE`` names tinymeter's cache *root* so other components (firmware
    builds) can share it.
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("TINYMETER_CACHE")
    if env:
        return Path(env).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "tinymeter" / "models"


def _tensorflow_version() -> str:
    """Installed TF version without importing TF (converter output depends on it)."""
    for dist in ("tensorflow-cpu", "tensorflow", "tf-nightly", "tensorflow-macos"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "none"


def cache_key(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    quantize: str = "int8",
    io_dtype: str = "int8",
    seed: int = 0,
) -> str:
    """Hex SHA-256 of everything that determines the bytes of a zoo .tflite."""
    recipe = {
        "name": name,
        "params": resolve_params(name, params),
        "quantize": quantize,
        "io_dtype": io_dtype,
        "seed": seed,
        "zoo_version": ZOO_VERSION,
        "tensorflow": _tensorflow_version(),
    }
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def build_tflite(
    name: str,
    *,
    quantize: str = "int8",
    params: Mapping[str, Any] | None = None,
    cache_dir: Path | str | None = None,
    io_dtype: str = "int8",
    seed: int = 0,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """Path of the cached .tflite of zoo model ``name``, building it if needed.

    ``notify`` is told (one line) before a build starts: the first use of a model runs
    TensorFlow for tens of seconds, which should not look like a hang.

    ``quantize``: "int8" (full-integer, the firmware's format) or "float32".
    ``io_dtype``: type of the int8 model's input/output tensors, "int8" (default, like
    the MLPerf Tiny references) or "float32" (adds QUANTIZE/DEQUANTIZE); ignored for
    float32 models. ``params`` override the model's defaults (see
    :func:`default_params`). ``seed`` selects the random weights and calibration data.
    The file name is ``<name>-<quantize>-<hash16>.tflite``.
    """
    if quantize not in _VALID_QUANTIZE:
        raise ConfigError(f"unknown quantize {quantize!r}; valid: {', '.join(_VALID_QUANTIZE)}")
    if io_dtype not in _VALID_IO:
        raise ConfigError(f"unknown io_dtype {io_dtype!r}; valid: {', '.join(_VALID_IO)}")
    if quantize == "float32":
        io_dtype = "float32"
    entry = get_entry(name)
    resolved = resolve_params(name, params)
    key = cache_key(name, resolved, quantize=quantize, io_dtype=io_dtype, seed=seed)
    suffix = quantize if io_dtype == quantize else f"{quantize}-{io_dtype}io"
    path = resolve_cache_dir(cache_dir) / f"{name}-{suffix}-{key[:16]}.tflite"
    if path.is_file() and path.stat().st_size > 0:
        log.debug("zoo cache hit: %s", path)
        return path

    if entry.direct:
        if io_dtype != quantize:
            raise ConfigError(f"zoo model {name!r} has {quantize} input/output only")
        data = entry.builder(**resolved, quantize=quantize, seed=seed)
        atomic_write(path, data)
        log.info("built %s: %d bytes → %s", name, len(data), path)
        return path
    log.info("building zoo model %s (%s, %s)...", name, quantize, _fmt_params(resolved))
    if notify is not None:
        notify(f"building zoo model {name} ({quantize}) with TensorFlow: first use only, "
               f"about 10-30 s; cached in {path.parent}")
    t0 = time.monotonic()
    model = build_keras(name, resolved, seed=seed)
    data = _convert.convert_keras(
        model,
        quantize="int8" if quantize == "int8" else "float32",
        io_dtype="int8" if io_dtype == "int8" else "float32",
        num_samples=_CALIBRATION_SAMPLES,
        seed=seed,
        sampler=entry.sampler,
    )
    atomic_write(path, data)
    log.info("built %s: %d bytes in %.1f s → %s", name, len(data), time.monotonic() - t0, path)
    return path


def _fmt_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def default_model_path(cache_dir: Path | str | None = None,
                       notify: Callable[[str], None] | None = None) -> Path:
    """The product demo's model: the cached int8 DS-CNN, built on first use (~10 s)."""
    return build_tflite(DEFAULT_MODEL, quantize="int8", cache_dir=cache_dir, notify=notify)
