"""Op-family benchmark: one small real model per family of ops added for issue 15.

Why: the new ops (data movement, activations, resize, transposed conv, int16x8)
are bit-exact by test; this measures what they cost. Each model is a Keras model
built here with fixed seeds and converted like a user's model
(``tinymeter.models.user_convert``), then estimated with the reference and the
optimized kernel sets (``bench_kernels.bench_model``: instructions per inference
and per layer, which the emulator counts exactly):

* ``unet_tiny``: conv encoder, TRANSPOSE_CONV + RESIZE_BILINEAR /
  RESIZE_NEAREST_NEIGHBOR decoder, CONCATENATION skip (int8);
* ``movement_mix``: Permute (TRANSPOSE), Cropping (STRIDED_SLICE), Flatten
  (SHAPE/STRIDED_SLICE/PACK/RESHAPE), LeakyReLU, PReLU, Subtract, Maximum,
  Minimum (int8);
* ``kws_int16x8``: the zoo DS-CNN keyword spotter, softmax head included,
  quantized 16x8;
* ``lstm_kws``: the zoo's LSTM keyword spotter (UNIDIRECTIONAL_SEQUENCE_LSTM, 64
  units over 49 MFCC frames, int8 with an int16 cell state), taken from the zoo as
  it is written there (Keras 3's LSTM converts to a WHILE loop, not the fused op).

Needs TensorFlow. ``python benchmarks/bench_ops.py --out bench-results`` alone, or
the "ops" section of ``run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels  # sibling script

log = logging.getLogger("bench.ops")


def _unet(keras: Any) -> Any:
    inp = keras.Input((32, 32, 1))
    e1 = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    e2 = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(e1)
    d1 = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(e2)
    d1 = keras.layers.Concatenate()([d1, e1])
    up = keras.layers.Resizing(32, 32, interpolation="bilinear")(d1)
    nn = keras.layers.Resizing(32, 32, interpolation="nearest")(e1)
    x = keras.layers.Concatenate()([up, nn])
    out = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    return keras.Model(inp, out, name="unet_tiny")


def _movement(keras: Any) -> Any:
    inp = keras.Input((12, 10, 4))
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)
    x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    p = keras.layers.PReLU(shared_axes=[1, 2])(x)
    t = keras.layers.Permute((2, 1, 3))(p)
    t = keras.layers.Permute((2, 1, 3))(t)
    c = keras.layers.Cropping2D(((1, 1), (2, 2)))(t)
    d = keras.layers.Subtract()([c, keras.layers.Cropping2D(((2, 0), (0, 4)))(x)])
    m = keras.layers.Maximum()([d, c])
    n = keras.layers.Minimum()([m, d])
    f = keras.layers.Flatten()(n)
    out = keras.layers.Dense(5)(f)
    return keras.Model(inp, out, name="movement_mix")


def _kws16(keras: Any) -> Any:
    from tinymeter.models import zoo

    full = zoo.build_keras("ds_cnn_kws")
    return keras.Model(full.inputs, full.outputs, name="kws_int16x8")


#: name -> (builder, quantization)
MODELS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "unet_tiny": (_unet, "int8"),
    "movement_mix": (_movement, "int8"),
    "kws_int16x8": (_kws16, "int16x8"),
}


#: zoo models benchmarked as the zoo builds them: name -> quantization
ZOO_MODELS: dict[str, str] = {"lstm_kws": "int8"}


def build(name: str, out_dir: Path) -> Path:
    """Build, convert (seeded uniform [0, 1) calibration set) and save one model."""
    if name in ZOO_MODELS:
        from tinymeter.models import zoo

        return zoo.build_tflite(name, quantize=ZOO_MODELS[name], cache_dir=out_dir)
    from tinymeter.models import convert
    from tinymeter.models.user_convert import convert_keras_model

    convert.seed_everything(0)
    import keras

    builder, quantize = MODELS[name]
    model = builder(keras)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    cal = [np.random.default_rng(0).uniform(0, 1, (16, *shape)).astype(np.float32)]
    result = convert_keras_model(model, quantize, cal, accuracy=False)
    path = out_dir / f"{name}-{quantize}.tflite"
    path.write_bytes(result.tflite)
    return path


def run(board_name: str, out_dir: Path) -> dict[str, Any]:
    """The "ops" section: per model, both kernel sets, or the error that stopped it."""
    results, errors = [], []
    for name in [*MODELS, *ZOO_MODELS]:
        try:
            path = build(name, out_dir / "models")
            results.append(dict(bench_kernels.bench_model(path, board_name), name=name))
        except Exception as exc:  # report and continue: one unsupported op must not hide the rest
            log.warning("%s: %s", name, exc)
            errors.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
    return {"board": board_name, "models": results, "errors": errors}


def format_summary(section: dict[str, Any]) -> str:
    lines = [f"{'model':18} {'reference':>12} {'optimized':>12} {'speedup':>8}"]
    for m in section["models"]:
        sets = m["sets"]
        lines.append(f"{m['name']:18} {sets['reference']['instructions']:>12,} "
                     f"{sets['optimized']['instructions']:>12,} {m.get('speedup') or 0:>8.2f}")
    lines += [f"{e['model']:18} error: {e['error']}" for e in section["errors"]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--board", default="nucleo-l4r5zi")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    section = run(args.board, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-ops.json").write_text(json.dumps(section, indent=2) + "\n")
    print(format_summary(section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
