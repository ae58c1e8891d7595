"""Converter-made LSTM models (int8 and float32) against tflite-micro, over a stream.

Why: the single-op LSTM tests choose every quantization parameter themselves; a
user's LSTM comes from the TFLite converter, which picks its own (a non-zero
hidden-state zero point, a cell state at a power-of-two scale, cell_clip 10,
intermediate tensors TFLM ignores) and stacks layers. Keras 3's LSTM converts to
a WHILE loop, so these models are Keras 2 (tf_keras) LSTMs, whose layers the
converter fuses into UNIDIRECTIONAL_SEQUENCE_LSTM -- the route to take for a
model that should run on TFLM. Converted through tinymeter's own
``convert_keras_model`` (the user path), run on the host build and on an
emulated M4 with the optimized kernels. (The converter does not quantize an
LSTM 16x8 yet, so the 16x8 kernel is covered by the single-op tests only.)
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_kernels_lstm import tflm_stream

from tinymeter.firmware.host import run_on_host
from tinymeter.models.tflite import parse_tflite

pytest.importorskip("tensorflow")
pytest.importorskip("tflite_micro")
tf_keras = pytest.importorskip("tf_keras")

pytestmark = [pytest.mark.slow, pytest.mark.tf]

FRAMES, FEATURES = 8, 6


@pytest.fixture(scope="module")
def stacked_lstm() -> object:
    """Two stacked Keras 2 LSTMs (the first returning sequences) and a dense head."""
    from tinymeter.models import convert

    convert.seed_everything(0)
    inp = tf_keras.Input(shape=(FRAMES, FEATURES), batch_size=1)
    x = tf_keras.layers.LSTM(12, return_sequences=True)(inp)
    x = tf_keras.layers.LSTM(8)(x)
    out = tf_keras.layers.Dense(3)(x)
    return tf_keras.Model(inp, out, name="stacked_lstm")


def _convert(model: object, quantize: str) -> bytes:
    from tinymeter.models.user_convert import convert_keras_model

    cal = [np.random.default_rng(1).standard_normal((24, FRAMES, FEATURES)).astype(np.float32)]
    return convert_keras_model(model, quantize, cal, accuracy=False).tflite


def _inputs(blob: bytes, n: int = 4) -> list[list[np.ndarray]]:
    sg = parse_tflite(blob).main
    x = sg.tensors[sg.inputs[0]]
    rng = np.random.default_rng(2)
    out = []
    for _ in range(n):
        xf = rng.standard_normal(x.shape)
        if x.quantization is None:
            out.append([xf.astype(np.float32)])
        else:
            s, z = x.quantization.scale[0], x.quantization.zero_point[0]
            out.append([np.clip(np.round(xf / s) + z, -128, 127).astype(np.int8)])
    return out


def test_int8_converted_stacked_lstm_bit_exact(stacked_lstm: object) -> None:
    blob = _convert(stacked_lstm, "int8")
    sg = parse_tflite(blob).main
    lstms = [op for op in sg.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstms) == 2
    assert any(sg.tensors[op.inputs[18]].quantization.zero_point[0] != 0 for op in lstms)
    inputs = _inputs(blob)
    want = tflm_stream(blob, inputs)
    runs = [run_on_host(blob, inputs)]
    if shutil.which("arm-none-eabi-gcc") is not None:
        from tinymeter.device import run_on_emulator

        runs.append(run_on_emulator(blob, inputs, board="nucleo-l4r5zi", kernels="optimized"))
    for got in runs:
        for g, w in zip(got, want):
            assert g[0].tobytes() == w.tobytes()


def test_float_converted_stacked_lstm_close(stacked_lstm: object) -> None:
    blob = _convert(stacked_lstm, "float32")
    inputs = _inputs(blob)
    for g, w in zip(run_on_host(blob, inputs), tflm_stream(blob, inputs)):
        np.testing.assert_allclose(g[0], w, rtol=1e-5, atol=1e-6)
