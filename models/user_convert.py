"""The user's own model in: Keras (.keras/.h5) or SavedModel -> .tflite, with accuracy.

Why: a user arrives with a trained Keras model, not a .tflite. ``convert_user_model``
quantizes it the way the firmware runs it (int8, int16x8 or float32) with the
user's calibration data -- or, failing that, a seeded synthetic set and a
warning, since synthetic ranges rarely match real data -- and reports how far the
quantized model's outputs are from the float model's on that same data (run on
the host with TensorFlow Lite), so an accuracy loss is visible before any latency
number is trusted. ``cached_conversion`` lets every command that takes a .tflite
take these formats directly (content-addressed cache next to the zoo's).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinymeter.core.errors import ConfigError
from tinymeter.core.files import atomic_write
from tinymeter.models import convert as _convert
from tinymeter.models import zoo

log = logging.getLogger(__name__)

__all__ = ["ConversionResult", "OutputAccuracy", "cached_conversion", "convert_keras_model",
           "convert_user_model",
           "format_accuracy", "is_convertible", "load_calibration"]

QUANTIZE_CHOICES = ("int8", "int16x8", "float32")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
#: Calibration samples drawn when the user gives none.
SYNTHETIC_SAMPLES = 32
#: Samples the accuracy report runs at most (host TFLite, both models).
ACCURACY_SAMPLES = 200


def is_convertible(path: Path) -> bool:
    """A Keras file or a SavedModel directory (something ``convert`` accepts)."""
    return (path.is_file() and path.suffix.lower() in KERAS_SUFFIXES) or \
        (path.is_dir() and (path / "saved_model.pb").is_file())


@dataclass(frozen=True)
class OutputAccuracy:
    """Quantized vs float outputs of one model output over the calibration samples."""

    output: int
    samples: int
    max_abs_error: float
    mean_abs_error: float
    #: mean abs error / (max - min of the float output): comparable across models
    relative_error: float
    #: fraction of samples whose argmax over the last axis agrees (classifiers), or None
    top1_agreement: float | None


@dataclass
class ConversionResult:
    """The converted model plus what the user should know about it."""

    tflite: bytes
    quantize: str
    synthetic_calibration: bool
    calibration_samples: int
    accuracy: list[OutputAccuracy] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"quantize": self.quantize, "bytes": len(self.tflite),
                "synthetic_calibration": self.synthetic_calibration,
                "calibration_samples": self.calibration_samples,
                "accuracy": [asdict(a) for a in self.accuracy]}


def load_calibration(path: Path) -> list[np.ndarray]:
    """Calibration arrays from ``.npy`` (one input) or ``.npz`` (one array per input, in
    the order of their names: ``arr_0, arr_1, ...`` as ``np.savez`` writes them)."""
    try:
        obj = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read calibration data {path}: {exc}") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            return [np.asarray(obj[k], np.float32) for k in sorted(obj.files)]
    return [np.asarray(obj, np.float32)]


# --------------------------------------------------------------------------- conversion


def _saved_model_shapes(path: Path) -> list[tuple[int, ...]]:
    tf = _convert.import_tf()
    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise ConfigError(f"SavedModel {path} has no serving_default signature")
    specs = sig.structured_input_signature[1]
    shapes = []
    for name in sorted(specs):
        dims = tuple(specs[name].shape[1:])
        if any(d is None for d in dims):
            raise ConfigError(f"SavedModel input {name!r} has unknown dimensions {dims}; "
                              "a microcontroller model needs a fully defined shape")
        shapes.append(tuple(int(d) for d in dims))
    return shapes


def _load(path: Path) -> tuple[Any, list[tuple[int, ...]]]:
    """(a function making a fresh TFLiteConverter, input shapes) for *path*."""
    tf = _convert.import_tf()
    if path.is_dir():
        shapes = _saved_model_shapes(path)
        return (lambda: tf.lite.TFLiteConverter.from_saved_model(str(path))), shapes
    import keras

    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        raise ConfigError(f"cannot load Keras model {path}: {exc}") from None
    shapes = _convert._input_shapes(model)
    return (lambda: tf.lite.TFLiteConverter.from_keras_model(model)), shapes


def _convert_with(make: Any, quantize: str, data: list[np.ndarray] | None) -> bytes:
    tf = _convert.import_tf()
    converter = make()
    if quantize != "float32":
        assert data is not None
        count = data[0].shape[0]

        def representative_dataset() -> Any:
            for i in range(count):
                yield [a[i: i + 1] for a in data]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        if quantize == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int16
    try:
        with _convert._captured_native_output():
            return bytes(converter.convert())
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"TensorFlow Lite conversion ({quantize}) failed: {first}") from None


def convert_user_model(path: Path | str, quantize: str = "int8",
                       calibration: Sequence[np.ndarray] | None = None, *, seed: int = 0,
                       num_samples: int = SYNTHETIC_SAMPLES,
                       accuracy: bool = True) -> ConversionResult:
    """Convert a Keras file or SavedModel directory and measure the quantization error.

    ``calibration``: one float array per model input with a leading sample axis (the
    representative dataset). Without it a seeded standard-normal set is used and a
    warning logged. The accuracy report compares the quantized model with the
    float32 conversion on (up to ``ACCURACY_SAMPLES`` of) the same samples.
    """
    path = Path(path)
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(f"unknown --quantize {quantize!r}; valid: {', '.join(QUANTIZE_CHOICES)}")
    if not is_convertible(path):
        raise ConfigError(f"{path} is not a Keras model file ({'/'.join(KERAS_SUFFIXES)}) "
                          "nor a SavedModel directory")
    make, shapes = _load(path)
    return _convert_loaded(make, shapes, path.name, quantize, calibration, seed, num_samples,
                           accuracy)


def convert_keras_model(model: Any, quantize: str = "int8",
                        calibration: Sequence[np.ndarray] | None = None, *, seed: int = 0,
                        accuracy: bool = True) -> ConversionResult:
    """:func:`convert_user_model` for an in-memory Keras model (no file round trip, so
    models with Python ``Lambda`` layers convert too)."""
    tf = _convert.import_tf()
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(f"unknown quantize {quantize!r}; valid: {', '.join(QUANTIZE_CHOICES)}")
    shapes = _convert._input_shapes(model)
    return _convert_loaded(lambda: tf.lite.TFLiteConverter.from_keras_model(model), shapes,
                           model.name, quantize, calibration, seed, SYNTHETIC_SAMPLES, accuracy)


def _convert_loaded(make: Any, shapes: list[tuple[int, ...]], what: str, quantize: str,
                    calibration: Sequence[np.ndarray] | None, seed: int, num_samples: int,
                    accuracy: bool) -> ConversionResult:
    synthetic = calibration is None
    if calibration is None:
        log.warning("no calibration data given: quantizing %s with %d seeded standard-normal "
                    "samples; ranges from real inputs (--calibration-data FILE.npy) give a more "
                    "accurate model", what, num_samples)
        data = _convert.make_representative_data(shapes, num_samples=num_samples, seed=seed)
    else:
        data = _convert._normalize_data(list(calibration), shapes)
    tflite = _convert_with(make, quantize, data)
    result = ConversionResult(tflite, quantize, synthetic, int(data[0].shape[0]))
    if accuracy and quantize != "float32":
        float_tflite = _convert_with(make, "float32", None)
        result.accuracy = compare_outputs(float_tflite, tflite,
                                          [a[:ACCURACY_SAMPLES] for a in data])
    return result


# --------------------------------------------------------------------------- accuracy


def _run_tflite(model: bytes, data: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs (float, dequantized) of *model* for every sample, via tf.lite.Interpreter."""
    tf = _convert.import_tf()
    with _convert._captured_native_output():  # silences the delegate/deletion chatter
        # reference kernels: the closest host arithmetic to TFLM's (no XNNPACK)
        interp = tf.lite.Interpreter(
            model_content=model,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
        return _invoke_all(interp, data)


def _invoke_all(interp: Any, data: list[np.ndarray]) -> list[np.ndarray]:
    ins, outs = interp.get_input_details(), interp.get_output_details()
    if len(ins) != len(data):
        raise ConfigError(f"model has {len(ins)} inputs, calibration data {len(data)}")
    results: list[list[np.ndarray]] = [[] for _ in outs]
    for i in range(data[0].shape[0]):
        for d, a in zip(ins, data):
            x = a[i: i + 1]
            scale, zp = d["quantization"]
            if np.issubdtype(d["dtype"], np.integer) and scale:
                info = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale) + zp, info.min, info.max)
            interp.set_tensor(d["index"], x.astype(d["dtype"]).reshape(d["shape"]))
        interp.invoke()
        for k, d in enumerate(outs):
            y = interp.get_tensor(d["index"]).astype(np.float64)
            scale, zp = d["quantization"]
            if np.issubdtype(d["dtype"], np.integer) and scale:
                y = (y - zp) * scale
            results[k].append(y)
    return [np.concatenate(r) for r in results]


