"""Keras → .tflite conversion (float32 and full-integer int8), deterministic and quiet.

TensorFlow is imported lazily inside the functions: importing it costs seconds and
hundreds of MB, and the rest of tinymeter (parsing, lowering, emulation) must work
without it. Only the model zoo and users converting their own Keras models need it.

Determinism matters because converted models are cached by a hash of their recipe:
the same recipe must give the same bytes, so the representative dataset is either
passed in or drawn from a seeded ``numpy.random.Generator``, never from global state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tinymeter.core.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

log = logging.getLogger(__name__)

Quantize = Literal["int8", "float32"]
IODType = Literal["int8", "float32"]

#: Signature of a sampler that draws ``n`` calibration samples of ``shape`` (batch
#: dimension excluded) from ``rng``. Used to make data that resembles the model's real
#: input range (images in [0, 1], MFCC-like features, ...), because int8 calibration
#: ranges are taken from it.
InputSampler = Callable[[np.random.Generator, int, tuple[int, ...]], np.ndarray]

DEFAULT_NUM_SAMPLES = 32


def import_tf() -> Any:
    """Import TensorFlow with its C++ and Python logging turned down.

    ``TF_CPP_MIN_LOG_LEVEL`` only works if set before the first import, hence this
    single entry point. ``setdefault`` keeps a user's explicit choice (for debugging).
    Every TensorFlow path (zoo, conversion, seeding, NAS) comes through here, so an
    install without the ``tf`` extra gets one error naming the fix, not a traceback.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras  # noqa: F401  (the zoo and seeding need it next to tensorflow)
        import tensorflow as tf
    except ImportError as exc:
        raise MissingDependencyError(
            f"this needs TensorFlow ({exc}); install it with `pip install 'tinymeter[tf]'` "
            "(parsing, estimating and measuring .tflite files work without it)") from None

    tf.get_logger().setLevel(logging.ERROR)
    return tf


def seed_everything(seed: int) -> None:
    """Seed TF, Keras, numpy's and Python's global generators.

    The zoo sets every weight from an explicit ``numpy.random.Generator``, so this is
    belt and braces for anything inside Keras/TF that still draws from global state
    (initializers of layers we do not overwrite, converter internals).
    """
    tf = import_tf()
    import keras

    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)


