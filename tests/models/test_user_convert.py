"""The user's own Keras model in: `tinymeter convert`, accuracy report, direct use.

Why: users arrive with Keras models. A conversion must produce a model the runtime
runs bit-exactly like TFLM (here a Keras 3 model whose Flatten exports SHAPE /
STRIDED_SLICE / PACK), say how much accuracy quantization cost on the user's own
data, warn when it had to invent calibration data, and work when a .keras file is
handed straight to `estimate`/`inspect`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from tinymeter.cli.main import main
from tinymeter.core.errors import ConfigError
from tinymeter.firmware.host import run_on_host
from tinymeter.models.builders import run_tflm
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tensorflow")
pytest.importorskip("tflite_micro")

pytestmark = [pytest.mark.slow, pytest.mark.tf]


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small trained-shape CNN saved as .keras, plus 24 calibration samples (.npy)."""
    import keras

    root = tmp_path_factory.mktemp("user")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, out)
    path = root / "net.keras"
    model.save(path)
    cal = root / "cal.npy"
    np.save(cal, np.random.default_rng(0).uniform(0, 1, (24, 8, 8, 1)).astype(np.float32))
    return path, cal


def test_convert_int8_runs_bit_exact_and_reports_accuracy(keras_model, tmp_path: Path,
                                                          capsys) -> None:
    path, cal = keras_model
    out, js = tmp_path / "net8.tflite", tmp_path / "net8.json"
    assert main(["convert", str(path), "--calibration-data", str(cal), "-o", str(out),
                 "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "int8 vs float32 on 24 calibration samples" in text and "top-1 agreement" in text
    doc = json.loads(js.read_text())
    assert doc["quantize"] == "int8" and not doc["synthetic_calibration"]
    (acc,) = doc["accuracy"]
    assert acc["samples"] == 24 and 0 <= acc["relative_error"] < 0.05
    assert 0.5 <= acc["top1_agreement"] <= 1.0
    blob = out.read_bytes()
    model = parse_tflite(blob)
    assert model.main.tensors[model.main.inputs[0]].dtype == TensorType.INT8
    x = np.random.default_rng(1).integers(-128, 128, (1, 8, 8, 1)).astype(np.int8)
    (got,) = run_on_host(blob, [[x]])
    assert np.array_equal(got[0], run_tflm(blob, [x])[0])


def test_convert_int16x8_and_float32(keras_model, tmp_path: Path, caplog) -> None:
    from tinymeter.models.user_convert import convert_user_model

    path, _ = keras_model
    with caplog.at_level(logging.WARNING):
        res = convert_user_model(path, "int16x8")
    assert res.synthetic_calibration and "no calibration data" in caplog.text
    model = parse_tflite(res.tflite)
    assert model.main.tensors[model.main.inputs[0]].dtype == TensorType.INT16
    assert res.accuracy and res.accuracy[0].relative_error < 0.05
    # the whole 16x8 model (conv, Keras' flatten ops, FC without bias, int16 softmax)
    # runs on the runtime exactly like TFLM
    x = np.random.default_rng(2).integers(-32768, 32768, (1, 8, 8, 1)).astype(np.int16)
    (got,) = run_on_host(res.tflite, [[x]])
    assert np.array_equal(got[0], run_tflm(res.tflite, [x])[0])
    f = convert_user_model(path, "float32")
    assert not f.accuracy
    assert parse_tflite(f.tflite).main.tensors[0].dtype == TensorType.FLOAT32


def test_keras_file_accepted_where_tflite_is(keras_model, tmp_path: Path, monkeypatch,
                                            capsys) -> None:
    from tinymeter.apps.estimate import resolve_model

    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path / "cache"))
    path, _ = keras_model
    first = resolve_model(path)
    assert first.suffix == ".tflite" and first.parent == tmp_path / "cache" / "models"
    assert resolve_model(path) == first  # cached by content
    assert main(["inspect", str(path), "--strict"]) == 0
    assert "all 7 operators run" in capsys.readouterr().out


def test_saved_model_directory(keras_model, tmp_path: Path) -> None:
    """A SavedModel directory converts like a .keras file (shapes from its signature)."""
    import keras

    from tinymeter.models.user_convert import convert_user_model, is_convertible

    path, cal = keras_model
    saved = tmp_path / "saved"
    keras.models.load_model(path).export(saved)
    assert is_convertible(saved)
    res = convert_user_model(saved, "int8", [np.load(cal)])
    assert not res.synthetic_calibration and res.accuracy[0].samples == 24
    blob = res.tflite
    x = np.random.default_rng(3).integers(-128, 128, (1, 8, 8, 1)).astype(np.int8)
    assert np.array_equal(run_on_host(blob, [[x]])[0][0], run_tflm(blob, [x])[0])


def test_bad_inputs_are_named(keras_model, tmp_path: Path) -> None:
    from tinymeter.models.user_convert import convert_user_model, load_calibration

    path, _ = keras_model
    with pytest.raises(ConfigError, match="expected"):
        convert_user_model(path, "int8", [np.zeros((4, 3, 3, 1), np.float32)])
    with pytest.raises(ConfigError, match="not a Keras model"):
        convert_user_model(tmp_path / "x.onnx", "int8")
    with pytest.raises(ConfigError, match="--quantize"):
        convert_user_model(path, "int4")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"nope")
    with pytest.raises(ConfigError, match="calibration data"):
        load_calibration(bad)
    np.savez(tmp_path / "two.npz", np.ones((2, 3)), np.zeros((2, 1)))
    a, b = load_calibration(tmp_path / "two.npz")
    assert a.shape == (2, 3) and b.shape == (2, 1) and a.dtype == np.float32


@pytest.mark.parametrize("name", ["unet_tiny", "movement_mix", "kws_int16x8"])
def test_benchmark_models_bit_exact(name: str, tmp_path: Path) -> None:
    """The converted Keras models of `make bench` (U-Net with TRANSPOSE_CONV and RESIZE,
    data movement + activations, int16x8 DS-CNN) run bit-exactly like TFLM on the
    host and on the emulated M4 with the optimized kernel set."""
    import sys

    from tinymeter.device import run_on_emulator

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_ops

    blob = bench_ops.build(name, tmp_path).read_bytes()
    m = parse_tflite(blob)
    t = m.main.tensors[m.main.inputs[0]]
    info = np.iinfo(t.dtype.numpy_dtype)
    x = np.random.default_rng(0).integers(info.min, info.max + 1, size=t.shape) \
        .astype(t.dtype.numpy_dtype)
    ref = run_tflm(blob, [x])
    for got in (run_on_host(blob, [[x]])[0],
                run_on_emulator(blob, [[x]], board="nucleo-l4r5zi", kernels="optimized")[0]):
        assert all(np.array_equal(a, b) for a, b in zip(got, ref))
