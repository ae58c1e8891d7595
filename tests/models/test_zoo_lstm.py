"""The zoo's LSTM keyword spotter (lstm_kws), written as .tflite without Keras.

Why: it is the benchmark model of the LSTM op family; it must have the op set a
converted Keras LSTM keyword model has, run bit-exactly like TFLM through the
runtime (int8; float32 within the LSTM tests' bound), be flagged untrained, and
be fully supported by ``inspect``'s table -- all without TensorFlow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.errors import ConfigError
from tinymeter.firmware.host import run_on_host
from tinymeter.firmware.support import op_support, unsupported
from tinymeter.models import zoo
from tinymeter.models.tflite import parse_tflite

pytest.importorskip("tflite_micro")

OPS = ["UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED", "SOFTMAX"]
SMALL = {"frames": 12, "units": 16}


def _stream(blob: bytes, n: int = 3) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """*n* quantized normal(0, 1) inputs and TFLM's outputs, state carried over."""
    from tflite_micro.python.tflite_micro import runtime

    sg = parse_tflite(blob).main
    x = sg.tensors[sg.inputs[0]]
    rng = np.random.default_rng(5)
    inputs = []
    for _ in range(n):
        xf = rng.standard_normal(x.shape)
        if x.quantization is not None:
            s, z = x.quantization.scale[0], x.quantization.zero_point[0]
            inputs.append([np.clip(np.round(xf / s) + z, -128, 127).astype(np.int8)])
        else:
            inputs.append([xf.astype(np.float32)])
    interp = runtime.Interpreter.from_bytes(blob, arena_size=1 << 18)
    want = []
    for (xi,) in inputs:
        interp.set_input(xi, 0)
        interp.invoke()
        want.append(np.array(interp.get_output(0)))
    return inputs, want


def test_listed_untrained_and_no_keras_model() -> None:
    assert "lstm_kws" in zoo.list_models()
    entry = zoo.get_entry("lstm_kws")
    assert entry.trained_on == "" and entry.direct
    assert zoo.default_params("lstm_kws") == {"frames": 49, "features": 10, "units": 64,
                                              "num_classes": 12}
    with pytest.raises(ConfigError, match="no Keras model"):
        zoo.build_keras("lstm_kws")


def test_builds_without_tensorflow(tmp_path: Path) -> None:
    code = ("import sys; from tinymeter.models import zoo; "
            f"zoo.build_tflite('lstm_kws', cache_dir={str(tmp_path)!r}); "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert len(list(tmp_path.glob("lstm_kws-int8-*.tflite"))) == 1


def test_int8_ops_support_and_bit_exact_stream(tmp_path: Path) -> None:
    blob = zoo.build_tflite("lstm_kws", cache_dir=tmp_path).read_bytes()
    model = parse_tflite(blob)
    assert [op.opcode for op in model.main.operators] == OPS
    lstm = model.main.operators[0]
    cell = model.main.tensors[lstm.inputs[19]]
    assert cell.dtype.name == "INT16" and cell.is_variable
    rows = op_support(model)
    assert not unsupported(rows) and all(r.reference for r in rows)
    inputs, want = _stream(blob)
    got = run_on_host(blob, inputs)
    for g, w in zip(got, want):
        assert g[0].tobytes() == w.tobytes()
    assert not np.array_equal(want[0], want[1])  # outputs follow the input


def test_float32_variant_close(tmp_path: Path) -> None:
    blob = zoo.build_tflite("lstm_kws", quantize="float32", params=SMALL,
                            cache_dir=tmp_path).read_bytes()
    inputs, want = _stream(blob)
    for g, w in zip(run_on_host(blob, inputs), want):
        assert g[0].dtype == np.float32
        np.testing.assert_allclose(g[0], w, rtol=0, atol=8 * float(np.spacing(np.float32(1))))


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="input/output"):
        zoo.build_tflite("lstm_kws", io_dtype="float32", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="'units' must be >= 1"):
        zoo.build_tflite("lstm_kws", params={"units": 0}, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.tflite"))


@pytest.mark.slow
def test_int8_on_emulated_m0plus(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    from tinymeter.device import run_on_emulator

    blob = zoo.build_tflite("lstm_kws", params=SMALL, cache_dir=tmp_path).read_bytes()
    inputs, want = _stream(blob, 2)
    got = run_on_emulator(blob, inputs, board="nucleo-g0b1re", kernels="reference")
    for g, w in zip(got, want):
        assert g[0].tobytes() == w.tobytes()


def test_inspect_counts_lstm_macs(tmp_path: Path) -> None:
    from tinymeter.firmware.codegen import generate
    from tinymeter.models.inspect import inspect_model

    model = parse_tflite(zoo.build_tflite("lstm_kws", cache_dir=tmp_path).read_bytes())
    rows = inspect_model(model).ops
    # 49 steps x 4 gates x 64 units x (10 inputs + 64 recurrent): the lowering's count too
    assert rows[0].macs == 49 * 4 * 64 * (10 + 64) == generate(model).layers[0].macs
