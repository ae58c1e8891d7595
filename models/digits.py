"""The digits CNN family: scikit-learn's 8x8 digits (bundled, offline), the
architecture (depth conv blocks of width channels, a conv classifier), training,
conversion and host accuracy.

Model builders with real weights: the zoo's ``digits_cnn`` and the sweep
(:mod:`tinymeter.apps.sweep`) both build from here. TensorFlow and scikit-learn are
imported inside the functions that need them (optional dependencies, ``pip install
tinymeter[tf]``), so importing this module costs neither.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tinymeter.core.errors import ConfigError, TinymeterError
from tinymeter.models import convert as _convert

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

log = logging.getLogger(__name__)

NUM_CLASSES = 10


INPUT_SHAPE = (8, 8, 1)


@dataclass(frozen=True, order=True)
class Candidate:
    """One architecture of the family; ordering is the deterministic sweep order."""

    depth: int
    kernel: int
    width: int
    family: str = "digits_cnn"

    @property
    def name(self) -> str:
        return f"w{self.width}-d{self.depth}-k{self.kernel}"

    def params(self) -> dict[str, int]:
        return {"width": self.width, "depth": self.depth, "kernel": self.kernel}


@dataclass(frozen=True)
class TrainRecipe:
    """Everything about training that changes the resulting model."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 0.01
    seed: int = 0
    test_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ConfigError(f"test_fraction must be in [0.05, 0.5], got {self.test_fraction}")
        if self.learning_rate <= 0:
            raise ConfigError("learning_rate must be > 0")


@dataclass(frozen=True)
class DigitsData:
    """scikit-learn digits as NHWC float32 in [0, 1], split deterministically."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """The 1797 8x8 digits (bundled with scikit-learn: works offline), stratified split."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TinymeterError(f"the digits dataset needs scikit-learn ({exc}); "
                             "install it with `pip install tinymeter[tf]`") from None
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return DigitsData(x_tr, y_tr, x_te, y_te)


def _spatial_after(depth: int) -> int:
    """Feature-map side after *depth* blocks: block 0 keeps 8x8, blocks 1, 2 stride 2."""
    side = INPUT_SHAPE[0]
    for i in range(depth):
        if i >= 1:
            side = (side + 1) // 2
    return side


def build_keras(candidate: Candidate, head: str = "softmax", seed: int = 0
                ) -> tuple[keras.Model, keras.Model]:
    """(training model, deployment model) of a candidate, sharing layers and weights.

    Blocks: conv k x k, ``width`` channels, ReLU; block 0 at stride 1, later blocks at
    stride 2. The classifier is a VALID conv whose kernel covers the remaining map,
    giving 1x1x10 logits: no pooling op needed, and the last conv's input channel
    count is ``width`` too, so the channel-parity effect reaches every conv layer.
    The training model always ends in softmax; the deployment model per *head*.
    """
    if head not in ("softmax", "logits"):
        raise ConfigError(f"unknown head {head!r}; choose 'softmax' or 'logits'")

    _convert.seed_everything(seed)
    import keras

    L = keras.layers
    inp = keras.Input(shape=INPUT_SHAPE, name="input")
    x = inp
    for i in range(candidate.depth):
        x = L.Conv2D(candidate.width, candidate.kernel, strides=1 if i == 0 else 2, padding="same",
                     activation="relu", name=f"conv_{i}")(x)
    side = _spatial_after(candidate.depth)
    logits = L.Conv2D(NUM_CLASSES, side, padding="valid", name="classifier")(x)
    flat = L.Lambda(lambda t: keras.ops.reshape(t, (-1, NUM_CLASSES)), output_shape=(NUM_CLASSES,),
                    name="flatten")(logits)
    probs = L.Softmax(name="softmax")(flat)
    train_model = keras.Model(inp, probs, name=f"digits_{candidate.name}")
    deploy = train_model if head == "softmax" else keras.Model(inp, logits, name=f"digits_{candidate.name}")
    return train_model, deploy


def train(model: keras.Model, data: DigitsData, recipe: TrainRecipe) -> float:
    """Train in place with Adam; returns the float test accuracy of the Keras model."""
    _convert.seed_everything(recipe.seed)
    import keras

    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=recipe.epochs, batch_size=recipe.batch_size,
              shuffle=True, verbose=0)
    probs = model.predict(data.x_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == data.y_test))


def convert(model: keras.Model, data: DigitsData, quantize: str = "int8") -> bytes:
    """int8 (calibrated on training images, int8 I/O) or float32 .tflite bytes."""
    # Keras' export print()s "Saved artifact at ..." through sys.stdout, which the
    # converter's fd-level capture misses inside Jupyter (ipykernel replaces sys.stdout).
    with contextlib.redirect_stdout(io.StringIO()):
        if quantize == "float32":
            return _convert.convert_float32(model)
        return _convert.convert_int8(model, representative_data=data.x_train[:100])


def tflite_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .tflite on the host (TF Lite interpreter), float or int8 I/O.

    Inputs are quantized with the model's own input scale/zero point, exactly as the
    firmware would receive them; the arg-max of int8 outputs equals that of the
    dequantized ones, so no output dequantization is needed.
    """
    tf = _convert.import_tf()
    with _convert._captured_native_output():  # the interpreter chats on stderr from C++
        interp = tf.lite.Interpreter(model_content=tflite)
        interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    xs = np.asarray(x, np.float32)
    if inp["dtype"] == np.int8:
        scale, zp = inp["quantization"]
        xs = np.clip(np.round(xs / scale) + zp, -128, 127).astype(np.int8)
    correct = 0
    for xi, yi in zip(xs, y):
        interp.set_tensor(inp["index"], xi[None])
        interp.invoke()
        correct += int(np.argmax(interp.get_tensor(out["index"]).reshape(-1)) == yi)
    return correct / max(len(y), 1)