def compare_outputs(float_model: bytes, quant_model: bytes,
                    data: list[np.ndarray]) -> list[OutputAccuracy]:
    """Per-output error of *quant_model* against *float_model* on *data*."""
    ref, got = _run_tflite(float_model, data), _run_tflite(quant_model, data)
    out = []
    for k, (r, g) in enumerate(zip(ref, got)):
        err = np.abs(g - r)
        span = float(r.max() - r.min()) or 1.0
        top1 = None
        if r.ndim >= 2 and r.shape[-1] > 1:
            top1 = float(np.mean(np.argmax(r, -1) == np.argmax(g, -1)))
        out.append(OutputAccuracy(k, int(r.shape[0]), float(err.max()), float(err.mean()),
                                  float(err.mean()) / span, top1))
    return out


def format_accuracy(result: ConversionResult) -> str:
    """Human-readable accuracy lines for the CLI."""
    source = "synthetic (seeded normal) samples" if result.synthetic_calibration else \
        "calibration samples"
    if not result.accuracy:
        return f"{result.quantize}: no quantization, outputs equal the float model's"
    lines = [f"{result.quantize} vs float32 on {result.accuracy[0].samples} {source} "
             "(host TFLite):"]
    for a in result.accuracy:
        top1 = "" if a.top1_agreement is None else f", top-1 agreement {a.top1_agreement:.1%}"
        lines.append(f"  output {a.output}: max |error| {a.max_abs_error:.4g}, mean "
                     f"{a.mean_abs_error:.4g} ({a.relative_error:.2%} of the output range)"
                     f"{top1}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- cache


def _content_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cached_conversion(path: Path, quantize: str = "int8", cache_dir: Path | None = None) -> Path:
    """The .tflite of a Keras/SavedModel *path*, converted once and cached by content.

    Used where a command needs a .tflite and the user gave a Keras model: int8 with
    synthetic calibration (a warning says so; ``tinymeter convert`` takes real data).
    """
    key = hashlib.sha256(json.dumps([_content_digest(path), quantize,
                                     zoo._tensorflow_version()]).encode()).hexdigest()
    out = zoo.resolve_cache_dir(cache_dir) / f"user-{path.stem}-{quantize}-{key[:16]}.tflite"
    if out.is_file() and out.stat().st_size > 0:
        return out
    log.warning("converting %s to %s .tflite for this command (use `tinymeter convert` to "
                "choose the quantization and calibration data)", path, quantize)
    result = convert_user_model(path, quantize, accuracy=False)
    atomic_write(out, result.tflite)
    return out