def normal_sampler(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal samples: a neutral default for features of unknown range."""
    return rng.standard_normal((n, *shape)).astype(np.float32)


def make_representative_data(
    input_shapes: Sequence[tuple[int, ...]],
    *,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    sampler: InputSampler | None = None,
) -> list[np.ndarray]:
    """Draw a calibration set: one ``(num_samples, *shape)`` float32 array per input.

    Inputs are drawn in order from one generator seeded by ``seed`` so the set is
    reproducible across processes and machines.
    """
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    draw = sampler or normal_sampler
    return [np.asarray(draw(rng, num_samples, tuple(s)), dtype=np.float32) for s in input_shapes]


def _input_shapes(model: keras.Model) -> list[tuple[int, ...]]:
    """Per-input shapes without the batch dimension; all dims must be known."""
    shapes = []
    for t in model.inputs:
        dims = tuple(t.shape[1:])
        if any(d is None for d in dims):
            raise ConfigError(
                f"model input {t.name!r} has unknown dimensions {dims}; "
                "give it a fully defined shape to convert it for a microcontroller"
            )
        shapes.append(tuple(int(d) for d in dims))
    return shapes


def _normalize_data(
    data: np.ndarray | Sequence[np.ndarray], shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """Accept one array (single-input model) or one array per input; check shapes."""
    arrays = [data] if isinstance(data, np.ndarray) else list(data)
    if len(arrays) != len(shapes):
        raise ConfigError(
            f"representative data has {len(arrays)} arrays but the model has "
            f"{len(shapes)} inputs"
        )
    out = []
    for i, (a, s) in enumerate(zip(arrays, shapes, strict=True)):
        a = np.asarray(a, dtype=np.float32)
        if a.shape[1:] != s or a.shape[0] < 1:
            raise ConfigError(
                f"representative data for input {i} has shape {a.shape}, "
                f"expected (N>=1, {', '.join(map(str, s))})"
            )
        out.append(a)
    if len({a.shape[0] for a in out}) != 1:
        raise ConfigError("representative data arrays must have the same number of samples")
    return out


def _flush_std_streams() -> None:
    """Flush Python's buffered stdout/stderr so nothing crosses an fd redirection."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _restore_fds(saved: Sequence[tuple[int, int]]) -> None:
    """Point each redirected fd back at its saved duplicate and close the duplicate."""
    for fd, dup in saved:
        os.dup2(dup, fd)
        os.close(dup)


@contextlib.contextmanager
def _captured_native_output() -> Iterator[None]:
    """Swallow the converter's stdout/stderr chatter at the file-descriptor level.

    The MLIR converter and Keras' SavedModel export print directly from C++ and via
    ``print`` ("Saved artifact at ...", "fully_quantize: 0 ..."), which would bury a
    CLI's output. We redirect fds 1 and 2 to a temp file and replay it at DEBUG level,
    so nothing is lost for someone debugging with ``-v``.
    """
    _flush_std_streams()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved: list[tuple[int, int]] = []
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
        except OSError:  # no real fds (embedded interpreter): just run unredirected
            _restore_fds(saved)
            yield
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            _flush_std_streams()
            _restore_fds(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("converter output:\n%s", text)


def convert_keras(
    model: keras.Model,
    *,
    quantize: Quantize = "int8",
    io_dtype: IODType = "int8",
    representative_data: np.ndarray | Sequence[np.ndarray] | None = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    sampler: InputSampler | None = None,
) -> bytes:
    """Convert a Keras model to a .tflite flatbuffer and return its bytes.

    * ``quantize="float32"``: plain float model (``io_dtype`` must be ``"float32"``).
    * ``quantize="int8"``: full-integer post-training quantization restricted to
      ``TFLITE_BUILTINS_INT8`` (the converter fails rather than leaving float ops, which
      the firmware runtime could not run). ``io_dtype="int8"`` (default) gives int8
      input/output tensors like the MLPerf Tiny references; ``"float32"`` keeps float
      I/O, adding QUANTIZE/DEQUANTIZE ops at the edges.

    The calibration set is ``representative_data`` (one array, or one per input, with
    a leading sample axis) or, if omitted, ``num_samples`` samples drawn by ``sampler``
    (default standard normal) from a generator seeded with ``seed``.
    """
    if quantize not in ("int8", "float32"):
        raise ConfigError(f"unknown quantize {quantize!r}; valid: 'int8', 'float32'")
    if io_dtype not in ("int8", "float32"):
        raise ConfigError(f"unknown io_dtype {io_dtype!r}; valid: 'int8', 'float32'")
    if quantize == "float32" and io_dtype != "float32":
        # A float model has float I/O by construction; silently ignoring the request
        # would hand the caller a model whose input type is not what they asked for.
        io_dtype = "float32"

    tf = import_tf()
    shapes = _input_shapes(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)

    if quantize == "int8":
        if representative_data is None:
            data = make_representative_data(
                shapes, num_samples=num_samples, seed=seed, sampler=sampler
            )
        else:
            data = _normalize_data(representative_data, shapes)
        count = data[0].shape[0]

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for i in range(count):
                yield [a[i : i + 1] for a in data]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_dtype == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8

    log.debug(
        "converting %s: quantize=%s io=%s inputs=%s", model.name, quantize, io_dtype, shapes
    )
    with _captured_native_output():
        result = converter.convert()
    return bytes(result)


def convert_float32(model: keras.Model) -> bytes:
    """Float32 .tflite of ``model`` (reference for accuracy comparisons)."""
    return convert_keras(model, quantize="float32", io_dtype="float32")


def convert_int8(
    model: keras.Model,
    *,
    io_dtype: IODType = "int8",
    representative_data: np.ndarray | Sequence[np.ndarray] | None = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    sampler: InputSampler | None = None,
) -> bytes:
    """Full-integer int8 .tflite of ``model``; see :func:`convert_keras`."""
    return convert_keras(
        model,
        quantize="int8",
        io_dtype=io_dtype,
        representative_data=representative_data,
        num_samples=num_samples,
        seed=seed,
        sampler=sampler,
    )
